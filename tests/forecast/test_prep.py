from __future__ import annotations

import numpy as np
import pytest

import runcast
from runcast import Curve
from runcast.errors import (
    InvalidCurveError,
    InvalidInputError,
    NotEnoughDataError,
    RuncastWarning,
)
from runcast.forecast._prep import (
    MIN_POINTS,
    bin_curve,
    despike,
    detect_direction,
    noise_sd,
    prepare,
)


def test_dense_curve_is_binned_and_normalised() -> None:
    s = np.arange(1, 140_001)
    c = Curve(
        s, 2.0 + 3.0 * (s / 100.0) ** -0.5 + 0.05 * np.random.default_rng(0).standard_normal(s.size)
    )
    p = prepare(c, until=200_000)
    # 140k points reduce to 200 bin medians; the default grid ends exactly at until
    assert p.x.size == 200 and int(p.out_steps[-1]) == 200_000 and p.out_steps.size <= 200
    # the per-step noise SD is measured, not the trend
    assert p.noise_sd == pytest.approx(0.05, rel=0.1)
    # the normalisation round-trips
    np.testing.assert_allclose(p.to_values(p.y)[-1], np.median(c.value[-700:]), atol=0.02)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([5, 4, 3, 2, 1.5, 1.4, 1.3], "down"), ([0.1, 0.3, 0.5, 0.6, 0.7, 0.72], "up")],
)
def test_direction(values: list[float], expected: str) -> None:
    assert detect_direction(np.array(values, dtype=float)) == expected


def test_accuracy_is_flipped_to_falling() -> None:
    s = np.arange(10, 1000, 10)
    p = prepare(Curve(s, 0.9 - 0.5 * (s / 10.0) ** -0.5), until=2000)
    # an accuracy is fitted as a falling curve: normalised y decreases
    assert p.direction == "up" and p.y[0] > p.y[-1]


def test_despike_removes_a_single_spike() -> None:
    y = np.linspace(3.0, 2.0, 50)
    y[20] = 30.0
    out = despike(y)
    # the spike is replaced by its neighbours' median, other points untouched
    assert out[20] == pytest.approx(y[19] if y[19] < y[21] else y[21], abs=0.05)
    np.testing.assert_array_equal(np.delete(out, 20), np.delete(y, 20))


def test_noise_sd_ignores_a_linear_trend() -> None:
    assert noise_sd(np.linspace(5.0, 1.0, 1000)) == pytest.approx(0.0, abs=1e-9)


def test_bin_curve_keeps_short_curves() -> None:
    x, _, n = bin_curve(np.arange(5.0), np.arange(5.0), 10)
    assert x.size == 5 and n.tolist() == [1.0] * 5


def test_too_few_points_says_how_many() -> None:
    with pytest.raises(NotEnoughDataError, match=f"at least {MIN_POINTS}"):
        prepare(Curve([1, 2, 3], [3.0, 2.0, 1.0]), until=10)


def test_values_too_large_to_forecast_say_to_rescale() -> None:
    # a curve mixing +-1e308 made the grid posterior's weights NaN (numpy's "probabilities
    # contain NaN" escaped the sweep pruner, which catches runcast errors only)
    huge = np.array([1e308, -1e308, 1e308, -1e308, 1e308, -1e308, 1e308, -1e308])
    with pytest.raises(InvalidCurveError, match=r"too large to forecast.*rescale"):
        prepare(Curve(np.arange(8), huge), until=20)
    with pytest.raises(InvalidCurveError, match=r"reach 2e\+101"):
        runcast.forecast(Curve(np.arange(8), np.linspace(2e101, 1e101, 8)), until=20)
    # a large but sane scale is forecast as any other (the fits work in normalised units)
    f = runcast.forecast(Curve(np.arange(50), 1e80 * (1 + 1 / (1 + np.arange(50)))), until=100)
    assert np.isfinite(f.final.median) and 1e80 < f.final.median < 1.2e80


def test_until_before_last_step() -> None:
    with pytest.raises(InvalidInputError, match="until=5 must be after"):
        prepare(Curve(list(range(10)), np.linspace(3, 1, 10)), until=5)


def test_nans_are_dropped_with_a_warning() -> None:
    v = np.linspace(3, 1, 20)
    v[[3, 7]] = np.nan
    with pytest.warns(RuncastWarning, match="Dropped 2 missing"):
        p = prepare(Curve(list(range(20)), v), until=40)
    assert p.n_points == 18


def test_steps_outside_the_horizon_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="steps= must lie after"):
        prepare(Curve(list(range(10)), np.linspace(3, 1, 10)), until=20, steps=[5, 15])


@pytest.mark.parametrize(
    ("steps", "match"),
    [
        ([], "steps= is empty"),
        ([20000], "at most until=10000"),
        ([5000.5], "whole step numbers"),
        (["a"], "list of step numbers"),
        ([[5000]], "list of step numbers"),
    ],
)
@pytest.mark.parametrize("method", ["ensemble", "pfn", "pfn+ensemble", "law+pfn"])
def test_every_method_checks_the_steps_it_is_asked_for(
    steps: list[object], match: str, method: str
) -> None:
    # the PFN took [20000] past until=10000, turned 5000.5 into 5000 and raised IndexError on []
    s = np.arange(0, 3001, 25)
    c = Curve(s, 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6)
    spec = {"kind": "cosine", "peak": 1e-3, "total": 10_001} if method == "law+pfn" else None
    with pytest.raises(InvalidInputError, match=match):
        runcast.forecast(c, 10_000, spec, method=method, steps=steps)


@pytest.mark.parametrize("until", ["abc", float("nan"), float("inf"), 5000.7, None, True])
@pytest.mark.parametrize("method", ["auto", "ensemble", "pfn"])
def test_until_must_be_a_whole_step_number(until: object, method: str) -> None:
    # inf raised OverflowError, 1e20 a numpy UFuncTypeError, None a TypeError, and 5000.7 was
    # silently forecast to step 5000
    s = np.arange(0, 3001, 25)
    c = Curve(s, 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6)
    with pytest.raises(InvalidInputError, match="until must be a whole step number"):
        runcast.forecast(c, until, method=method)
    assert runcast.forecast(c, 5000.0, method=method).steps[-1] == 5000  # a whole float is fine


def test_until_past_2_53_says_so() -> None:
    # a whole number, but one a float step grid cannot hold: say that, not "not whole"
    s = np.arange(0, 3001, 25)
    c = Curve(s, 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6)
    for until in (1e20, 2**60):
        with pytest.raises(InvalidInputError, match="past the 2\\*\\*53 steps"):
            runcast.forecast(c, until)
