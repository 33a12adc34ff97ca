"""performance_profile and time_to_target: AlgoPerf's ratios, profile and score, by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from runcast import Curve
from runcast.errors import InvalidInputError
from runcast.report import (
    performance_profile,
    profile_figure,
    time_to_target,
    write_profile_html,
)

TIMES = {
    "a": {"w1": 100.0, "w2": 300.0, "w3": 50.0},
    "b": {"w1": 200.0, "w2": 100.0, "w3": None},  # missed w3
    "c": {"w1": 500.0, "w2": float("nan"), "w3": 60.0},  # NaN counts as a miss
}


def test_ratios_profile_and_scores_match_the_definition() -> None:
    p = performance_profile(TIMES)
    assert p.ratios["a"] == {"w1": 1.0, "w2": 3.0, "w3": 1.0}
    assert p.ratios["b"] == {"w1": 2.0, "w2": 1.0, "w3": math.inf}
    assert p.ratios["c"] == {"w1": 5.0, "w2": math.inf, "w3": 1.2}
    # the score is the area under rho on [1, 4] over 3: each solved workload adds (4 - r) / 3
    assert p.scores["a"] == pytest.approx((3 + 1 + 3) / 3 / 3)
    assert p.scores["b"] == pytest.approx((2 + 3 + 0) / 3 / 3)
    assert p.scores["c"] == pytest.approx((0 + 0 + 2.8) / 3 / 3)  # r = 5 > r_max scores 0
    # and it is the numerical area of the drawn profile
    for algo in p.algorithms:
        rho, dt = p.rho[algo], np.diff(p.taus)
        area = float(np.sum((rho[1:] + rho[:-1]) / 2 * dt)) / 3
        assert area == pytest.approx(p.scores[algo], abs=0.01)
    assert p.rho_at("a", 1.0) == pytest.approx(2 / 3) and p.rho_at("a", 3.0) == 1.0
    assert p.rho_at("b", 100.0) == pytest.approx(2 / 3)  # a miss is never within any tau
    wider = performance_profile(TIMES, r_max=6.0)
    assert wider.scores["c"] > p.scores["c"]  # ratio 5 scores once r_max passes it


def test_nobody_reaching_a_workload_and_bad_input() -> None:
    p = performance_profile({"a": {"w": math.inf}, "b": {"w": None}})
    assert p.scores == {"a": 0.0, "b": 0.0}
    with pytest.raises(InvalidInputError, match="non-empty"):
        performance_profile({})
    with pytest.raises(InvalidInputError, match="r_max"):
        performance_profile(TIMES, r_max=1.0)
    with pytest.raises(InvalidInputError, match=">= 0"):
        performance_profile({"a": {"w": -1.0}})
    with pytest.raises(InvalidInputError, match="must be a number"):
        performance_profile({"a": {"w": "fast"}})  # type: ignore[dict-item]


def test_time_to_target_reads_steps_seconds_and_forecasts() -> None:
    steps = np.arange(0, 200, 10)
    curve = Curve(steps, 1.0 + 2.0 / (1.0 + steps / 10.0))
    hit = time_to_target(curve, 1.5, wall=1000.0 + 0.5 * steps, start=990.0)
    # 1 + 2 / (1 + s/10) <= 1.5 from s = 30
    assert (hit.step, hit.seconds, hit.forecast) == (30.0, 25.0, False)
    assert time_to_target(curve, 2.9, direction="up").step == 0.0
    miss = time_to_target(curve, 1.05)  # 1.05 needs s >= 390: not within the run
    assert math.isinf(miss.step) and not miss.forecast
    fc = time_to_target(curve, 1.05, wall=1000.0 + 0.5 * steps, until=1500)
    assert fc.forecast and fc.interval is not None
    # a forecast of a step after the last one, carried to seconds at the run's pace
    assert fc.step > 190
    if math.isfinite(fc.step):
        assert fc.seconds == pytest.approx(0.5 * fc.step, rel=0.01)
    with pytest.raises(InvalidInputError, match="one time per point"):
        time_to_target(curve, 1.5, wall=[1.0, 2.0])


def test_drawn_with_forecasts_marked(tmp_path: Path) -> None:
    p = performance_profile(TIMES, forecast={"b": {"w2": True}})
    fig = profile_figure(p)
    names = [t.name for t in fig.data]
    assert names[1].startswith("b (score") and "forecast" in names[1]
    assert fig.data[1].line.dash == "dash" and fig.data[0].line.dash == "solid"
    out = write_profile_html(p, str(tmp_path / "p.html"))
    html = Path(out).read_text()
    assert "(forecast)" in html and "plotly" in html
