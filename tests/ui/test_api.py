"""The dashboard's JSON, read from a real store while a run is still being written."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from runcast.errors import MetricNotFoundError, RunNotFoundError, StoreError
from runcast.ui import DashboardData


def test_runs_lists_status_value_and_forecast(live: Any) -> None:
    api = DashboardData(live.db)
    try:
        rows = {r["name"]: r for r in api.runs(wait=True)["runs"]}
    finally:
        api.close()
    assert set(rows) == {"done", "live"}
    done, run = rows["done"], rows["live"]
    assert done["status"] == "finished" and run["status"] == "running"
    assert run["last_step"] == 99 and run["keys"] == ["loss"] and run["key"] == "loss"
    # the last recorded value, and a forecast of the planned last step (total 300 -> 299)
    assert run["value"] == pytest.approx(1.5 + 2.0 / (1.0 + 9.9) ** 0.5, abs=0.011)
    fc = run["forecast"]
    assert fc["step"] == 299 and fc["lo80"] <= fc["median"] <= fc["hi80"]
    # still falling: the forecast end is below the current value
    assert fc["median"] < run["value"]
    assert done["forecast"]["step"] == 299
    # made from: the running run's latest step, the finished run's first fifth
    assert run["forecast"]["made_at"] == 99 and done["forecast"]["made_at"] == int(0.2 * 300)
    # a finished run's value reached is the one the report gives (its trend at the last
    # step); a running run has not reached anything yet
    from runcast import Curve
    from runcast.report import reached

    want = reached(Curve(np.arange(300), [loss_at(s, 1) for s in range(300)]))
    assert done["reached"] == pytest.approx(want) and run["reached"] is None


def test_run_list_never_waits_for_a_forecast(live: Any) -> None:
    api = DashboardData(live.db)
    try:
        first = {r["name"]: r["forecast"] for r in api.runs()["runs"]}
        # nothing made yet: the list answers at once, the worker makes them meanwhile
        assert first == {"done": None, "live": None}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            later = {r["name"]: r["forecast"] for r in api.runs()["runs"]}
            if all(later.values()):
                break
            time.sleep(0.1)
    finally:
        api.close()
    assert later["live"]["step"] == 299 and later["done"]["step"] == 299


def test_curve_returns_only_new_points(live: Any) -> None:
    api = DashboardData(live.db)
    try:
        first = api.curve(live.live_id, "loss")
        assert first["step"] == list(range(100)) and first["status"] == "running"
        live.log(5)
        new = api.curve(live.live_id, "loss", since_step=first["step"][-1])
    finally:
        api.close()
    # exactly the 5 points logged since, nothing twice
    assert new["step"] == [100, 101, 102, 103, 104]
    assert len(new["value"]) == 5


def test_forecast_is_cached_until_the_run_moves_on(live: Any) -> None:
    api = DashboardData(live.db)
    try:
        a = api.forecast(live.live_id, "loss")
        live.log(1)  # 1 step < 1% of 300: same forecast object, not recomputed
        b = api.forecast(live.live_id, "loss")
        live.log(5)  # 6 steps >= 3: recomputed from the new last step
        c = api.forecast(live.live_id, "loss")
    finally:
        api.close()
    assert a is b
    assert c is not a and c["cutoff_step"] == 105 and a["cutoff_step"] == 99
    assert c["step"][-1] == 299 and len(c["median"]) == len(c["lo95"]) == len(c["step"])


def loss_at(step: int, seed: int) -> float:
    """The ui conftest's synthetic loss (conftest modules cannot be imported)."""
    return float(1.5 + 2.0 / np.sqrt(1.0 + step / 10.0) + 0.01 * np.sin(step * 1.7 + seed))


def test_finished_run_is_forecast_from_its_first_fifth(live: Any) -> None:
    api = DashboardData(live.db, cutoff=0.2)
    try:
        fc = api.forecast(live.done_id, "loss")
    finally:
        api.close()
    assert fc["cutoff_step"] == int(0.2 * 300)
    # judged against the loss the run reached: its trend at the last step, as in the report
    from runcast import Curve
    from runcast.report import reached

    want = reached(Curve(np.arange(300), [loss_at(s, 1) for s in range(300)]))
    assert fc["actual_final"] == pytest.approx(want)


def test_run_without_planned_length_gets_a_note(db_path: Any) -> None:
    import runcast

    run = runcast.init(project="ui", name="open-ended", db=str(db_path))
    run.log({"loss": 2.0}, step=0)
    run.log({"loss": 1.0}, step=1)
    run.flush()
    api = DashboardData(db_path)
    try:
        row = api.runs(wait=True)["runs"][0]
    finally:
        api.close()
        run.finish()
    assert row["forecast"] is None and "planned length is unknown" in row["forecast_note"]


