"""The planned schedule a run records (config["runcast_plan"]) and how it is read back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from runcast import Curve, Schedule
from runcast.errors import InvalidInputError, ScheduleError
from runcast.integrations._plan import (
    PLAN_KEY,
    as_of,
    check_units,
    decode_plan,
    knots,
    plan_entry,
    planned_schedule,
)
from runcast.schedules._torch import planned_lrs

SPECS = [
    {"kind": "cosine", "peak": 3e-4, "end": 3e-6, "warmup": 2000, "total": 100_000},
    {
        "kind": "wsd",
        "peak": 1e-3,
        "end": 1e-5,
        "warmup": 100,
        "total": 50_000,
        "decay_start": 40_000,
    },
    {"kind": "multistep", "peak": 0.1, "milestones": [3000, 6000], "gamma": 0.1, "total": 9000},
    {"kind": "constant", "peak": 1e-3, "total": 300},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["kind"])
def test_a_plan_is_small_and_within_its_tolerance(spec: dict[str, object]) -> None:
    lrs = Schedule.from_spec(spec).array()
    entry = plan_entry(lrs, "test")
    back = decode_plan(entry).array()
    # every step within 1e-4 of the peak, in a few hundred knots at most (100,000 steps of cosine)
    assert np.max(np.abs(back - lrs)) <= 1e-4 * lrs.max() + 1e-18
    assert len(entry["step"]) < 400 and entry["total"] == lrs.size


def test_knots_match_a_plain_scan() -> None:
    # the kept knots leave every point within tol of the line between its neighbours
    y = np.r_[np.linspace(0, 1, 7), np.ones(5), np.linspace(1, 0.2, 9)]
    idx = knots(y, 1e-9)
    assert idx.tolist() == [0, 6, 12, 20]  # the flat part runs from step 6 to step 12
    np.testing.assert_allclose(np.interp(np.arange(y.size), idx, y[idx]), y, atol=1e-9)


def test_the_order_plan_then_spec_then_length_then_lr() -> None:
    lr = Curve([0, 10, 20], [1e-3, 9e-4, 8e-4], name="lr")
    spec = {"kind": "constant", "peak": 1.0, "total": 50}
    recorded = plan_entry(np.linspace(1.0, 0.0, 100), "hf")
    plan = planned_schedule({PLAN_KEY: recorded, "schedule": spec, "max_steps": 7}, lr)
    assert plan.total == 100 and plan.source == "the recorded plan (hf)"
    assert planned_schedule({"schedule": spec, "max_steps": 7}, lr).total == 50
    assert planned_schedule({"max_steps": 300}, lr) == (None, 300, "a steps-like config key")
    # a logged lr that covers the planned length (a finished run) is its whole schedule
    done = Curve([0, 150, 299], [1e-3, 5e-4, 0.0], name="lr")
    assert planned_schedule({"max_steps": 300}, done).schedule is not None
    assert planned_schedule({}, None) == (None, None, "")


@pytest.mark.parametrize(
    "entry", [{"total": 5}, {"total": 5, "step": [0, 0], "lr": [1, 1]}, {"total": "x"}]
)
def test_a_damaged_plan_is_a_schedule_error(entry: dict[str, object]) -> None:
    with pytest.raises(ScheduleError, match="runcast_plan"):
        planned_schedule({PLAN_KEY: entry})


def test_as_of_cuts_the_curve_and_defaults_to_the_planned_end() -> None:
    c = Curve(np.arange(0, 301, 10), np.linspace(3, 1, 31), name="loss")
    sched = Schedule.from_array(np.full(301, 1e-3))
    cut, until = as_of(c, planned_schedule({PLAN_KEY: plan_entry(sched.array(), "t")}), None, 100)
    assert (cut.last_step, until, cut.schedule.total) == (100, 300, 301)
    with pytest.raises(InvalidInputError, match="must be after the last observed step 300"):
        as_of(c, None, 300, None)
    with pytest.raises(InvalidInputError, match="planned end is unknown"):
        as_of(c, None, None, None)
    # a finished run, its planned end defaulted: said as such, with a --from that works
    ended = planned_schedule({PLAN_KEY: plan_entry(sched.array(), "t")})
    with pytest.raises(InvalidInputError, match=r"reached its planned end \(step 300\).*--from 60"):
        as_of(c, ended, None, None)
    cut, until = as_of(c, ended, None, 60)
    assert (cut.last_step, until) == (60, 300)
    longer = Curve(np.arange(0, 401, 10), np.linspace(3, 1, 41), name="loss")
    with pytest.raises(InvalidInputError, match=r"step 300, and is logged to step 400"):
        as_of(longer, ended, None, None)
    with pytest.raises(InvalidInputError, match="no points up to step 5"):
        as_of(Curve([10, 20], [1.0, 0.5]), None, 30, 5)


def test_units_of_a_sweep_schedule_must_match_the_budget() -> None:
    s = Schedule.from_spec({"kind": "cosine", "peak": 0.1, "total": 100})
    check_units(s, 100, "total_steps")
    check_units(s, 99, "total_steps")  # a budget counted from 1: the same plan
    with pytest.raises(InvalidInputError, match="plans 100 steps, but total_steps is 10"):
        check_units(s, 10, "total_steps")


def test_planned_lrs_replays_a_stepped_lambda_scheduler_from_its_start() -> None:
    # a Trainer resumed from a checkpoint loads its scheduler's state before training starts
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / 10))
    fresh = planned_lrs(sched, 30)
    for _ in range(7):
        opt.step()
        sched.step()
    np.testing.assert_allclose(planned_lrs(sched, 30), fresh)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.08)  # the user's scheduler untouched
    step = torch.optim.lr_scheduler.StepLR(opt, step_size=5)
    opt.step()
    step.step()
    with pytest.raises(ScheduleError, match="cannot be replayed"):
        planned_lrs(step, 30)
