"""Random curves and schedules through every law: a sound law and forecast, or a clear error.

Each case draws one or two curves (a power law, flat, rising, noisy, spiky, at a tiny or huge
scale, with NaNs; 3 to 200 points) over a random schedule (cosine, WSD, constant, or a recorded
array that is zero at first, noisy or too short), fits a random law, then predicts and forecasts
1x, 10x and 100x past the fitted steps under cosine, WSD and an all-zero LR. The invariants:

* ``fit_law`` returns a law with finite parameters, or raises a RuncastError that says why;
* ``predict`` returns finite positive losses, or warns (RuncastWarning) that they are not;
* ``forecast`` returns finite positive samples with ordered bands, or raises a RuncastError.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import runcast
from runcast.errors import RuncastError, RuncastWarning
from runcast.forecast.laws import fit_law

SHAPES = ["pow", "pow", "flat", "rise", "noisy", "spiky", "tiny", "huge", "nan"]


def _schedule(rng: np.random.Generator, total: int) -> runcast.Schedule:
    peak = float(10 ** rng.uniform(-6, 0))
    kind = str(rng.choice(["cosine", "wsd", "constant", "zero_start", "noisy", "short"]))
    if kind == "cosine":
        warm = int(rng.choice([0, total // 10]))
        spec = {"kind": "cosine", "peak": peak, "end": 0.0, "warmup": warm, "total": total}
        return runcast.Schedule.from_spec(spec)
    if kind == "wsd":
        spec = {"kind": "wsd", "peak": peak, "end": peak / 100, "warmup": 0, "total": total,
                "decay_start": int(total * 0.7)}  # fmt: skip
        return runcast.Schedule.from_spec(spec)
    if kind == "constant":
        return runcast.Schedule.from_spec({"kind": "constant", "peak": peak})
    if kind == "zero_start":
        return runcast.Schedule.from_array(np.r_[np.zeros(total // 3), np.full(total, peak)])
    if kind == "noisy":
        return runcast.Schedule.from_array(rng.uniform(0.0, peak, total))
    return runcast.Schedule.from_array(np.full(max(1, total // 2), peak))  # shorter than the curve


def _curve(rng: np.random.Generator) -> tuple[runcast.Curve, str]:
    n = int(rng.choice([3, 12, 40, 200]))
    gap = int(rng.choice([1, 7, 50]))
    steps = int(rng.choice([0, 1, 100])) + gap * np.arange(n)
    x = steps / max(int(steps[-1]), 1)
    shape = str(rng.choice(SHAPES))
    y = 1.0 + 3.0 * (1.0 + 10.0 * x) ** -0.5
    y = {
        "pow": y,
        "flat": np.full(n, 2.0),
        "rise": 1.0 + x,
        "noisy": y + rng.normal(0.0, 0.3, n),
        "spiky": np.where(rng.random(n) < 0.1, 100.0 * y, y),
        "tiny": 1e-12 * y,
        "huge": 1e12 * y,
        "nan": np.where(rng.random(n) < 0.5, np.nan, y),
    }[shape]
    total = int(steps[-1]) + 1 + int(rng.choice([0, 100]))
    return runcast.Curve(steps, y, schedule=_schedule(rng, total)), shape


def _targets(last: int, peak: float) -> list[tuple[dict[str, Any], list[int]]]:
    out = []
    for mult in (1, 10, 100):
        total = last * mult + 2
        steps = np.unique(np.linspace(1, total - 1, 8).astype(int)).tolist()
        for spec in (
            {"kind": "cosine", "peak": peak, "end": 0.0, "warmup": 0, "total": total},
            {"kind": "wsd", "peak": peak, "end": peak / 10, "warmup": total // 10,
             "total": total, "decay_start": int(total * 0.9)},
            {"kind": "constant", "peak": 0.0, "total": total},
        ):  # fmt: skip
            out.append((spec, steps))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_random_curves_get_a_sound_law_or_a_clear_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    fits, errors = 0, []
    for _ in range(16):
        drawn = [_curve(rng) for _ in range(int(rng.choice([1, 1, 2])))]
        curves = [c for c, _ in drawn]
        law_name = str(rng.choice(["auto", "mpl", "momentum", "runcast"]))
        what = f"{law_name} on {[(s, len(c)) for c, s in drawn]}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuncastWarning)
                law = fit_law(curves, law_name, fast=True, seed=seed)
        except RuncastError as err:
            errors.append(str(err))
            continue
        fits += 1
        assert all(np.isfinite(v) for v in law.params.values()), what
        peak = float(np.max(curves[0].lr()[: curves[0].last_step + 1]))
        for spec, steps in _targets(max(c.last_step for c in curves), peak):
            case = f"{what}, {spec['kind']} to {spec['total']}"
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    pred = law.predict(spec, steps)
                said = [w for w in caught if issubclass(w.category, RuncastWarning)]
                # a loss the law cannot predict is never returned silently
                assert said or bool(np.all(np.isfinite(pred) & (pred > 0))), case
                # and nothing else (numpy's overflow warnings) reaches the user
                assert len(said) == len(caught), (case, [str(w.message) for w in caught])
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    f = law.forecast(spec, steps, n_paths=32)
                # a forecast whose draws left the fit says so, and only runcast speaks
                assert not f.info["unpinned"] or caught, case
                assert all(issubclass(w.category, RuncastWarning) for w in caught), case
            except RuncastError as err:
                errors.append(str(err))
                continue
            assert np.all(np.isfinite(f.samples)) and np.all(f.samples > 0), case
            lo80, hi80 = f.interval(0.8)
            lo95, hi95 = f.interval(0.95)
            assert np.all(lo95 <= lo80) and np.all(lo80 <= hi80) and np.all(hi80 <= hi95), case
    assert fits >= 2  # the fuzz reaches the predictions, not only the fit's checks
    assert all(len(e) > 40 for e in errors)  # every refusal says what was wrong and what to do