def test_errors(live: Any, tmp_path: Any) -> None:
    api = DashboardData(live.db)
    try:
        with pytest.raises(MetricNotFoundError, match="no metric 'acc'"):
            api.forecast(live.live_id, "acc")
        with pytest.raises(RunNotFoundError):
            api.curve("nope", "loss")
    finally:
        api.close()
    # the dashboard never creates a store where there is none: it waits for one, with no runs
    waiting = DashboardData(tmp_path / "missing.db")
    try:
        assert waiting.runs()["runs"] == [] and "waiting for training" in waiting.runs()["note"]
        with pytest.raises(RunNotFoundError, match="has not been created"):
            waiting.curve("nope", "loss")
    finally:
        waiting.close()
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "junk.db").write_text("not a database")
    with pytest.raises(StoreError):  # a file that is not a store is still an error
        DashboardData(tmp_path / "junk.db")


def test_polling_never_blocks_the_writer(live: Any) -> None:
    import threading

    api = DashboardData(live.db)
    stop = threading.Event()
    polls = 0

    def poll() -> None:
        nonlocal polls
        since = None
        while not stop.is_set():
            got = api.curve(live.live_id, "loss", since_step=since)
            since = got["step"][-1] if got["step"] else since
            api.runs()
            polls += 1

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        slowest = 0.0
        for _ in range(20):
            seen = polls
            t0 = time.perf_counter()
            live.log(25)  # 25 points, then a flush that must get through the polling
            slowest = max(slowest, time.perf_counter() - t0)
            # the reader gets a poll in before the next flush, so reads and writes interleave
            # however the threads are scheduled (on a loaded machine the writer could otherwise
            # finish all 20 flushes before the reader's first poll); a blocked reader stalls here
            deadline = time.monotonic() + 5.0
            while polls == seen and time.monotonic() < deadline:
                time.sleep(0.001)
    finally:
        stop.set()
        reader.join()
        api.close()
    # the reader polled between every two flushes, and every flush went through promptly
    # (WAL: a reader never holds the writer's lock; SQLite's busy wait would show as seconds)
    assert polls >= 20
    assert slowest < 5.0
    check = DashboardData(live.db)
    try:
        assert check.curve(live.live_id, "loss")["step"] == list(range(600))
    finally:
        check.close()


def test_first_load_of_a_long_run_is_thinned(db_path: Any) -> None:
    import runcast

    with runcast.init(project="ui", name="long", db=str(db_path)) as run:
        for s in range(20_000):
            run.log({"loss": 2.0 + (5.0 if s == 12_345 else 0.0)}, step=s)
    api = DashboardData(db_path)
    try:
        got = api.curve(run.id, "loss", max_points=500)
        everything = api.curve(run.id, "loss")
    finally:
        api.close()
    # ~500 points instead of 20,000, the spike at step 12,345 among them
    assert len(got["step"]) <= 500 and len(everything["step"]) == 20_000
    assert 12_345 in got["step"] and got["step"][-1] == 19_999


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"schedule": "nonsense"}, "Unknown schedule kind 'nonsense'"),
        ({"schedule": {"kind": "cosine", "peak": -1.0, "total": 50}}, "'peak' must be finite"),
    ],
)
def test_a_config_without_a_usable_plan_is_a_note_not_an_error(
    db_path: Any, config: dict[str, Any], why: str
) -> None:
    import runcast

    with runcast.init(project="p", name="odd", config=config, db=str(db_path)) as run:
        for s in range(30):
            run.log({"loss": 1.0 + 3.0 / (s + 1)}, step=s)
    api = DashboardData(db_path)
    try:
        fc = api.forecast(run.id, "loss")
        row = api.runs(wait=True)["runs"][0]
    finally:
        api.close()
    # the reason and the fix are in the note; before, forecast() raised and the run list
    # showed it as pending
    assert (
        fc["note"].startswith("No forecast: its config gives no usable schedule")
        and why in fc["note"]
    )
    assert "max_steps" in fc["note"]
    assert row["forecast"] is None and row["forecast_note"] == fc["note"]


def test_max_steps_inf_means_no_planned_length(db_path: Any) -> None:
    # "no limit" is no length: the run is forecast to its last step, as one without max_steps
    # (before, int(inf) raised OverflowError and the server dropped the connection)
    import runcast

    with runcast.init(
        project="p", name="odd", config={"max_steps": float("inf")}, db=db_path
    ) as run:
        for s in range(30):
            run.log({"loss": 1.0 + 3.0 / (s + 1)}, step=s)
    api = DashboardData(db_path)
    try:
        fc = api.forecast(run.id, "loss")
    finally:
        api.close()
    assert "note" not in fc and fc["final"]["step"] == 29
