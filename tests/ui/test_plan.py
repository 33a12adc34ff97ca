"""The dashboard reads each run's recorded plan: the planned end comes from it (or a steps-like
config key), never from the latest logged ``lr``, and a run without one says why on the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import runcast
from runcast.integrations._plan import PLAN_KEY, plan_entry
from runcast.ui import DashboardData


def _log(run: Any, upto: int, lr: Any = None) -> None:
    for s in range(0, upto + 1, 2):
        row = {"loss": 1.5 + 2.0 / np.sqrt(1.0 + s / 10.0)}
        if lr is not None:
            row["lr"] = float(lr[s])
        run.log(row, step=s)
    run.flush()


def test_a_logged_lr_is_not_the_planned_end(db_path: Path) -> None:
    # the HF run: lr logged up to step 60 of max_steps=300, and the dashboard answered "Nothing
    # to forecast: the run is at step 60 and its planned end is step 60"
    lr = np.linspace(1e-3, 0.0, 301)
    run = runcast.init(name="hf", db=str(db_path), config={"max_steps": 300})
    _log(run, 60, lr)
    api = DashboardData(db_path)
    try:
        fc = api.forecast(run.id, "loss")
        assert "note" not in fc, fc.get("note")
        assert fc["final"]["step"] == 299 and fc["cutoff_step"] == 60
    finally:
        api.close()
        run.finish()


def test_the_recorded_plan_gives_schedule_and_end(db_path: Path) -> None:
    lrs = np.r_[np.linspace(0, 1e-3, 31), 1e-3 * np.cos(np.linspace(0, np.pi / 2, 270)) + 1e-6]
    run = runcast.init(name="planned", db=str(db_path), config={PLAN_KEY: plan_entry(lrs, "t")})
    _log(run, 60, lrs)
    api = DashboardData(db_path)
    try:
        fc = api.forecast(run.id, "loss")
        assert fc["final"]["step"] == 300  # total 301: steps 0..300, the Trainer's numbering
        # a per-step loss with the plan's cosine: auto's choice there is a law over the schedule
        assert fc["method"] in ("law", "law+pfn")
        # the run list shows the forecast once the worker has made it
        row = next(r for r in api.runs(wait=True)["runs"] if r["id"] == run.id)
        assert row["forecast"]["step"] == 300
    finally:
        api.close()
        run.finish()


def test_a_run_with_no_plan_says_why_in_the_run_list(db_path: Path) -> None:
    run = runcast.init(name="bare", db=str(db_path))
    _log(run, 40)
    api = DashboardData(db_path)
    try:
        row = next(r for r in api.runs(wait=True)["runs"] if r["id"] == run.id)
        assert row["forecast"] is None and "planned length is unknown" in row["forecast_note"]
    finally:
        api.close()
        run.finish()
