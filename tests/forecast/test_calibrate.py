from __future__ import annotations

import json

import numpy as np
import pytest

from runcast import Curve
from runcast.forecast._calibrate import (
    FEATURES,
    TAU_RANGE,
    Calibration,
    RawForecast,
    coverage,
    default_calibration,
    features,
    fit_log_tau,
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


def test_calibration_model_is_log_linear_in_the_features() -> None:
    cal = Calibration({"m": (float(np.log(2.0)), 1.0, 0.0, 0.5)})
    # log tau = log 2 + log(fraction) + 0.5 * log_backtest
    assert cal.tau("m", 0.5) == pytest.approx(1.0)
    feats = {"log_frac": float(np.log(0.5)), "log_backtest": float(np.log(4.0))}
    assert cal.tau("m", 0.5, feats) == pytest.approx(2.0)
    # no model for a method: tau = 1 (the raw posterior plus its shape)
    assert cal.tau("unknown", 0.3) == 1.0


def test_tau_is_clipped_to_its_range() -> None:
    cal = Calibration({"m": (50.0,), "n": (-50.0,)})
    # a wild extrapolation of the model must not give absurd bands
    assert cal.tau("m", 0.5) == TAU_RANGE[1] and cal.tau("n", 0.5) == TAU_RANGE[0]


def test_json_round_trip(tmp_path: object) -> None:
    cal = Calibration({"law": (0.1, -0.2, 0.0, 0.3, 0.0, 0.5)})
    raw = json.loads(cal.to_json())
    # the file names its features, so a reader knows what each coefficient multiplies
    assert raw["features"] == ["intercept", *FEATURES]
    assert raw["models"]["law"] == [0.1, -0.2, 0.0, 0.3, 0.0, 0.5]


def test_shipped_model_loads() -> None:
    cal = default_calibration()
    # the model bench/forecast_cutoff.py --write-calibration fitted: every calibrated method
    assert {"law", "ensemble", "pfn", "pfn+schedule", "pfn+ensemble"} <= set(cal.models)
    for m in cal.models:
        for frac in (0.1, 0.3, 0.7):
            assert TAU_RANGE[0] <= cal.tau(m, frac) <= TAU_RANGE[1]
        # with the range of every feature it was fitted on
        assert len(cal.ranges[m]) == len(FEATURES)
        assert all(lo <= hi for lo, hi in cal.ranges[m])


def test_features_are_clipped_to_what_the_model_saw() -> None:
    coef = (0.0, -1.0, 0.0, 0.0, 0.0, 0.0)  # wider the less of the run is seen
    box = [(np.log(0.1), np.log(0.7)), (0.0, 6.0)] + [(0.0, 0.0)] * (len(FEATURES) - 2)
    cal = Calibration({"m": coef}, {"m": box})
    # inside the box the model as fitted; outside, the nearest point it saw
    assert cal.tau("m", 0.2) == pytest.approx(5.0)
    assert cal.tau("m", 0.07) == pytest.approx(10.0) == cal.tau("m", 0.1)
    assert cal.tau("m", 0.99) == pytest.approx(1 / 0.7)
    # no range (a model written before ranges were kept): the fitted line, extrapolated
    assert Calibration({"m": coef}).tau("m", 0.07) == pytest.approx(1 / 0.07)
    # the JSON keeps the box
    raw = json.loads(cal.to_json())
    assert raw["ranges"]["m"][0] == pytest.approx([np.log(0.1), np.log(0.7)])


def test_the_shipped_blind_model_does_not_narrow_a_very_early_forecast() -> None:
    # fitted on cut-offs at 10-70% of a run: its quadratic in log_frac, extrapolated, made a
    # forecast from 1% of a run narrower than one from 10%; out of the box it may only widen
    # (the out-of-distribution term), never narrow
    cal = default_calibration()
    early = cal.tau("pfn+ensemble", 0.01, {"log_frac": np.log(0.01), "log_frac2": 21.2})
    seen = cal.tau("pfn+ensemble", 0.1)
    assert early >= seen * 0.95


@pytest.mark.parametrize(
    ("spec", "left"),
    [
        ({"kind": "constant", "peak": 1.0, "total": 4001}, 0.0),
        ({"kind": "wsd", "peak": 1.0, "end": 0.1, "decay_start": 3000, "total": 4001}, 0.9),
        ({"kind": "cosine", "peak": 1.0, "end": 0.0, "total": 4001}, 0.8536),
    ],
)
def test_features_see_the_anneal_still_to_come(spec: dict[str, object], left: float) -> None:
    from runcast import Schedule

    p = prepare(Curve(np.arange(0, 1001, 10), np.linspace(3.0, 2.0, 101)), 4000)
    f = features(p, 0.5, backtest_ratio=2.0, lr=np.asarray(Schedule.from_spec(spec).array(4001)))
    # the LR drop between the cut-off and until, in units of the peak
    assert f["anneal_left"] == pytest.approx(left, abs=2e-3)
    assert f["log_backtest"] == pytest.approx(np.log(2.0))
    assert f["log_frac"] == pytest.approx(np.log(1000 / 4000))


def test_fit_log_tau_recovers_a_feature_dependence() -> None:
    from scipy.stats import norm

    # records whose ideal tau is 2 * exp(-x): a normal band of half-width z * tau / ideal
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, 60)
    ideal = 2.0 * np.exp(-x)
    grid = np.concatenate([[0.0], np.geomspace(0.02, 20.0, 80)])
    c80 = 2 * norm.cdf(1.2816 * grid[None, :] / ideal[:, None]) - 1
    c95 = 2 * norm.cdf(1.96 * grid[None, :] / ideal[:, None]) - 1
    X = np.stack([np.ones_like(x), x], axis=1)
    bins = [(x >= lo) & (x < lo + 0.25) for lo in np.arange(-1.0, 1.0, 0.25)]
    coef = fit_log_tau(X, c80, c95, grid, bins, [1.0] * len(bins), ridge=0.0)
    # the slope and intercept of the true dependence, from per-bin coverage alone
    assert coef == pytest.approx([np.log(2.0), -1.0], abs=0.08)


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
