"""StopRule / should_stop: "stopped learning" from the forecast of the remaining budget."""

from __future__ import annotations

import numpy as np
import pytest

from runcast.curve import Curve
from runcast.errors import InvalidInputError
from runcast.forecast import Forecast
from runcast.steer import StopRule, should_stop


def _curve(n: int = 50, last: float = 1.0) -> Curve:
    return Curve(np.arange(n), np.full(n, last))


@pytest.mark.parametrize(
    ("finals", "tolerance", "action"),
    [
        (np.linspace(0.995, 1.0, 100), 0.01, "stop"),  # at most 0.005 to gain < 0.01
        (np.linspace(0.80, 0.90, 100), 0.01, "continue"),  # 0.1-0.2 still to gain
        (np.linspace(0.95, 1.0, 100), 0.01, "continue"),  # 80% chance of > 0.01: keep going
    ],
)
def test_stop_rule_min(finals: np.ndarray, tolerance: float, action: str) -> None:
    f = Forecast([49, 500], np.c_[np.ones(100), finals])
    d = StopRule(tolerance=tolerance, confidence=0.9).decide(_curve(), 500, forecast=f)
    assert d.action == action
    assert d.numbers["current"] == 1.0  # the median of the recent window
    assert d.numbers["expected_gain"] == pytest.approx(1.0 - np.median(finals))


def test_stop_rule_relative_and_max_mode() -> None:
    acc = Curve(np.arange(20), np.full(20, 0.5))
    f = Forecast([19, 100], [[0.5, 0.52]] * 10, direction="up")
    # +0.02 on 0.5 is 4%: below a 5% relative tolerance -> stop; above 1% -> continue
    assert (
        should_stop(acc, 100, tolerance=0.05, relative=True, mode="max", forecast=f).action
        == "stop"
    )
    d = should_stop(acc, 100, tolerance=0.01, relative=True, mode="max", forecast=f)
    assert d.action == "continue" and d.numbers["tolerance"] == pytest.approx(0.005)


def test_stop_rule_gates() -> None:
    f = Forecast([49, 500], [[1.0, 1.0]])
    assert "min_points" in StopRule(min_points=100).decide(_curve(), 500, forecast=f).reason
    assert "end of its budget" in StopRule().decide(_curve(), 49, forecast=f).reason
    # a budget of -1 (a trainer with no max_steps) said "reached the end of its budget -1"
    for bad in (-1, 0, 2.5, "500"):
        with pytest.raises(InvalidInputError, match="until must be the run's last step"):
            StopRule().decide(_curve(), bad, forecast=f)
    assert StopRule().decide(_curve(), np.int64(500), forecast=f).action == "stop"


def test_stop_rule_with_real_forecast_on_a_flat_run() -> None:
    # a run that converged long ago: the real forecaster must agree nothing is left to gain
    s = np.arange(0, 3000, 10)
    rng = np.random.default_rng(0)
    v = 1.0 + 2.0 * np.exp(-s / 100.0) + 0.002 * rng.standard_normal(s.size)
    d = StopRule(tolerance=0.05, confidence=0.9).decide(Curve(s, v), 6000)
    assert d.action == "stop", d.reason
    # and a run still falling fast must continue
    v2 = 1.0 + 3.0 * (1 + s / 100.0) ** -0.5
    assert StopRule(tolerance=0.05).decide(Curve(s, v2), 100_000).action == "continue"


@pytest.mark.parametrize(
    "kwargs", [{"tolerance": -1.0}, {"confidence": 1.0}, {"window": 0}, {"mode": "down"}]
)
def test_stop_rule_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        StopRule(**kwargs)  # type: ignore[arg-type]
