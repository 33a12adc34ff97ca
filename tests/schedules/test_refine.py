"""Refinement from gradient norms (Defazio et al. 2023) against a plain reference."""

from __future__ import annotations

import numpy as np
import pytest

from runcast import Curve, Schedule
from runcast.errors import ScheduleError
from runcast.schedules._refine import refined_lrs, window_steps


def reference(norms: np.ndarray, window: int, power: float) -> np.ndarray:
    """The paper's recipe one step at a time: median filter, weights, tail sums, normalise."""
    window |= 1  # runcast centres the filter: even widths grow by one
    n, half = len(norms), window // 2
    smooth = []
    for t in range(n):
        # scipy's 'nearest' mode: pad by repeating the edge values
        idx = [min(max(k, 0), n - 1) for k in range(t - half, t - half + window)]
        smooth.append(float(np.median([norms[i] for i in idx])))
    w = [g ** (-power) for g in smooth]
    eta = [w[t] * sum(w[t + 1 :]) for t in range(n)]
    top = max(eta)
    return np.array([e / top for e in eta])


@pytest.mark.parametrize("window", [1, 5, 8])
@pytest.mark.parametrize("power", [1.0, 2.0])
def test_matches_reference(window: int, power: float) -> None:
    rng = np.random.default_rng(window)
    norms = np.exp(rng.normal(0.0, 0.3, 60)) * np.linspace(1.0, 3.0, 60)
    np.testing.assert_allclose(
        refined_lrs(norms, window, power), reference(norms, window, power), rtol=1e-12
    )


def test_constant_norms_give_linear_decay() -> None:
    # with no information the paper's optimum is linear decay to zero
    np.testing.assert_allclose(refined_lrs(np.ones(101), 1), np.linspace(1, 0, 101), atol=1e-15)


def test_rising_norms_anneal_earlier() -> None:
    lrs = refined_lrs(np.linspace(1.0, 4.0, 1000), 1)
    # growing gradient norms late in training shift LR mass early: below linear decay midway
    assert lrs[500] < 0.5 * 0.6 and lrs[-1] == 0.0 and lrs.max() == 1.0


def test_median_filter_ignores_spikes() -> None:
    norms = np.ones(200)
    norms[5::25] = 100.0  # isolated loss spikes
    # a window of 5 removes isolated spikes completely: back to linear decay
    np.testing.assert_allclose(refined_lrs(norms, 5), np.linspace(1, 0, 200), atol=1e-12)


def test_refine_method_scales_and_warms_up() -> None:
    s = Schedule.from_spec({"kind": "linear", "peak": 3e-4, "total": 400, "warmup": 20})
    norms = np.linspace(1.0, 2.0, 400)
    r = s.refine(norms, window=0.05, warmup=20)
    lrs = r.array()
    assert r.kind == "recorded" and r.total == 400
    assert lrs.max() == pytest.approx(3e-4, rel=1e-12)  # normalised to the schedule's peak
    np.testing.assert_allclose(lrs[:20], np.linspace(0.0, lrs[20], 20), rtol=1e-12)  # warmup
    assert s.refine(norms, peak=1.0).peak == pytest.approx(1.0)


def test_refine_from_sparse_curve_interpolates() -> None:
    s = Schedule.from_spec({"kind": "cosine", "peak": 1.0, "total": 100})
    every_step = s.refine(np.full(100, 2.0), window=1)
    sparse = s.refine(Curve([0, 50, 99], [2.0, 2.0, 2.0]), window=1)
    # norms logged every 50 steps are interpolated to every step
    np.testing.assert_allclose(sparse.array(), every_step.array(), rtol=1e-12)


@pytest.mark.parametrize(
    ("norms", "match"),
    [
        (np.r_[np.ones(99), 0.0], r"norms\[99\] = 0.0"),
        (np.r_[np.nan, np.ones(99)], r"norms\[0\] = nan"),
        (np.ones(50), "50 gradient norms for a schedule of 100 steps"),
        (Curve([0, 10], [1.0, 1.0]), "end at step 10"),
    ],
)
def test_bad_norms(norms: object, match: str) -> None:
    s = Schedule.from_spec({"kind": "cosine", "peak": 1.0, "total": 100})
    with pytest.raises(ScheduleError, match=match):
        s.refine(norms)


@pytest.mark.parametrize(("window", "steps"), [(0.1, 100), (7, 7), (0.001, 1)])
def test_window_steps(window: float, steps: int) -> None:
    assert window_steps(window, 1000) == steps


@pytest.mark.parametrize("window", [0, -1, float("nan"), 2.5])
def test_bad_window(window: float) -> None:
    with pytest.raises(ScheduleError, match="window"):
        window_steps(window, 1000)
