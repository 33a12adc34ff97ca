"""The planner's search pieces: the free-form parameterisation and the memoised objective."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from runcast import Schedule
from runcast.schedules._search import FreeForm, Objective, Setting, describe, search_cosine

SETTING = Setting(budget=500, peak=2e-3, warmup=20)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_free_form_is_always_a_valid_decay(seed: int) -> None:
    form = FreeForm(SETTING, knots=12)
    theta = np.random.default_rng(seed).normal(0.0, 3.0, 11)
    lrs = form.lrs(theta)
    assert lrs.size == 500
    np.testing.assert_array_equal(lrs[:20], np.linspace(0.0, 2e-3, 20))  # the shared warmup
    assert lrs[20] == 2e-3 and (np.diff(lrs[20:]) <= 0).all()  # starts at peak, never rises
    assert (lrs[20:] > 0).all()  # any theta gives positive LRs: no constraint needed


def test_free_form_respects_the_floor() -> None:
    form = FreeForm(Setting(budget=500, peak=2e-3, warmup=20, floor=2e-4), knots=8)
    lrs = form.lrs(np.full(7, 5.0))  # huge drops: would reach ~0 without a floor
    assert lrs[20:].min() >= 2e-4 and lrs[-1] == pytest.approx(2e-4, rel=1e-6)


def test_knots_crowd_toward_the_end() -> None:
    gaps = np.diff(FreeForm(SETTING, knots=10).pos)
    assert (np.diff(gaps) < 0).all()  # the decay happens late: finer knots there


def test_theta_of_recovers_a_schedule() -> None:
    form = FreeForm(SETTING, knots=16)
    wsd = Schedule.from_spec(SETTING.spec("wsd", decay_start=400, end=2e-5))
    back = form.lrs(form.theta_of(wsd))
    # a WSD start point is reproduced at the knots (up to the interpolation between knots)
    knots = form.pos.round().astype(int)
    np.testing.assert_allclose(back[knots], wsd.array()[knots], rtol=5e-3)


class Quadratic:
    """Loss = (end LR share - 0.3)^2: the best cosine ends at 0.3 x peak."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, schedule: Schedule, steps: npt.ArrayLike) -> npt.NDArray[np.float64]:
        self.calls += 1
        end = schedule.to_spec()["end"] / SETTING.peak
        return np.array([1.0 + (end - 0.3) ** 2])


def test_cosine_search_finds_end_and_memoises() -> None:
    law = Quadratic()
    f = Objective(law, SETTING)
    loss, best = search_cosine(f)
    assert best.to_spec()["end"] == pytest.approx(0.3 * 2e-3, rel=1e-2)  # the known optimum
    assert loss == pytest.approx(1.0, abs=1e-6)
    calls = law.calls
    f(best)
    assert law.calls == calls  # a spec already evaluated is not evaluated again


def test_non_finite_predictions_lose() -> None:
    class Broken:
        def predict(self, schedule: Schedule, steps: npt.ArrayLike) -> npt.NDArray[np.float64]:
            return np.array([np.nan])

    f = Objective(Broken(), SETTING)
    assert f(Schedule.from_spec(SETTING.spec("cosine"))) == float("inf")


def test_describe() -> None:
    rec = Schedule.from_array(np.linspace(1.0, 0.0, 101))
    d = describe(rec)
    assert d["kind"] == "recorded" and d["steps"] == 101 and d["lr_at"][50] == 0.5
    assert describe(Schedule.from_spec(SETTING.spec("cosine")))["kind"] == "cosine"
