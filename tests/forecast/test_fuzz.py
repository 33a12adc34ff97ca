"""Random curves of every shape through `forecast`: a forecast or a clear error, never nonsense.

Each case draws a curve (a power law, an exponential, an accuracy, a flat noisy line, a spiky
loss, a rising loss or a negative one; 6 to 400 points; any scale and noise), a horizon up to
100x the observed steps, maybe a schedule, and a method. Whatever comes back must be a forecast
that ends at ``until`` with finite samples and ordered bands, and a positive loss must stay
positive; anything that is not must be a :class:`~runcast.RuncastError` that says why.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import runcast
from runcast.errors import RuncastError

METHODS = ["auto", "auto", "ensemble", "pfn", "law", "law+pfn", "pfn+ensemble", "powerlaw", "last"]
KINDS = ["pow", "exp", "acc", "flat", "spiky", "rise", "neg"]


def _case(rng: np.random.Generator) -> tuple[runcast.Curve, int, dict[str, Any] | None, str, str]:
    n = int(rng.choice([6, 8, 12, 30, 100, 400]))
    gap = int(rng.choice([1, 5, 50]))
    start = int(rng.choice([0, 1, 100, 5000]))
    steps = start + gap * np.arange(n)
    until = int(steps[-1] * rng.choice([1.01, 1.5, 3.0, 10.0, 100.0])) + 1
    scale = float(10 ** rng.uniform(-4, 4))
    kind = str(rng.choice(KINDS))
    x = (steps - start) / (gap * n)
    y = {
        "pow": scale * (1 + 3 * (1 + 10 * x) ** -0.5),
        "exp": scale * (1 + np.exp(-3 * x)),
        "acc": 0.9 - 0.8 * np.exp(-3 * x),
        "flat": np.full(n, scale),
        "spiky": scale * (1 + 3 * (1 + 10 * x) ** -0.5),
        "rise": scale * (1 + x),
        "neg": -scale * (1 + 3 * (1 + 10 * x) ** -0.5),
    }[kind]
    if kind == "spiky":
        y[rng.integers(0, n, size=max(1, n // 20))] *= 10
    y = y + rng.normal(0, float(rng.choice([0, 0.001, 0.05, 0.3])) * abs(scale), size=n)
    sched: dict[str, Any] | None = None
    if rng.random() < 0.4:
        kind_s = str(rng.choice(["cosine", "wsd", "constant"]))
        sched = {"kind": kind_s, "peak": 1e-3, "warmup": 0, "total": until + 1}
        if kind_s == "wsd":
            sched["decay_start"] = int(until * 0.8)
    name = "acc" if kind == "acc" else "loss"
    return runcast.Curve(steps, y, name=name), until, sched, str(rng.choice(METHODS)), kind


@pytest.mark.parametrize("seed", range(4))
def test_random_curves_get_a_sound_forecast_or_a_clear_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    forecasts, errors = 0, []
    for _ in range(40):
        curve, until, sched, method, kind = _case(rng)
        what = f"{kind} curve of {len(curve)} points to {until}, {method}, schedule {sched}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", runcast.RuncastWarning)
                f = runcast.forecast(curve, until, sched, method=method)
        except RuncastError as err:
            errors.append(str(err))
            continue
        forecasts += 1
        assert int(f.steps[-1]) == until, what
        assert np.all(np.isfinite(f.samples)), what
        lo80, hi80 = f.interval(0.8)
        lo95, hi95 = f.interval(0.95)
        assert np.all(lo95 <= lo80 + 1e-12) and np.all(lo80 <= hi80), what
        assert np.all(hi80 <= hi95 + 1e-12), what
        if kind in ("pow", "exp", "flat", "spiky") and curve.value.min() > 0:
            assert f.final.median > 0, what
    assert forecasts >= 20  # most random curves do get a forecast
    assert all(len(e) > 40 for e in errors)  # and each error says what was wrong
