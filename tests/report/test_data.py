"""Plot data: the debiased EMA against a plain loop, LR thinning, bands, smoothed final values."""

from __future__ import annotations

import numpy as np
import pytest

from runcast import Curve, Schedule
from runcast.errors import InvalidInputError
from runcast.forecast import Forecast
from runcast.report import auto_beta, band_data, curve_data, ema, lr_data, reached, trend
from runcast.report._data import thin_indices


def ema_reference(values: list[float], beta: float) -> list[float]:
    """The textbook loop: m = beta*m + (1-beta)*x, divided by 1 - beta^n; NaN skipped."""
    m, n, out = 0.0, 0, []
    for x in values:
        if np.isnan(x):
            out.append(float("nan"))
            continue
        n += 1
        m = beta * m + (1 - beta) * x
        out.append(m / (1 - beta**n))
    return out


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.9, 0.99, 0.999])
@pytest.mark.parametrize("nan_every", [0, 7])
def test_ema_matches_plain_loop(beta: float, nan_every: int) -> None:
    x = np.random.default_rng(1).normal(3.0, 1.0, size=3000)
    if nan_every:
        x[::nan_every] = np.nan
    got = ema(x, beta)
    want = np.array(ema_reference(x.tolist(), beta))
    # the vectorised filter and the loop agree to rounding, NaNs in the same places
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.array_equal(np.isnan(got), np.isnan(x))


def test_ema_is_unbiased_from_the_first_point() -> None:
    # without the 1 - beta^n correction the first value would be 0.1 * 5 = 0.5, not 5
    assert ema([5.0, 5.0, 5.0], beta=0.9).tolist() == pytest.approx([5.0, 5.0, 5.0])


@pytest.mark.parametrize("beta", [-0.1, 1.0, 1.5])
def test_ema_rejects_bad_beta(beta: float) -> None:
    with pytest.raises(InvalidInputError, match="beta"):
        ema([1.0], beta)


def test_ema_of_all_missing_is_all_missing() -> None:
    assert np.isnan(ema([np.nan, np.nan], 0.5)).all()


@pytest.mark.parametrize(
    ("n", "beta"), [(1, 0.0), (40, 0.0), (80, 0.5), (4000, 0.99), (10**6, 0.99)]
)
def test_auto_beta_averages_a_fortieth_of_the_curve(n: int, beta: float) -> None:
    assert auto_beta(n) == pytest.approx(beta)


def test_curve_data_keeps_raw_and_smooths() -> None:
    c = Curve([0, 5, 10, 15], [4.0, 2.0, np.nan, 1.0], name="loss")
    d = curve_data(c, beta=0.5)
    assert d.label == "loss"
    assert d.step.tolist() == [0, 5, 10, 15]
    # raw kept as recorded (NaN = missing), EMA = (0.5*1 + 0.25*2 + 0.125*4) / 0.875
    assert np.isnan(d.raw[2]) and d.raw[3] == 1.0
    assert d.smooth[3] == pytest.approx((0.5 * 1 + 0.25 * 2 + 0.125 * 4) / 0.875)


def test_lr_data_thins_but_keeps_both_ends() -> None:
    s = Schedule.from_spec({"kind": "cosine", "peak": 1.0, "end": 0.0, "total": 10_000})
    d = lr_data(s, 10_000, max_points=500)
    assert d.kind == "cosine"
    assert d.step[0] == 0 and d.step[-1] == 9_999 and len(d.step) <= 500
    # thinned points are exact samples of the schedule
    np.testing.assert_array_equal(d.lr, s.array(10_000)[d.step])


def test_lr_data_rejects_empty_total() -> None:
    s = Schedule.from_spec({"kind": "constant", "peak": 1.0})
    with pytest.raises(InvalidInputError, match="total"):
        lr_data(s, 0)


def test_band_data_reads_the_forecast_quantiles() -> None:
    # a forecast whose paths are 1..1000 at both steps: quantiles are known in closed form
    paths = np.repeat(np.arange(1.0, 1001.0)[:, None], 2, axis=1)
    b = band_data(Forecast([10, 20], paths), cutoff_step=9, actual_final=400.0)
    assert b.cutoff_step == 9 and b.step.tolist() == [10, 20]
    assert b.median[1] == pytest.approx(500.5)
    assert (b.lo80[1], b.hi80[1]) == pytest.approx((100.9, 900.1))
    assert (b.lo95[1], b.hi95[1]) == pytest.approx((25.975, 975.025))
    assert b.final.step == 20 and b.final.median == pytest.approx(500.5)
    assert b.actual_final == 400.0


def trend_reference(step: np.ndarray, value: np.ndarray, h: int) -> list[float]:
    """Plain loop: per point, np.polyfit's line through the points up to h either side."""
    out = []
    for i in range(len(value)):
        a, b = max(0, i - h), min(len(value), i + h + 1)
        slope, icpt = np.polyfit(step[a:b].astype(float), value[a:b], 1)
        out.append(float(slope * step[i] + icpt))
    return out


