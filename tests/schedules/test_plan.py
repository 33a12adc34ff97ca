"""The planner: finds a known optimum on a synthetic law, reports gains with uncertainty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from runcast import Curve, Forecast, Schedule
from runcast.errors import FitError, InvalidInputError, ScheduleError
from runcast.schedules import plan_schedule

BUDGET, PEAK = 1000, 1.0


class AreaAndDrops:
    """A closed-form law with a known trade-off, standing in for a fitted law.

    loss = a / S1 + c * sum_t (lr_t - lr_{t+1})^2 + b * lr_final: a larger LR area S1 helps,
    abrupt drops hurt (so a cooldown wants length), and a high final LR hurts (so it wants to
    end low). ``forecast`` draws ``a`` per path from a fixed seed, like runcast's laws.
    """

    def __init__(self, a: float = 1000.0, c: float = 10.0, b: float = 10.0, sd: float = 0.0):
        self.a, self.c, self.b, self.sd = a, c, b, sd

    def _loss(self, lrs: npt.NDArray[np.float64], a: npt.NDArray[np.float64]) -> Any:
        return a / lrs.sum() + self.c * np.sum(np.diff(lrs) ** 2) + self.b * lrs[-1]

    def predict(self, schedule: Schedule, steps: npt.ArrayLike) -> npt.NDArray[np.float64]:
        lrs = schedule.array(int(np.max(steps)) + 1)
        return np.array([self._loss(lrs, np.array(self.a))])

    def forecast(
        self, schedule: Schedule, steps: npt.ArrayLike, *, n_paths: int = 256, seed: int = 0
    ) -> Forecast:
        a = self.a * (1 + self.sd * np.random.default_rng(seed).standard_normal(n_paths))
        lrs = schedule.array(int(np.max(steps)) + 1)
        return Forecast(np.atleast_1d(steps), self._loss(lrs, a)[:, None])


def brute_force_linear_wsd(law: AreaAndDrops, warmup: int) -> tuple[int, float]:
    """Every decay start of a linear cooldown to 0, evaluated: the known optimum."""
    best = (0, np.inf)
    for ds in range(warmup, BUDGET):
        spec = {
            "kind": "wsd",
            "peak": PEAK,
            "total": BUDGET,
            "warmup": warmup,
            "decay_start": ds,
            "end": 0.0,
        }
        val = float(law.predict(Schedule.from_spec(spec), [BUDGET - 1])[0])
        best = min(best, (ds, val), key=lambda p: p[1])
    return best


@pytest.mark.parametrize("warmup", [0, 50])
def test_finds_the_known_wsd_optimum(warmup: int) -> None:
    law = AreaAndDrops()
    ds, val = brute_force_linear_wsd(law, warmup)
    plan = plan_schedule(
        law,
        BUDGET,
        PEAK,
        warmup=warmup,
        decay_shapes=("linear",),
        families=("wsd",),
        free_form=False,
    )
    spec = plan.schedule.to_spec()
    # the grid + refine lands on the exhaustive search's answer (a decay of ~18% here)
    assert abs(spec["decay_start"] - ds) <= 3 and spec["end"] < 2e-3
    assert plan.loss <= val + 1e-4 * abs(val)
    assert 150 < BUDGET - ds < 220  # sanity of the synthetic law's closed-form optimum (~182)


def test_all_families_and_free_form_do_at_least_as_well() -> None:
    law = AreaAndDrops()
    _, val = brute_force_linear_wsd(law, 0)
    plan = plan_schedule(law, BUDGET, PEAK, max_evals=400)
    assert set(plan.candidates) == {"wsd", "cosine", "free"}
    assert plan.loss == min(v for _, v in plan.candidates.values())  # the best one is chosen
    assert plan.loss < val  # more freedom beats the best linear WSD
    # trading area against squared drops gives lr'' = const (a parabola) plus a final drop of
    # b / 2c: no family holds that shape, so the free form must beat the best family member
    wsd_loss = plan.candidates["wsd"][1]
    assert plan.family == "free" and plan.candidates["free"][1] < wsd_loss - 0.01
    assert plan.gain > 0 and plan.baseline.kind == "cosine"
    assert plan.baseline.to_spec()["end"] == pytest.approx(0.1 * PEAK)  # default baseline


def test_gain_uncertainty_from_paired_paths() -> None:
    plan = plan_schedule(AreaAndDrops(sd=0.05), BUDGET, PEAK, free_form=False)
    assert plan.final is not None and plan.gain_samples is not None
    lo, hi = plan.gain_interval(0.8) or (0.0, 0.0)
    # paired paths share `a`: the gain's spread comes only from a's effect on the two schedules
    assert lo < plan.gain < hi and hi - lo < 0.5 * plan.gain
    assert plan.prob_gain == 1.0
    lo_f, hi_f = plan.final.interval(0.8)
    assert lo_f < plan.loss < hi_f  # the point prediction sits inside its own band
    d = plan.to_dict()
    assert d["gain"] == plan.gain and d["prob_gain"] == 1.0 and d["family"] == "wsd"


def test_without_forecast_no_uncertainty() -> None:
    class PointOnly:
        def predict(self, schedule: Schedule, steps: npt.ArrayLike) -> npt.NDArray[np.float64]:
            return AreaAndDrops().predict(schedule, steps)

    plan = plan_schedule(PointOnly(), BUDGET, PEAK, free_form=False, families=("cosine",))
    assert plan.prob_gain is None and plan.gain_interval() is None and plan.final is None
    assert plan.family == "cosine" and plan.gain >= 0  # the baseline is one of its candidates


def test_floor_bounds_every_candidate() -> None:
    plan = plan_schedule(AreaAndDrops(), BUDGET, PEAK, floor=0.05, max_evals=200)
    for family, (sched, _) in plan.candidates.items():
        # no family may anneal below the floor (the law was not fitted down there)
        assert sched.array().min() >= 0.05 - 1e-12, family
    with pytest.raises(ScheduleError, match="floor"):
        plan_schedule(AreaAndDrops(), BUDGET, PEAK, floor=2.0)


def test_custom_baseline() -> None:
    base = {"kind": "cosine", "peak": PEAK, "total": BUDGET, "end": 0.0}
    plan = plan_schedule(AreaAndDrops(), BUDGET, PEAK, baseline=base, free_form=False)
    assert plan.baseline.to_spec()["end"] == 0.0
    with pytest.raises(ScheduleError, match="plans 500 steps but the budget"):
        plan_schedule(AreaAndDrops(), BUDGET, PEAK, baseline={**base, "total": 500})


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"budget": 1}, InvalidInputError, "budget must be"),
        ({"peak": -1.0}, ScheduleError, "peak must be a finite positive"),
        ({"peak": float("nan")}, ScheduleError, "peak must be"),
        ({"warmup": 1000}, ScheduleError, "leave room"),
        ({"families": ("linear",)}, InvalidInputError, "families must be drawn"),
        ({"decay_shapes": ("sqrt",)}, InvalidInputError, "decay_shapes must be drawn"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], exc: type[Exception], match: str) -> None:
    args: dict[str, Any] = {"budget": BUDGET, "peak": PEAK, **kwargs}
    with pytest.raises(exc, match=match):
        plan_schedule(AreaAndDrops(), args.pop("budget"), args.pop("peak"), **args)


def test_broken_law_is_an_error() -> None:
    class Nan:
        def predict(self, schedule: Schedule, steps: npt.ArrayLike) -> npt.NDArray[np.float64]:
            return np.array([np.nan])

    with pytest.raises(InvalidInputError, match="not finite"):
        plan_schedule(Nan(), BUDGET, PEAK)


def _mpl_curve(shared: Path, entry: dict[str, Any]) -> Curve:
    data = np.genfromtxt(shared / entry["file"], delimiter=",", names=True)
    total = entry["schedule"]["total"]
    keep = data["step"] < total
    return Curve(
        data["step"][keep].astype(int),
        data["loss"][keep],
        schedule=Schedule.from_spec(entry["schedule"]),
    )


@pytest.mark.slow
def test_plan_with_mpl_fitted_on_real_curves(shared_data: Path, catalog: dict[str, Any]) -> None:
    laws = pytest.importorskip("runcast.forecast.laws")
    fit = [
        e
        for e in catalog["curves"]
        if e["file"].startswith("curves/mpl/25M/") and e.get("role") == "fit"
    ]
    law = laws.fit_law([_mpl_curve(shared_data, e) for e in fit], "mpl")
    plan = plan_schedule(law, 24000, 3e-4, warmup=2160, free_form=False)
    # the MPL paper's optimised schedules beat cosine by ~0.01-0.05 in loss at this scale
    assert plan.family == "wsd" and 0.005 < plan.gain < 0.1
    assert plan.prob_gain is not None and plan.prob_gain > 0.8
    assert plan.schedule.to_spec()["decay_start"] > 12000  # a WSD that decays late, as found


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"knots": 0}, InvalidInputError, r"knots must be a whole number >= 2, but got 0"),
        ({"knots": 1}, InvalidInputError, r"knots must be a whole number >= 2, but got 1"),
        ({"max_evals": 0}, InvalidInputError, r"max_evals must be at least 1, but got 0"),
        ({"peak": "3e-4"}, ScheduleError, r"peak must be an LR \(a number\), but got '3e-4'"),
        ({"floor": None}, ScheduleError, r"floor must be an LR \(a number\), but got None"),
        ({"warmup": 2.5}, ScheduleError, r"warmup must be a whole number of steps, but got 2\.5"),
        ({"warmup": "10"}, ScheduleError, r"warmup must be a whole number of steps, but got '10'"),
    ],
)
def test_malformed_arguments_found_by_fuzzing(
    kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    # each crashed deep in numpy/scipy before: knots 0 "array of sample points is empty", a
    # string peak a TypeError from np.isfinite, a string warmup a TypeError from a comparison
    args: dict[str, Any] = {"budget": BUDGET, "peak": PEAK, **kwargs}
    with pytest.raises(exc, match=match):
        plan_schedule(AreaAndDrops(), args.pop("budget"), args.pop("peak"), **args)


@pytest.mark.parametrize("warmup", [BUDGET - 2, BUDGET - 15])
def test_a_warmup_filling_nearly_all_the_budget_still_plans(warmup: int) -> None:
    # found by fuzzing: with less than 5% (then 1%) of the budget after warmup, the WSD grid was
    # empty (IndexError) and the refine's bounds crossed (scipy's ValueError)
    plan = plan_schedule(AreaAndDrops(), BUDGET, PEAK, warmup=warmup, free_form=False)
    lrs = plan.schedule.array()
    # a real schedule: the budget's length, the warmup ramp intact, never above the peak
    assert lrs.size == BUDGET and float(lrs[warmup]) <= PEAK and float(lrs.max()) <= PEAK
    assert plan.loss == pytest.approx(float(AreaAndDrops().predict(plan.schedule, [BUDGET - 1])[0]))


class BelowZeroWhenDecayed:
    """A law that, like an over-fitted annealing term, takes the loss below 0 for a low final LR."""

    def predict(self, schedule: Schedule, steps: npt.ArrayLike) -> npt.NDArray[np.float64]:
        lrs = schedule.array(int(np.max(steps)) + 1)
        drop = 10.0 if lrs[-1] < 0.05 * PEAK else 0.0  # an "annealing gain" past all sense
        return np.array([0.1 + 1.0 / (1.0 + lrs.sum() / 100.0) - drop])


def test_a_schedule_the_law_takes_below_zero_is_never_the_plan() -> None:
    # found by fuzzing with a multi-power law of B = 1e5: the planner picked the schedule whose
    # loss was predicted at -5e5 as the "best", then its forecast failed
    plan = plan_schedule(BelowZeroWhenDecayed(), BUDGET, PEAK, free_form=False)
    assert plan.loss > 0 and plan.baseline_loss > 0
    # the plan ends where the law still predicts a loss, not at the LR it takes to -9.9
    assert float(plan.schedule.array()[-1]) >= 0.05 * PEAK


class OnlyCosineIsALoss:
    """A law that makes sense only for cosine schedules; every other one it takes below 0."""

    def predict(self, schedule: Schedule, steps: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.array([1.0 if schedule.kind == "cosine" else -1.0])


def test_no_schedule_with_a_positive_loss_is_a_fit_error() -> None:
    with pytest.raises(FitError, match=r"no finite positive loss for any schedule searched"):
        plan_schedule(OnlyCosineIsALoss(), BUDGET, PEAK, families=("wsd",), free_form=False)
