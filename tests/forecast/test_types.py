from __future__ import annotations

import numpy as np
import pytest

from runcast.errors import InvalidInputError
from runcast.forecast import Distribution, Forecast


def _normal_forecast(n: int = 4000) -> Forecast:
    rng = np.random.default_rng(1)
    steps = np.array([10, 20, 30])
    means = np.array([3.0, 2.5, 2.0])
    return Forecast(steps, means + 0.1 * rng.standard_normal((n, 3)), method="test")


def test_quantiles_and_intervals_match_the_samples() -> None:
    f = _normal_forecast()
    np.testing.assert_allclose(f.median, [3.0, 2.5, 2.0], atol=0.01)
    lo, hi = f.interval(0.8)
    # a normal's 80% interval is mean ± 1.2816 sd
    np.testing.assert_allclose(hi - lo, 2 * 1.2816 * 0.1, rtol=0.05)
    assert f.final.median == pytest.approx(2.0, abs=0.01)
    assert f.prob_below(2.0) == pytest.approx(0.5, abs=0.03)
    assert f.prob_below(2.0, at=10) == pytest.approx(0.0)


def test_steps_to_counts_never_as_inf() -> None:
    f = Forecast([1, 2, 3], [[3.0, 2.0, 1.0], [3.0, 2.5, 2.2], [3.0, 3.0, 3.0], [0.5, 0.4, 0.3]])
    d = f.steps_to(2.0)
    assert sorted(d.samples.tolist()) == [1.0, 2.0, np.inf, np.inf]
    up = Forecast([1, 2], [[0.1, 0.9]], direction="up")
    assert up.steps_to(0.5).median == 2.0
    assert up.prob_beats(0.5) == 1.0


def test_from_quantiles_keeps_marginals() -> None:
    levels = np.linspace(0.01, 0.99, 99)
    from scipy.stats import norm

    vals = np.stack([norm.ppf(levels, loc=m, scale=0.2) for m in (1.0, 0.5)], axis=1)
    f = Forecast.from_quantiles([5, 6], levels, vals, n_paths=2000)
    np.testing.assert_allclose(f.median, [1.0, 0.5], atol=0.01)
    np.testing.assert_allclose(f.interval(0.8)[1] - f.median, 1.2816 * 0.2, rtol=0.03)


def test_bad_forecast_input() -> None:
    with pytest.raises(InvalidInputError, match="shape"):
        Forecast([1, 2], np.zeros((3, 3)))
    with pytest.raises(InvalidInputError, match="level"):
        _normal_forecast().interval(1.5)
    with pytest.raises(InvalidInputError, match="not a forecast step"):
        _normal_forecast().at(15)
    assert Distribution([1, 2, 3]).to_dict()["median"] == 2.0
    assert _normal_forecast().to_dict()["method"] == "test"


@pytest.mark.parametrize("bad", [float("nan"), "x", None, [1.0, 2.0]])
def test_thresholds_must_be_numbers(bad: object) -> None:
    # P(beats NaN) was 1.0, P(below "x") 1.0 and P(above None) a TypeError
    f = _normal_forecast()
    for call in (f.prob_beats, f.prob_below, f.prob_above, f.final.prob_below, f.steps_to):
        with pytest.raises(InvalidInputError, match="must be a number"):
            call(bad)


def test_infinite_thresholds_are_certain() -> None:
    f = _normal_forecast()
    assert f.prob_below(float("inf")) == 1.0 and f.prob_above(float("inf")) == 0.0
    assert f.steps_to(float("-inf")).median == np.inf  # a loss never gets below -inf


def test_quantiles_of_never_reached_are_inf_not_nan() -> None:
    # most paths never reach the target: the median must say "never" (inf), not NaN
    f = Forecast([1, 2], [[3.0, 2.5], [3.0, 2.9], [3.0, 1.0]])
    d = f.steps_to(2.0)
    assert d.median == np.inf
    assert d.quantile(0.1) == 2.0
    assert d.interval(0.8) == (2.0, np.inf)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Forecast([1, 2], np.ones((0, 2))), "at least one sample path"),
        (lambda: Forecast([1, 2], [["a", "b"]]), "samples must be numbers"),
        (lambda: Forecast([1.5, 2], np.ones((3, 2))), "whole step numbers"),
        (lambda: Forecast.from_quantiles([1], [0.9, 0.1], [[1.0], [2.0]]), "increasing"),
        (lambda: Forecast.from_quantiles([1], [0.0, 0.5], [[1.0], [2.0]]), r"in \(0, 1\)"),
        (lambda: Forecast.from_quantiles([1], [0.5], [[1.0]]), "at least two"),
        (lambda: Forecast.from_quantiles([1], [0.1, 0.9], [[1.0], [2.0]], n_paths=0), "n_paths"),
    ],
)
def test_a_forecast_built_by_hand_is_checked(build: object, match: str) -> None:
    # each of these was accepted (and failed later, or took step 1.5 for 1) or raised numpy's
    # ValueError
    with pytest.raises(InvalidInputError, match=match):
        build()


def test_crossing_quantiles_are_rearranged() -> None:
    # a quantile model's crossing levels are sorted per step: the 10% and 90% values swapped
    f = Forecast.from_quantiles([1], [0.1, 0.5, 0.9], [[3.0], [2.0], [1.0]], n_paths=1000)
    lo, hi = f.final.interval(0.8)
    assert lo == pytest.approx(1.0, abs=0.01) and hi == pytest.approx(3.0, abs=0.01)
