"""Random streams through every steering rule: a sound decision, or a clear error.

Streams are noisy losses, with NaNs, infinities, values near 1e300 or 1e-300, negative, constant,
all zero, quantised to bfloat16, or spiky; steps may come out of order or repeat. The guard must
decide every step without numpy warnings and skip only what is a real problem (never bfloat16
noise); the plateau detector must say continue or stop; the stopping rule must keep training or
stop with finite numbers; the pruner must prune or continue (a trial with a NaN/inf last value is
pruned), whatever its peers, its best and its settings. Anything else is a RuncastError.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch

from runcast import Curve, Schedule
from runcast.errors import RuncastError, RuncastWarning
from runcast.forecast import Forecast
from runcast.steer import InstabilityGuard, PlateauDetector, PruneRule, StopRule

KINDS = ["normal", "nan", "inf", "huge", "tiny", "neg", "const", "zero", "bf16", "spikes"]


def _pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _stream(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    kind = str(_pick(rng, KINDS))
    x = 2.0 + 0.005 * rng.standard_normal(n)
    if kind == "nan":
        x[rng.random(n) < 0.3] = np.nan
    elif kind == "inf":
        x[rng.random(n) < 0.1] = _pick(rng, [np.inf, -np.inf])
    elif kind == "huge":
        x = x * 1e300 * rng.choice([1.0, -1.0], n)
    elif kind == "tiny":
        x = x * 1e-300
    elif kind == "neg":
        x = -x
    elif kind == "const":
        x = np.full(n, 2.0)
    elif kind == "zero":
        x = np.zeros(n)
    elif kind == "bf16":
        x = torch.tensor(x).to(torch.bfloat16).double().numpy()
    elif kind == "spikes":
        x[rng.random(n) < 0.05] *= 100.0
    return x, kind


def _quiet() -> warnings.catch_warnings[Any]:
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")  # numpy's RuntimeWarnings must not reach the user
    warnings.simplefilter("ignore", RuncastWarning)
    return ctx


def _guard(rng: np.random.Generator) -> None:
    n = int(_pick(rng, [5, 60, 200]))
    loss, kind = _stream(rng, n)
    grad, _ = _stream(rng, n)
    steps = np.arange(n) if rng.random() < 0.7 else rng.integers(0, n, n)  # out of order, repeats
    forecast = Forecast([0, n], 2.0 + rng.random((16, 2))) if rng.random() < 0.5 else None
    window = int(_pick(rng, [3, 20, 100]))
    g = InstabilityGuard("skip", window=window, min_history=min(window, 20))
    for step, lv, gv in zip(steps, loss, grad, strict=True):
        d = g.check(
            int(step), loss=float(lv), grad_norm=_pick(rng, [None, float(gv)]), forecast=forecast
        )
        assert d.action in ("continue", "skip"), d
        if not math.isfinite(lv):
            assert d.action == "skip", d  # a NaN/inf loss is always caught
    if kind == "bf16" and window >= 20:
        # noise at the logging resolution is never a spike (3 equal values say nothing of it;
        # 20, the default history, hold two levels)
        assert not any("loss spike" in e.reason for e in g.events), g.events
    g.load_state_dict(g.state_dict())  # a resumed guard takes its own state back


def _plateau(rng: np.random.Generator) -> None:
    values, _ = _stream(rng, int(_pick(rng, [1, 5, 50])))
    p = PlateauDetector(
        patience=int(_pick(rng, [1, 3])), mode=_pick(rng, ["min", "max"]),
        min_delta=float(_pick(rng, [0.0, 0.1])), relative=bool(rng.random() < 0.5),
    )  # fmt: skip
    for step, v in enumerate(values):
        assert p.update(step, float(v)).action in ("continue", "stop")


def _stop(rng: np.random.Generator) -> None:
    values, _ = _stream(rng, int(_pick(rng, [1, 12, 40])))
    steps = np.arange(values.size) * int(_pick(rng, [1, 10]))
    until = int(_pick(rng, [0, int(steps[-1]) + 1, int(steps[-1]) * 10 + 5]))
    rule = StopRule(mode=_pick(rng, ["min", "max"]), min_points=int(_pick(rng, [1, 10])),
                    relative=bool(rng.random() < 0.5))  # fmt: skip
    finite = np.where(np.isinf(values), np.nan, values)  # a Curve holds NaN, never inf
    d = rule.decide(Curve(steps, finite), until)
    assert d.action in ("continue", "stop"), d
    if d.action == "stop":  # a stop is argued with finite numbers
        assert all(math.isfinite(v) for v in d.numbers.values()), d


def _prune(rng: np.random.Generator) -> None:
    values, _ = _stream(rng, int(_pick(rng, [1, 3, 12, 40])))
    steps = np.arange(values.size) * 10
    peers = []
    for _ in range(int(_pick(rng, [0, 1, 3]))):
        pv, _ = _stream(rng, int(_pick(rng, [1, 3, 40])))
        peers.append(Curve(np.arange(pv.size) * 10, np.where(np.isinf(pv), np.nan, pv)))
    sched = _pick(rng, [None, Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "total": 500})])
    rule = PruneRule(
        mode=_pick(rng, ["min", "max"]), n_min_trials=int(_pick(rng, [0, 2])),
        warmup_reports=int(_pick(rng, [0, 2])), min_points=int(_pick(rng, [0, 5])),
        peer_method=_pick(rng, ["auto", "analog", "shift"]),
        forecaster=_pick(rng, [None, lambda c, until: Forecast([until], 2.0 + rng.random((8, 1)))]),
    )  # fmt: skip
    d = rule.decide(
        steps, values, total_steps=int(_pick(rng, [0, 400, 499])),
        best=_pick(rng, [None, float("nan"), 1.0, -1.0, 1e300]),
        n_completed=int(_pick(rng, [0, 5])), schedule=sched, peers=peers or None,
    )  # fmt: skip
    assert d.action in ("continue", "prune"), d
    if not math.isfinite(values[-1]):
        assert d.action == "prune", d  # a diverged trial cannot win


@pytest.mark.parametrize("rule", [_guard, _plateau, _stop, _prune])
def test_random_streams_get_a_sound_decision_or_a_clear_error(rule: Any) -> None:
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(40):
        ctx = _quiet()
        try:
            rule(rng)
        except RuncastError as err:
            errors.append(str(err))
        finally:
            ctx.__exit__(None, None, None)
    assert len(errors) < 20  # most cases reach a decision, not only the argument checks
    assert all(len(e) > 30 for e in errors)  # and each refusal says what was wrong
