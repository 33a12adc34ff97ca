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
