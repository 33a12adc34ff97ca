"""Method "pfn": the forecasts it makes on curves whose truth is known, and on real curves."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runcast
from runcast.errors import FitError, InvalidInputError, NotEnoughDataError
from runcast.forecast._calibrate import FLOOR_SHARE, soft_floor
from runcast.forecast._registry import get_method
from runcast.forecast.pfn import pfn_forecast
from runcast.forecast.pfn._method import LEVELS, pfn_quantiles
from runcast.forecast.pfn._prior import sample_batch


def _power_curve(rng: np.random.Generator, n: int, last: int, noise: float) -> tuple[Any, float]:
    """A sparse power-law eval curve observed up to ``last``; returns it and its value at 5x."""
    alpha, l0, a = rng.uniform(0.2, 0.8), rng.uniform(1.5, 4.0), rng.uniform(1.0, 5.0)
    s = np.unique(np.linspace(50, last, n).astype(int))
    f = lambda t: l0 + a * (t / 50.0) ** -alpha  # noqa: E731
    y = f(s) + noise * rng.standard_normal(s.size)
    return runcast.Curve(s, y), float(f(5 * last))


def _mpl_like(steps: np.ndarray, sched: runcast.Schedule, total: int) -> np.ndarray:
    """Loss under a schedule by the momentum law (Tissue et al. 2024), a plain-loop reference."""
    lr = sched.array(total + 1) / sched.peak
    s1 = np.cumsum(lr)
    m, s2, out = 0.0, np.zeros(total + 1), []
    for t in range(1, total + 1):
        m = 0.999 * m + max(lr[t - 1] - lr[t], 0.0)
        s2[t] = s2[t - 1] + m
    for t in steps:
        out.append(2.5 + 4.0 * (s1[t] / 100.0 + 1.0) ** -0.45 - 0.1 * s2[t] / s2[-1])
    return np.array(out)


def test_registered_as_pfn() -> None:
    m = get_method("pfn")
    assert m.fn is pfn_forecast
    assert m.needs_schedule is False  # works without a schedule, uses one when given


def test_errors_name_the_fix() -> None:
    with pytest.raises(NotEnoughDataError, match="at least 4"):
        pfn_forecast(runcast.Curve([1, 2, 3], [3.0, 2.0, 1.5]), until=10)
    c = runcast.Curve([1, 2, 3, 4], [3.0, 2.0, 1.5, 1.4])
    with pytest.raises(InvalidInputError, match="after the last observed step 4"):
        pfn_forecast(c, until=4)


def test_held_out_prior_draws_are_covered_end_to_end() -> None:
    # prior draws never seen in training (seed 999), turned into real Curves: steps and values
    # go through the whole method (normalisation, features, quantiles) and must stay calibrated
    b = sample_batch(np.random.default_rng(999), batch=256)
    until, hits = 1_000_000, []
    for i in np.flatnonzero(b.obs_feat[:, 0, 4] == 0):  # the draws without a visible schedule
        m = b.obs_mask[i]
        steps = np.round(b.obs_feat[i, m, 0] * until).astype(np.int64)
        if (np.diff(steps) <= 0).any():
            continue
        curve = runcast.Curve(steps, np.sinh(b.obs_z[i, m]))
        # the network alone: the shipped calibration is fitted on real curves, not on the prior
        f = pfn_forecast(curve, until, steps=[until], direction="down", calibrate=False)
        lo, hi = f.final.interval(0.8)
        hits.append(lo <= np.sinh(b.q_z[i, -1]) <= hi)
    assert len(hits) > 80
    # 80% intervals hold the truth ~80% of the time (about 100 draws: +-8% at 2 sd)
    assert 0.68 <= np.mean(hits) <= 0.92, np.mean(hits)


def test_power_laws_are_extrapolated() -> None:
    rng = np.random.default_rng(2024)
    hits, errs = [], []
    for _ in range(40):
        curve, truth = _power_curve(rng, int(rng.integers(8, 60)), 1000, 0.02)
        # the network's own bands: the shipped calibration is fitted on real runs, not these
        f = pfn_forecast(curve, until=5000, steps=[5000], calibrate=False)
        lo, hi = f.final.interval(0.8)
        hits.append(lo <= truth <= hi)
        errs.append(abs(f.final.median - truth) / truth)
    # from 20% of the run, without a schedule: the final value within a few %, and intervals
    # that do not under-cover (they are wide on the low side: an unseen cooldown could come)
    assert np.median(errs) < 0.025, np.median(errs)
    assert np.mean(hits) >= 0.75, np.mean(hits)


def test_schedule_lets_it_see_a_cooldown_coming() -> None:
    total = 20_000
    sched = runcast.Schedule.from_spec(
        {
            "kind": "wsd",
            "peak": 1e-3,
            "end": 1e-5,
            "warmup": 200,
            "total": total,
            "decay_start": 16_000,
            "decay_shape": "linear",
        }
    )
    steps = np.arange(200, total + 1, 200)
    y = _mpl_like(steps, sched, total)
    obs = steps <= 4_000  # observed: the first 20%, no cooldown yet
    curve = runcast.Curve(steps[obs], y[obs])
    with_s = pfn_forecast(curve, total, sched)
    without = pfn_forecast(curve, total)
    truth = y[-1]
    # knowing the cooldown is ahead, the forecast expects (and gets) a lower final loss
    assert with_s.final.median < without.final.median
    assert abs(with_s.final.median - truth) < abs(without.final.median - truth)
    assert abs(with_s.final.median - truth) / truth < 0.02
    lo, hi = with_s.final.interval(0.8)
    assert lo < truth < hi
    assert with_s.info["schedule"] is True and without.info["schedule"] is False


def test_accuracies_rise() -> None:
    s = np.arange(1, 41) * 100
    acc = 0.9 - 0.6 * (s / 100.0) ** -0.5
    f = pfn_forecast(runcast.Curve(s, acc), until=20_000)
    assert f.direction == "up"
    # an accuracy keeps rising but stays below its asymptote of 0.9
    assert acc[-1] < f.final.median < 0.9
    assert f.prob_beats(acc[-1]) > 0.8


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
def test_scale_free(scale: float) -> None:
    s = np.arange(1, 31) * 100
    y = 3.0 + 2.0 * (s / 100.0) ** -0.5
    base = pfn_forecast(runcast.Curve(s, y), until=9000).final.median
    f = pfn_forecast(runcast.Curve(s, scale * y), until=9000)
    # a loss in other units gives the same forecast in those units
    assert f.final.median == pytest.approx(scale * base, rel=1e-5)


def _dense(rng: np.random.Generator, spikes: bool) -> runcast.Curve:
    s = np.arange(0, 30_000)
    y = 2.8 + 5.0 * (1 + s / 200.0) ** -0.5 + 0.05 * rng.standard_normal(s.size)
    if spikes:
        idx = rng.choice(s.size, 60, replace=False)
        y[idx] += rng.uniform(1.0, 5.0, 60)
    return runcast.Curve(s, y)


def test_dense_curves_are_binned_and_robust_to_spikes() -> None:
    clean = pfn_forecast(_dense(np.random.default_rng(0), False), until=100_000)
    spiky = pfn_forecast(_dense(np.random.default_rng(0), True), until=100_000)
    assert clean.info["binned"] and clean.info["context_points"] == 100
    # per-point noise of the raw curve is measured (0.05 here) ...
    assert clean.info["point_noise"] == pytest.approx(0.05, rel=0.15)
    # ... and 60 spikes of +1..5 move the forecast by under 0.5%
    assert spiky.final.median == pytest.approx(clean.final.median, rel=5e-3)


def test_noise_widens_intervals_only() -> None:
    c = _dense(np.random.default_rng(1), False)
    noisy = pfn_forecast(c, until=100_000, calibrate=False)
    smooth = pfn_forecast(c, until=100_000, noise=False, calibrate=False)
    lo_n, hi_n = noisy.final.interval(0.8)
    lo_s, hi_s = smooth.final.interval(0.8)
    assert noisy.final.median == pytest.approx(smooth.final.median, rel=1e-3)
    # the single-step scatter (sd 0.05, 80% half-width 1.28 * 0.05) adds in quadrature
    half_n, half_s = (hi_n - lo_n) / 2, (hi_s - lo_s) / 2
    expected = np.sqrt(half_s**2 + (1.2816 * noisy.info["point_noise"]) ** 2)
    assert half_n == pytest.approx(expected, rel=0.05)
    assert half_n > half_s + 0.01


@pytest.mark.parametrize("spread", [0.5, 2.0])
def test_spread_scales_the_trend_band_around_the_median(spread: float) -> None:
    s = np.arange(1, 41) * 10
    # below zero, so that the positivity warp of losses does not bend the tails
    q = pfn_quantiles(runcast.Curve(s, s**-0.5 - 2.0), until=2000)
    base, wide = q.finish(1.0, noise=False), q.finish(spread, noise=False)
    lo, hi = base.final.interval(0.8)
    lo2, hi2 = wide.final.interval(0.8)
    # calibration moves no point forecast; it scales the band's width by the factor
    assert wide.final.median == pytest.approx(base.final.median, rel=1e-6)
    assert hi2 - lo2 == pytest.approx(spread * (hi - lo), rel=1e-3)


def test_loss_forecasts_stay_positive_and_keep_their_median() -> None:
    # a short, steep loss forecast far ahead: the network's lower band crosses zero
    s = np.arange(1, 21) * 10
    c = runcast.Curve(s, 0.05 + 3.0 * (s / 10.0) ** -0.8)
    q = pfn_quantiles(c, until=50_000)
    mid = q.yq[:, q.yq.shape[1] // 2]  # the network's median (level 0.5)
    lowest = mid + 3.0 * (q.yq[:, 0] - mid)  # its lowest quantile, spread 3x, unwarped
    assert q.positive and (lowest < 0).any()
    f = q.finish(3.0, noise=False)
    # a loss never goes below zero; the warp bends the far tail only, the median stays
    assert f.samples.min() > 0.0
    np.testing.assert_allclose(f.median, mid, rtol=1e-3)  # paths interpolate the levels
    # an accuracy, or a metric already below zero, is left alone
    assert not pfn_quantiles(runcast.Curve(s, c.value - 1.0), until=50_000).positive


def test_calibrated_by_the_shipped_model_keyed_by_schedule() -> None:
    from runcast.forecast._calibrate import default_calibration

    s = np.arange(1, 41) * 10
    c = runcast.Curve(s, 1.0 + s**-0.5)
    sched = runcast.Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "total": 2001})
    cal = default_calibration()
    for schedule, key in ((None, "pfn"), (sched, "pfn+schedule")):
        q = pfn_quantiles(c, 2000, schedule)
        f = pfn_forecast(c, 2000, schedule)
        # the spread applied is the model's, for this forecast's features
        want = cal.tau(key, q.fraction, q.calibration_features())
        assert f.info["spread"] == pytest.approx(want, rel=1e-4)
    assert pfn_forecast(c, 2000, calibrate=False).info["spread"] == 1.0


def test_steps_and_paths() -> None:
    s = np.arange(1, 21) * 10
    f = pfn_forecast(
        runcast.Curve(s, 1.0 + s**-0.5), until=1000, steps=[300, 600, 1000], n_paths=64
    )
    assert f.steps.tolist() == [300, 600, 1000]
    assert f.samples.shape == (64, 3)
    d = pfn_forecast(runcast.Curve(s, 1.0 + s**-0.5), until=1000)
    assert d.steps[0] == 201 and d.steps[-1] == 1000 and d.steps.size == 200


def test_fast() -> None:
    s = np.arange(1, 101) * 10
    c = runcast.Curve(s, 1.0 + s**-0.5)
    pfn_forecast(c, until=5000)  # load the weights once
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        pfn_forecast(c, until=5000)
        times.append(time.perf_counter() - t0)
    # a few ms on an idle core; a loose bound, since CI machines are shared
    assert np.median(times) < 0.05


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt") as fh:
        fh.readline()
        arr = np.loadtxt(fh, delimiter=",")
    return arr[:, 0].astype(np.int64), arr[:, -1]


@pytest.mark.parametrize("name", ["cosine_72000", "constant_72000", "wsd_20000_24000"])
def test_real_mpl_curve_from_20_percent(shared_data: Path, catalog: dict, name: str) -> None:
    entry = next(e for e in catalog["curves"] if e["file"] == f"curves/mpl/100M/{name}.csv")
    step, loss = _read(shared_data / entry["file"])
    sched = runcast.Schedule.from_spec(entry["schedule"])
    until = int(step[-1])
    obs = step <= 0.2 * until
    f = pfn_forecast(runcast.Curve(step[obs], loss[obs]), until, sched)
    # a real 100M LLaMA validation loss, forecast from 20% with its schedule: within 2%
    assert abs(f.final.median - loss[-1]) / loss[-1] < 0.02


def test_a_positive_loss_is_never_forecast_below_zero() -> None:
    # six minibatch losses of a tiny regression (MSE): 18 steps on, the network alone sends its
    # median to -7; that is no forecast, and the error says what to do
    c = runcast.Curve([1, 2, 3, 4, 5, 6], [4.737, 3.924, 10.111, 7.091, 0.603, 3.393])
    with pytest.raises(FitError, match=r"below 0 .* forecast a nearer step"):
        pfn_forecast(c, 24)
    # auto answers all the same (on a log scale, or with the mixture's other half), above 0
    f = runcast.forecast(c, 24)
    assert f.samples.min() > 0
    # one step on, its median is positive, and its wide band is kept above 0
    f = pfn_forecast(c, 7)
    assert f.samples.min() > 0 and 0 < f.final.median < 10.111
    # a curve whose median stays well above 0 is left exactly as the network forecast it
    s = np.arange(0, 3001, 50)
    smooth = runcast.Curve(s, 3.0 + 2.0 * (1 + s / 50.0) ** -0.4)
    a = pfn_quantiles(smooth, 10_000).yq
    floor = FLOOR_SHARE * float(smooth.value.min())
    assert a[:, LEVELS.size // 2].min() > 10 * floor
    np.testing.assert_allclose(soft_floor(a, floor)[a > 10 * floor], a[a > 10 * floor], atol=1e-4)
