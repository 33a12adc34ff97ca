from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import runcast
from runcast import Curve, Schedule
from runcast.errors import FitError, InvalidInputError
from runcast.forecast._api import BACKTEST_RANGE
from runcast.forecast._known import areas, fit_known
from runcast.forecast._prep import prepare

SPEC = {
    "kind": "wsd",
    "peak": 1e-3,
    "end": 1e-4,
    "warmup": 100,
    "total": 10_000,
    "decay_start": 8000,
}


def _momentum_truth(sched: Schedule, lam: float = 0.995) -> np.ndarray:
    s1, s2 = areas(sched, 9999, lam)
    # warm-up starts at LR 0, so S1 = 0 at step 0: keep it positive
    return 2.5 + 1.5 * (np.maximum(s1, 1e-9) / s1[2000]) ** -0.4 - 0.1 * s2


def _reference_areas(lrs: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    eta = lrs / lrs.max()
    s1 = np.cumsum(eta)
    m, s2, acc = 0.0, np.zeros_like(eta), 0.0
    for i in range(eta.size):
        drop = max(eta[i - 1] - eta[i], 0.0) if i else 0.0
        m = lam * m + (1 - lam) * drop
        acc += m
        s2[i] = acc
    return s1, s2


@pytest.mark.parametrize("lam", [0.99, 0.999])
def test_areas_match_the_plain_loop(lam: float) -> None:
    sched = Schedule.from_spec(SPEC)
    fast = areas(sched, 9999, lam)
    ref = _reference_areas(sched.array(10_000), lam)
    np.testing.assert_allclose(fast[0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(fast[1], ref[1], rtol=1e-9, atol=1e-12)


def test_forecasts_a_cooldown_not_yet_seen() -> None:
    sched = Schedule.from_spec(SPEC)
    truth = _momentum_truth(sched)
    steps = np.arange(200, 5001, 20)
    raw = fit_known(prepare(Curve(steps, truth[steps]), 9999), sched, n_paths=200)
    final = float(np.median(raw.prep.to_values(raw.paths[:, -1])))
    # the observed part is all at constant LR: only the schedule tells about the cooldown drop;
    # the forecast lands within 1% of the truth, below the constant-LR continuation
    assert final == pytest.approx(truth[9999], rel=0.01)
    assert final < truth[9999] + 0.1 * 0.5


def test_rejects_a_rising_curve() -> None:
    s = np.arange(10, 2000, 10)
    p = prepare(Curve(s, 0.9 - 0.5 * (s / 10.0) ** -0.5), until=5000)
    with pytest.raises(InvalidInputError, match="rises"):
        fit_known(p, Schedule.from_spec(SPEC), n_paths=10)


def test_law_plus_pfn_mixes_both_on_the_same_steps() -> None:
    from runcast.forecast import forecast
    from runcast.forecast._registry import METHODS

    sched = Schedule.from_spec(SPEC)
    truth = _momentum_truth(sched)
    steps = np.arange(200, 5001, 20)
    f = forecast(Curve(steps, truth[steps]), 9999, sched, method="law+pfn", n_paths=200)
    law = forecast(Curve(steps, truth[steps]), 9999, sched, method="law", n_paths=200)
    # without the PFN installed the blend is the law alone
    assert f.method == ("law+pfn" if "pfn" in METHODS else "law")
    assert f.steps.tolist() == law.steps.tolist()
    assert law.final.median == pytest.approx(truth[9999], rel=0.01)
    if f.method == "law+pfn":
        pfn = forecast(Curve(steps, truth[steps]), 9999, sched, method="pfn", n_paths=200)
        lo, hi = sorted((law.final.median, pfn.final.median))
        # the mixture's point forecast lies between its two components'
        assert lo - 1e-9 <= f.final.median <= hi + 1e-9


def test_law_plus_pfn_is_calibrated_as_a_whole() -> None:
    from runcast.forecast import forecast
    from runcast.forecast._calibrate import default_calibration
    from runcast.forecast._known import blend
    from runcast.forecast._registry import METHODS

    if "pfn" not in METHODS:
        pytest.skip("the PFN is not installed: law+pfn is the law alone")
    sched = Schedule.from_spec(SPEC)
    curve = Curve(np.arange(200, 5001, 20), _momentum_truth(sched)[200:5001:20])
    f = forecast(curve, 9999, sched, method="law+pfn", n_paths=200)
    raw = forecast(curve, 9999, sched, method="law+pfn", n_paths=200, calibrate=False)
    # the mixture's own factor, from the shipped "law+pfn" model and the law's features
    k = f.info["spread"]
    expect = default_calibration().tau("law+pfn", 5000 / 9999, f.info["law"]["features"])
    assert k == pytest.approx(expect, abs=1e-4)
    assert raw.info["spread"] == 1.0 and k != pytest.approx(1.0)
    # the factor scales the spread: the calibrated band is the raw one shrunk or widened by k
    width = np.subtract(*f.final.interval(0.8)[::-1])
    raw_width = np.subtract(*raw.final.interval(0.8)[::-1])
    assert (width < raw_width) == (k < 1.0)
    # blend() keeps every other path of each component and the per-step medians
    a = forecast(curve, 9999, sched, method="law", n_paths=200)
    b = forecast(curve, 9999, sched, method="pfn", n_paths=200, steps=a.steps)
    mixed = blend(a, b, 0.0)  # zero spread: each component collapses onto its median
    assert set(np.round(mixed.samples[:, -1], 9)) == {
        round(float(np.median(a.samples[:, -1])), 9),
        round(float(np.median(b.samples[:, -1])), 9),
    }


def test_blend_keeps_a_widened_positive_loss_positive() -> None:
    from runcast.forecast import Forecast
    from runcast.forecast._known import blend

    paths = np.linspace(0.05, 1.95, 40)[:, None].repeat(3, axis=1)  # a loss around 1.0
    f = Forecast([1, 2, 3], paths, direction="down")
    wide = blend(f, f, 5.0)
    # widening by 5 would send the lower paths to -3.75; the warp keeps them above 0 and
    # leaves the median where it was
    assert wide.samples.min() > 0
    assert np.median(wide.samples[:, 0]) == pytest.approx(np.median(paths[:, 0]), rel=0.02)
    assert np.ptp(wide.samples[:, 0]) > 4 * np.ptp(paths[:, 0])


def test_law_forecast_scales_its_bands_by_a_backtest_on_the_run() -> None:
    from runcast.forecast import forecast

    sched = Schedule.from_spec(SPEC)
    truth = _momentum_truth(sched)
    steps = np.arange(200, 5001, 20)
    f = forecast(Curve(steps, truth[steps]), 9999, sched, method="law")
    # the law forecast the observed second half from the first half; its error ratio is kept
    # (a noise-free curve of the law's own family backtests far better than its typical h)
    assert BACKTEST_RANGE[0] <= f.info["backtest_ratio"] < 0.2
    assert f.info["features"]["log_backtest"] == pytest.approx(np.log(f.info["backtest_ratio"]))
    g = forecast(Curve(steps, truth[steps]), 9999, sched, method="law", backtest=False)
    assert "backtest_ratio" not in g.info
    # the calibration model then knows it has no backtest to go on (nor a failed one)
    assert g.info["features"]["log_backtest"] == 0.0 == g.info["features"]["no_backtest"]


def _bayes_k_reference(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    prior_mean: np.ndarray,
    prior_sd: np.ndarray,
    sigma2: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_bayes_k`` written plainly, one design at a time: the oracle for its batched form."""
    prec0 = np.diag(1.0 / prior_sd**2)
    means, covs, evs = [], [], []
    for Xk in X:
        P = Xk.T @ np.diag(w) @ Xk / sigma2 + prec0
        cov = np.linalg.inv(P)
        mean = cov @ (Xk.T @ (w * y) / sigma2 + prec0 @ prior_mean)
        r = y - Xk @ mean
        d = mean - prior_mean
        quad = float(r @ (w * r)) / sigma2 + float(d @ prec0 @ d)
        logdet = float(np.linalg.slogdet(P)[1])
        means.append(mean)
        covs.append(cov)
        evs.append(-0.5 * quad - 0.5 * logdet - float(np.sum(np.log(prior_sd))))
    return np.array(means), np.array(covs), np.array(evs)


def test_batched_posterior_matches_the_plain_one() -> None:
    from runcast.forecast.laws._grid import _bayes_k

    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 40, 3))
    y, w = rng.standard_normal(40), rng.uniform(0.5, 2.0, 40)
    prior_mean, prior_sd = np.array([0.0, 0.0, 0.3]), np.array([2.0, 10.0, 0.3])
    fast = _bayes_k(X, y, w, prior_mean, prior_sd, 0.2)
    ref = _bayes_k_reference(X, y, w, prior_mean, prior_sd, 0.2)
    # the batched matmuls are the same posterior (means, covariances, evidences)
    for a, b in zip(fast, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_a_fit_with_no_finite_evidence_is_a_fit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # NaN evidence everywhere (seen on sweep curves) made rng.choice raise numpy's ValueError
    # "Probabilities contain NaN" out of forecast(); it must be a FitError auto can fall back from
    import runcast.forecast.laws._grid as grid

    real = grid._bayes_k

    def nan_evidence(*args: Any, **kwargs: Any) -> Any:
        mean, cov, log_ev = real(*args, **kwargs)
        return mean, cov, np.full_like(log_ev, np.nan)

    monkeypatch.setattr(grid, "_bayes_k", nan_evidence)
    spec = {"kind": "cosine", "peak": 1e-3, "end": 1e-4, "warmup": 100, "total": 10_000}
    steps = np.arange(200, 4001, 20)
    curve = runcast.Curve(steps, 2.0 + 3.0 * (steps / 100.0) ** -0.4)
    with pytest.raises(FitError, match="cannot be fitted"):
        runcast.forecast(curve, until=9_999, schedule=spec, method="law")
    # auto still answers (its fallback, not the law)
    f = runcast.forecast(curve, until=9_999, schedule=spec)
    assert f.method != "law" and np.isfinite(f.final.median)
