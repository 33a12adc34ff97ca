"""Report data from a real store: schedules from config or an lr metric, bands, panels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runcast
from runcast import Curve, Schedule
from runcast.errors import InvalidInputError, MetricNotFoundError, RunNotFoundError
from runcast.report import build_report, forecast_band, planned_total, reached, run_schedule

SPEC = {"kind": "wsd", "peak": 1e-3, "end": 1e-5, "warmup": 20, "total": 400, "decay_start": 320}


@pytest.mark.parametrize(
    "config",
    [
        {"schedule": SPEC},
        {"schedule": "wsd:peak=1e-3,end=1e-5,warmup=20,total=400,decay_start=320"},
        {
            "schedule": '{"kind": "wsd", "peak": 1e-3, "end": 1e-5, "warmup": 20, "total": 400, '
            '"decay_start": 320}'
        },
    ],
    ids=["dict", "kind-string", "json"],
)
def test_run_schedule_from_config(config: dict[str, Any]) -> None:
    s = run_schedule(config)
    assert s is not None
    # every way of writing the spec gives the same per-step LRs
    np.testing.assert_array_equal(s.array(), Schedule.from_spec(SPEC).array())


def test_run_schedule_from_a_logged_lr_interpolates_every_step() -> None:
    s = run_schedule({}, Curve([0, 10, 20], [0.0, 1.0, np.nan], name="lr"))
    assert s is not None and s.kind == "recorded"
    # NaN dropped; steps 0..10 filled linearly
    assert s.array().tolist() == pytest.approx([i / 10 for i in range(11)])
    assert run_schedule({}) is None
    assert run_schedule({}, Curve([3], [1.0])) is None  # one point: no schedule


@pytest.mark.parametrize(
    ("config", "schedule", "want"),
    [
        ({}, Schedule.from_spec(SPEC), 400),
        ({"max_steps": 1000}, None, 1000),
        ({"steps": 77.0}, None, 77),
        ({"steps": True}, None, None),
        ({"total_steps": "lots"}, None, None),
        ({"max_steps": float("inf")}, None, None),  # "no limit": was int(inf), an OverflowError
        ({"max_steps": float("nan")}, None, None),
        ({}, None, None),
    ],
)
def test_planned_total(config: dict[str, Any], schedule: Schedule | None, want: int | None) -> None:
    assert planned_total(config, schedule) == want


def _curve(n: int) -> Curve:
    t = np.arange(n)
    return Curve(t, 2.0 + 3.0 / np.sqrt(t + 1.0), name="loss")


def test_forecast_band_of_a_running_run_starts_at_its_last_step() -> None:
    b = forecast_band(_curve(100), None, total=400, finished=False)
    # from the last observed step to the planned last step, nothing to judge it against yet
    assert b.cutoff_step == 99 and b.final.step == 399 and b.actual_final is None
    # the curve still falls, so its end is forecast below where it is now
    assert b.final.median < 2.0 + 3.0 / np.sqrt(100.0)
    assert b.final.lo80 <= b.final.median <= b.final.hi80


def test_forecast_band_of_a_finished_run_starts_at_the_cutoff() -> None:
    c = _curve(400)
    b = forecast_band(c, None, total=400, finished=True, cutoff=0.25)
    assert b.cutoff_step == int(0.25 * 400) and b.final.step == 399
    # judged against the value the run reached: its trend at the last step (this smooth curve's
    # own last value, where the mean of its last points lagged 0.002 above)
    assert b.actual_final == pytest.approx(reached(c))
    assert b.actual_final == pytest.approx(float(c.value[-1]), abs=1e-4)


def test_the_band_is_of_the_trend_with_smooth_edges() -> None:
    # a demo-like run: a per-step training loss with noise 0.06 under a WSD schedule, forecast
    # from 20%. With the observed values' noise in it, the 95% band's upper edge went up and
    # down (its total variation 12.7x its range); the trend's band moves one way
    from runcast import Schedule

    s = Schedule.from_spec({"kind": "wsd", "peak": 3e-3, "end": 3e-5, "warmup": 50,
                            "total": 1500, "decay_fraction": 0.2})  # fmt: skip
    lr = s.array()
    area = np.cumsum(lr) / 3e-3
    rng = np.random.default_rng(0)
    v = 1.0 + 3 * (area / 50 + 1) ** -0.5 - 0.3 * (3e-3 - lr) / 3e-3 + rng.normal(0, 0.06, 1500)
    b = forecast_band(Curve(np.arange(1500), v, name="loss"), s, 1500, finished=True)
    for edge in (b.hi95, b.lo95, b.hi80, b.lo80):
        variation = float(np.abs(np.diff(edge)).sum()) / float(np.ptp(edge))
        assert variation < 1.5
    # the same seeded call as the demo's and the dashboard's: the same numbers every time
    again = forecast_band(Curve(np.arange(1500), v, name="loss"), s, 1500, finished=True)
    assert again.final == b.final


def test_forecast_band_needs_an_end() -> None:
    with pytest.raises(InvalidInputError, match="planned length is unknown"):
        forecast_band(_curve(50), None, total=None, finished=False)
    with pytest.raises(InvalidInputError, match="Nothing to forecast"):
        forecast_band(_curve(50), None, total=50, finished=False)


@pytest.mark.slow
def test_build_report_over_two_runs(store_two: tuple[Path, list[str]]) -> None:
    db, ids = store_two
    with runcast.open_store(db) as store:
        rep = build_report(store, ids)
    assert [p.name for p in rep.runs] == ["with-spec", "lr-only"]
    spec, lr_only = rep.runs
    # both runs know their schedule (config spec, or the logged lr) and get every part
    for p in rep.runs:
        assert p.status == "finished" and p.key == "loss" and p.notes == ()
        assert p.lr is not None and p.band is not None and p.whatif is not None
        assert p.band.cutoff_step == int(0.2 * 400)
        # the band forecasts this run's loss (from 20%, so loosely: within 15% of its end)
        assert p.band.final.median == pytest.approx(p.band.actual_final, rel=0.15)
        assert p.final_value == pytest.approx(p.band.actual_final)
    assert spec.lr.kind == "wsd" and lr_only.lr.kind == "recorded"
    # the lr metric is the schedule, not a curve to show beside the loss
    assert spec.others == ()


def test_panel_of_a_cut_short_run_uses_its_logged_lr(db_path: Path, recorder: Any) -> None:
    # 60 of 400 steps logged, no schedule in config: the lr metric covers only those 60 steps
    rid = recorder(db_path, "short", 60, {})
    with runcast.open_store(db_path) as store:
        rep = build_report(store, [rid], whatif=True)
    p = rep.runs[0]
    assert p.lr is not None and p.lr.kind == "recorded" and p.lr.step[-1] == 59
    # finished at 60 steps: the band forecasts steps 13..59 and is judged at step 59
    assert p.band is not None and p.band.cutoff_step == 12 and p.band.final.step == 59
    assert p.whatif is not None and p.whatif.total == 60


def test_panel_without_schedule_says_why_no_whatif(db_path: Path) -> None:
    with runcast.init(project="t", name="plain", db=str(db_path)) as run:
        for s in range(30):
            run.log({"acc": 0.5 + 0.01 * s}, step=s)
    with runcast.open_store(db_path) as store:
        rep = build_report(store, [run.id], key="acc")
    p = rep.runs[0]
    assert p.lr is None and p.whatif is None
    assert any("no schedule" in n for n in p.notes)


@pytest.mark.parametrize(
    "schedule", [{"kind": "bogus", "peak": 1e-3, "total": 30}, "cosine:peak=-1,total=30"]
)
def test_a_bad_schedule_in_one_runs_config_is_a_note_on_its_panel(
    db_path: Path, schedule: object
) -> None:
    # a ScheduleError from one run's config failed the whole report
    with runcast.init(project="t", name="odd", config={"schedule": schedule}, db=db_path) as run:
        for s in range(30):
            run.log({"loss": 3.0 - 0.02 * s}, step=s)
    with runcast.open_store(db_path) as store:
        rep = build_report(store, [run.id], whatif=True)
    p = rep.runs[0]
    assert p.lr is None and p.whatif is None
    assert any("config['schedule'] is not usable" in n for n in p.notes)


def test_build_report_errors_name_the_fix(store_two: tuple[Path, list[str]]) -> None:
    db, ids = store_two
    with runcast.open_store(db) as store:
        with pytest.raises(MetricNotFoundError, match=r"has: loss, lr\. Pick one with --key"):
            build_report(store, ids[:1], key="accuracy")
        with pytest.raises(RunNotFoundError):
            build_report(store, ["no-such-run"])
        with pytest.raises(InvalidInputError, match="at least one run"):
            build_report(store, [])
        with pytest.raises(InvalidInputError, match="cutoff"):
            build_report(store, ids, cutoff=1.0)