@pytest.mark.parametrize("spacing", ["even", "uneven"])
def test_trend_is_a_local_line_fit(spacing: str) -> None:
    rng = np.random.default_rng(0)
    step = np.arange(0, 3000, 10) if spacing == "even" else np.unique(rng.integers(0, 9000, 300))
    value = 2.0 + 5.0 * (step / 100.0 + 1.0) ** -0.5 + rng.normal(0, 0.05, step.size)
    h = int(np.ceil(0.05 * step.size))  # 5% of the points either side
    # the fast version (moving average inside, fits at the ends) against the plain loop
    np.testing.assert_allclose(
        trend(Curve(step, value)), trend_reference(step, value, h), rtol=1e-9, atol=1e-9
    )


def test_reached_is_the_trend_at_the_last_step_not_a_lagging_mean() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(3000)
    truth = 1.0 + 0.3 * np.clip(2999 - t, 0, 600) / 600  # a cooldown still falling at the end
    c = Curve(t, truth + rng.normal(0, 0.02, t.size))
    # the mean of the last 2% lags ~0.015 above the end of a fall of 0.0005 a step; the trend
    # ends where the curve does, within its noise (2 sd of a line's end through 151 points)
    assert float(np.mean(c.value[-60:])) > 1.012
    assert reached(c) == pytest.approx(1.0, abs=2 * 0.02 * (4 / 151) ** 0.5)
    # the trend's own last value, computed from the last window alone
    assert reached(c) == pytest.approx(float(trend(c)[-1]), rel=1e-9)
    # NaN points are left out; a curve with none finite has reached nothing
    assert reached(Curve([0, 1, 2], [3.0, np.nan, 3.0])) == 3.0
    with pytest.raises(InvalidInputError, match="no finite"):
        reached(Curve([0, 1], [np.nan, np.nan], name="x"))


def thin_reference(values: np.ndarray, max_points: int) -> list[int]:
    """Plain loop: per bucket, the index of its smallest and largest finite value."""
    n = len(values)
    if n <= max_points:
        return list(range(n))
    nb = max(max_points // 2 - 1, 1)
    edges = [int(e) for e in np.linspace(0, n, nb + 1)]
    keep = {0, n - 1}
    for j in range(nb):
        a, b = edges[j], edges[j + 1]
        finite = [i for i in range(a, b) if not np.isnan(values[i])]
        if finite:
            keep.add(min(finite, key=lambda i: values[i]))
            keep.add(max(finite, key=lambda i: values[i]))
        else:
            keep.add(a)
    return sorted(keep)


@pytest.mark.parametrize(("n", "max_points"), [(10, 100), (1000, 100), (12_345, 1000), (999, 3)])
def test_thin_indices_matches_plain_loop_and_keeps_spikes(n: int, max_points: int) -> None:
    v = np.random.default_rng(n).normal(size=n)
    v[n // 3] = 50.0  # a spike
    v[n // 2] = np.nan
    got = thin_indices(v, max_points).tolist()
    assert got == thin_reference(v, max_points)
    # at most the asked number of points, both ends and the spike always kept
    assert len(got) <= max(max_points, 4)
    assert got[0] == 0 and got[-1] == n - 1 and n // 3 in got


def test_thinned_curve_data_keeps_the_full_curve_ema() -> None:
    v = np.random.default_rng(0).normal(size=20_000)
    full = curve_data(Curve(np.arange(20_000), v), beta=0.99)
    thin = full.thinned(1000)
    idx = np.searchsorted(full.step, thin.step)
    # the EMA is the one computed over all 20,000 points, read at the kept steps
    np.testing.assert_array_equal(thin.smooth, full.smooth[idx])
    np.testing.assert_array_equal(thin.raw, v[idx])
    assert len(thin.step) <= 1000 and full.thinned(50_000) is full


@pytest.mark.parametrize(
    ("call", "match"),
    [
        # each was a TypeError or ValueError from Python or numpy, or a silently odd result
        (lambda: ema([1.0, 2.0], "0.5"), "beta must be in"),
        (lambda: ema([1.0, 2.0], None), "beta must be in"),
        (lambda: ema(["a", "b"], 0.5), "ema needs numbers"),
        (lambda: ema([[1.0, 2.0], [3.0, 4.0]], 0.5), r"1-D array\), but got shape \(2, 2\)"),
        (lambda: thin_indices(np.arange(9.0), 2.5), "max_points must be a whole number"),
        (lambda: thin_indices(np.arange(9.0), None), "max_points must be a whole number"),
        (lambda: auto_beta("100"), "n must be a whole number"),  # type: ignore[arg-type]
        (lambda: lr_data(_COSINE, 2.5), "total must be a whole number >= 1"),  # type: ignore[arg-type]
        (lambda: lr_data(_COSINE, True), "total must be a whole number >= 1, but got True"),
        (lambda: lr_data(_COSINE, 100, max_points=0), "max_points must be a whole number >= 2"),
        (lambda: lr_data(_COSINE, 100, max_points=-3), "max_points must be a whole number >= 2"),
    ],
)
def test_plot_data_refuses_odd_arguments(call: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        call()  # type: ignore[operator]


_COSINE = Schedule.from_spec({"kind": "cosine", "peak": 1.0, "total": 100})


def test_ema_takes_numpy_scalars_and_lr_data_its_smallest_sample() -> None:
    # numpy numbers are numbers: np.float32 must stay accepted by the type checks
    assert ema([1.0, 3.0], np.float32(0.5)).tolist() == [1.0, pytest.approx(2.3333333)]
    d = lr_data(_COSINE, 100, max_points=2)
    assert d.step.tolist() == [0, 99]  # the first and the last step, always
