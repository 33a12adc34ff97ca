"""The dashboard's run list at team scale: pages, filters, and forecasts remade only for runs
that changed (on SQLite and on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runcast.store import Series, open_store
from runcast.ui._api import DashboardData


def _fill(db: Path | str) -> dict[str, str]:
    ids = {}
    with open_store(db) as store:
        for i in range(12):
            project = "a" if i % 2 else "b"
            status = "finished" if i % 3 else "failed"
            info = store.create_run(project, f"lr-{i}", start_time=1e9 + i, status=status)
            with store.writer(info.id) as w:
                steps = np.arange(60)
                w.write({"loss": Series.of(steps, 3.0 * (steps + 1.0) ** -0.3)}, heartbeat=False)
            ids[info.name] = info.id
    return ids


def test_the_run_list_pages_and_filters(store_db: Path | str) -> None:
    ids = _fill(store_db)
    api = DashboardData(store_db)
    try:
        body = api.runs(limit=5, offset=2)
        assert body["total"] == 12
        assert [r["name"] for r in body["runs"]] == [f"lr-{i}" for i in (9, 8, 7, 6, 5)]
        assert body["runs"][0]["n_points"] == 60 and body["runs"][0]["id"] == ids["lr-9"]
        odd = api.runs(project="a", status="failed")
        assert [r["name"] for r in odd["runs"]] == ["lr-9", "lr-3"] and odd["total"] == 2
        named = api.runs(name="R-1")  # any case; lr-1, lr-10, lr-11
        assert sorted(r["name"] for r in named["runs"]) == ["lr-1", "lr-10", "lr-11"]
        assert api.runs(name="%")["total"] == 0  # text, not a pattern
    finally:
        api.close()


def test_a_forecast_is_remade_only_for_the_runs_that_got_new_points(
    store_db: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _fill(store_db)
    api = DashboardData(store_db)
    made: list[str] = []
    real = DashboardData.forecast

    def counted(self: DashboardData, run_id: str, key: str) -> dict[str, Any]:
        made.append(run_id)
        return real(self, run_id, key)

    monkeypatch.setattr(DashboardData, "forecast", counted)
    try:
        first = api.runs(wait=True)
        assert len(made) == 12 and all(r["forecast"] for r in first["runs"])
        made.clear()
        assert api.runs(wait=False)["runs"] == first["runs"]  # the cached forecasts, as made
        api._pool.submit(lambda: None).result()  # let the worker finish anything queued
        assert made == []  # nothing changed: nothing forecast again
        with open_store(store_db) as store, store.writer(ids["lr-4"]) as w:
            w.write({"loss": Series.of([60, 61], [1.0, 0.99])}, heartbeat=False)
        api.runs(wait=False)
        api._pool.submit(lambda: None).result()
        assert made == [ids["lr-4"]]  # one run moved on: one forecast
    finally:
        api.close()


def test_a_page_is_read_with_its_summaries_and_matches_the_run_by_run_reads(
    store_db: Path | str,
) -> None:
    ids = _fill(store_db)
    with open_store(store_db) as store:
        bare = store.create_run("a", "bare", start_time=2e9)  # the newest, without a point
        with store.writer(ids["lr-11"]) as w:
            w.write({"acc": Series.of([0, 35, 70], [0.1, float("nan"), 0.5])}, heartbeat=False)
        page = store.runs_page(limit=3)
        assert page.total == 13 and [r.name for r in page.runs] == ["bare", "lr-11", "lr-10"]
        for info in page.runs:  # one query gives what a run-by-run read gives
            assert info == store.run(info.id)
            assert page.summaries[info.id] == store.summary(info.id)
        assert page.summaries[bare.id] == {} and page.runs[0].last_step is None
        assert list(page.summaries[ids["lr-11"]]) == ["acc", "loss"]
        assert page.runs[1].last_step == 70 and page.runs[1].n_points == 63
        assert page.summaries[ids["lr-11"]]["acc"].n_missing == 1
        past = store.runs_page(project="a", limit=5, offset=50)
        assert past.runs == [] and past.total == 7


def test_an_older_store_gets_the_run_list_s_index_when_opened(store_db: Path | str) -> None:
    _fill(store_db)
    with open_store(store_db) as store:  # a store made before the index existed
        store._execute([("DROP INDEX runs_by_time", ())], "drop the index")
    listed = (
        "SELECT name FROM sqlite_master WHERE type = 'index'"
        if isinstance(store_db, Path)
        else "SELECT indexname FROM pg_catalog.pg_indexes WHERE schemaname = 'runcast'"
    )
    with open_store(store_db, create=False) as store:  # the dashboard's way of opening it
        assert "runs_by_time" in {r[0] for r in store._fetch(listed)}
        if isinstance(store_db, Path):  # newest first is a walk down it, not a sort
            plan = store._fetch(
                "EXPLAIN QUERY PLAN SELECT id FROM runs r ORDER BY r.start_time DESC, "
                "r.rowid DESC LIMIT 5"
            )
            assert any("runs_by_time" in str(row) for row in plan), plan
        assert [r.name for r in store.runs_page(limit=2).runs] == ["lr-11", "lr-10"]
