from __future__ import annotations

import numpy as np
import pytest

from runcast import Curve
from runcast.forecast._calibrate import (
    Calibration,
    RawForecast,
    coverage,
    default_calibration,
    fit_tau,
)
from runcast.forecast._prep import prepare


def _raw(noise: float = 0.0) -> RawForecast:
    s = np.arange(0, 1000, 10)
    v = 2.0 + (s + 10) ** -0.3 + noise * np.random.default_rng(0).standard_normal(s.size)
    p = prepare(Curve(s, v), 5000)
    paths = np.tile(np.linspace(0.0, -0.5, p.out_steps.size), (500, 1))
    return RawForecast(p, paths, anchor=0.0)


def test_tau_zero_and_no_noise_reproduces_the_paths() -> None:
    raw = _raw()
    f = raw.finish("x", 0.0, noise=False)
    np.testing.assert_allclose(f.samples, raw.prep.to_values(raw.paths))


def test_bands_widen_with_tau_and_the_horizon() -> None:
    raw = _raw()
    w1 = np.subtract(*raw.finish("x", 1.0, noise=False).interval(0.8)[::-1])
    w2 = np.subtract(*raw.finish("x", 2.0, noise=False).interval(0.8)[::-1])
    # twice the discrepancy scale, about twice the width; wider further out
    assert w2[-1] == pytest.approx(2 * w1[-1], rel=0.05)
    assert w1[-1] > w1[0]


def test_observation_noise_is_added() -> None:
    raw = _raw(noise=0.05)
    f = raw.finish("x", 0.0, noise=True)
    # per-step noise SD measured on the curve ends up in the forecast's spread
    assert f.samples[:, 0].std() == pytest.approx(raw.prep.noise_sd, rel=0.15)


def test_calibration_interpolates_in_log_fraction() -> None:
    cal = Calibration({"m": ((0.1, 2.0), (0.4, 1.0))})
    assert cal.tau("m", 0.2) == pytest.approx(1.5)
    assert cal.tau("m", 0.05) == 2.0 and cal.tau("unknown", 0.3) == 1.0


def test_shipped_table_loads() -> None:
    cal = default_calibration()
    # the table bench/forecast_cutoff.py --write-calibration fitted: runcast's methods, 5 cut-offs
    assert {"law", "ensemble"} <= set(cal.table)
    assert all(len(pts) == 5 and all(0 <= t <= 20 for _, t in pts) for pts in cal.table.values())


def test_coverage_counts_inside() -> None:
    raw = _raw()
    f = raw.finish("x", 0.0, noise=False)
    st = f.steps[:4].astype(float)
    truth = f.median[:4] + np.array([0.0, 0.0, 10.0, -10.0])
    assert coverage(f, st, truth, 0.8) == 0.5


def test_fit_tau_hits_the_targets() -> None:
    # coverage of a normal band of half-width 1.2816*tau around 0 for N(0,1) truths
    from scipy.stats import norm

    def cover(case: int, tau: float) -> tuple[float, float]:
        return (2 * norm.cdf(1.2816 * tau) - 1, 2 * norm.cdf(1.96 * tau) - 1)

    assert fit_tau([0], cover) == pytest.approx(1.0, abs=0.1)


def test_discrepancy_keeps_the_posterior_median() -> None:
    raw = _raw()
    rng = np.random.default_rng(1)
    raw.paths = raw.paths + rng.exponential(0.3, size=(500, 1))  # a skewed posterior
    f = raw.finish("x", 5.0, noise=False)
    # a wide symmetric discrepancy must widen the bands, not move the point forecast
    np.testing.assert_allclose(f.median, raw.prep.to_values(np.median(raw.paths, axis=0)))


def test_loss_forecasts_stay_positive_and_keep_their_median() -> None:
    # a short, steep loss curve gives wide bands; a cross-entropy loss can never go below zero
    import runcast

    steps = np.arange(0, 300, 5)
    loss = 0.2 + 3.0 * (steps + 10.0) ** -0.3 + 0.05 * np.random.default_rng(0).standard_normal(60)
    f = runcast.forecast(runcast.Curve(steps, loss), until=20_000, method="ensemble")
    assert f.samples.min() > 0.0
    g = runcast.forecast(runcast.Curve(steps, loss - 5.0), until=20_000, method="ensemble")
    # the warp only applies to positive metrics; shifting the curve shifts the median alone
    np.testing.assert_allclose(g.median, f.median - 5.0, rtol=0, atol=0.05)
