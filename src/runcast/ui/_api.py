"""The dashboard's JSON: runs with their forecast final value, new points since a step, bands.

Reads go through one shared store whose connection is serialised by the store's own lock; each
read is one short query, so the writers (the training processes) are never held up: in WAL mode
a reader does not block a writer, and a short read transaction lets checkpoints proceed.

Forecasts are cached per (run, metric, last step seen), so polling every second costs one small
query per run, and a forecast is only recomputed when the run has moved on by about 1% of its
planned length (or finished). The run list never waits for a forecast: it shows the last one
made and asks a background worker for a fresh one, so a store with many runs opens at once.

Example:
    >>> import os, tempfile, runcast
    >>> db = os.path.join(tempfile.mkdtemp(), "d.db")
    >>> with runcast.init(project="p", name="a", db=db) as run:
    ...     run.log({"loss": 2.0}, step=0)
    ...     run.log({"loss": 1.5}, step=1)
    >>> api = DashboardData(db)
    >>> api.curve(run.id, "loss", since_step=0)["step"]
    [1]
    >>> api.close()
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from runcast.errors import MetricNotFoundError, RuncastError, RunNotFoundError, StoreError

if TYPE_CHECKING:
    from runcast.schedules import Schedule

_CACHE_MAX = 256


def _num(x: float | None) -> float | None:
    """A JSON-safe float (NaN and inf become None)."""
    return None if x is None or not math.isfinite(x) else float(x)


def _exists(db: Path | str) -> bool:
    """Whether the store can be opened: a file that exists, or a server's URL."""
    return isinstance(db, str) or db.exists()


def _nums(a: Any) -> list[float | None]:
    arr = np.asarray(a, dtype=np.float64)
    return [None if not math.isfinite(v) else v for v in arr.tolist()]


class DashboardData:
    """What the dashboard's endpoints return, read from the store at ``db``.

    Args:
        db: the store file. The dashboard never creates one: until a training process does,
            it shows no runs.
        key: the default metric (``"loss"``).
        cutoff: for a finished run, the fraction of it the shown forecast starts from.
    """

    def __init__(self, db: str | Path, key: str = "loss", cutoff: float = 0.2) -> None:
        import runcast
        from runcast.store import is_url

        # a postgresql:// URL stays text (Path would fold its //); it has no file to wait for
        self.db: Path | str = db if is_url(db) else Path(db)
        self.key = key
        self.cutoff = cutoff
        self._opened: Any = None
        self._open_lock = threading.Lock()
        # a store file that does not exist yet (the dashboard opened before training) is
        # waited for: the dashboard shows no runs until a training process creates it
        if _exists(self.db):
            self._opened = runcast.open_store(self.db, create=False)
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[int, str, dict[str, Any]]] = {}
        # one worker: forecasts for the run list are made one at a time, off the request path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runcast-forecast")
        self._pending: set[tuple[str, str]] = set()
        # the run list's view of each forecast: (last step, status) it was made at, and its
        # final value or note. A run whose points and status did not change costs nothing
        self._listed: dict[tuple[str, str], tuple[int, str, dict[str, Any]]] = {}

    def close(self) -> None:
        """Stop the forecast worker and close the store."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._opened is not None:
            self._opened.close()

    def _open(self) -> Any:
        """The store, opened once it exists (None until a training process creates it)."""
        import runcast

        if self._opened is None:
            with self._open_lock:
                if self._opened is None and _exists(self.db):
                    try:
                        self._opened = runcast.open_store(self.db, create=False)
                    except StoreError:
                        return None  # created this very moment: its tables are on their way
        return self._opened

    @property
    def _store(self) -> Any:
        store = self._open()
        if store is None:
            raise RunNotFoundError(f"There are no runs yet: {self.db} has not been created.")
        return store

    def _refresh(self, run_id: str, key: str, last: int, status: str) -> None:
        try:
            self._list_forecast(run_id, key, last, status)
        except RuncastError:
            pass  # e.g. the run was deleted meanwhile; the list shows no forecast
        finally:
            with self._lock:
                self._pending.discard((run_id, key))

    def _list_forecast(self, run_id: str, key: str, last: int, status: str) -> dict[str, Any]:
        """The forecast, as the run list keeps it (made at ``last``, ``status``)."""
        payload = self.forecast(run_id, key)
        with self._lock:
            self._listed[(run_id, key)] = (last, status, payload)
        return payload

    def _cached_forecast(
        self, run_id: str, key: str, last: int, status: str
    ) -> dict[str, Any] | None:
        """The last forecast made (possibly stale), and a fresh one queued only when the run
        got new points or a new status since; never waits."""
        with self._lock:
            hit = self._listed.get((run_id, key))
            fresh = hit is not None and hit[0] == last and hit[1] == status
            if not fresh and (run_id, key) not in self._pending:
                self._pending.add((run_id, key))
                self._pool.submit(self._refresh, run_id, key, last, status)
        return None if hit is None else hit[2]

    # -- endpoints ----------------------------------------------------------------------------
    def runs(
        self,
        wait: bool = False,
        project: str | None = None,
        status: str | None = None,
        name: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> dict[str, Any]:
        """A page of the runs, newest first, each with its last value and forecast final value.

        Without ``wait`` a run's forecast is the last one made (None until the background
        worker has made one; remade only once the run has new points or a new status); with
        ``wait`` every forecast is brought up to date first. ``project``, ``status`` and
        ``name`` (text the name contains) filter; ``limit`` and ``offset`` page, and ``total``
        says how many runs match. A poll reads the page in one query, whatever the store's
        size, and forecasts only the runs that changed.
        """
        if self._open() is None:
            note = f"No runs yet: waiting for training to create {self.db}."
            return {"runs": [], "key": self.key, "note": note, "total": 0}
        page = self._store.runs_page(project, status, name, limit, offset)
        out = []
        for info in page.runs:
            summ = page.summaries[info.id]
            key = self.key if self.key in summ else (sorted(summ)[0] if summ else None)
            row: dict[str, Any] = {
                "id": info.id,
                "name": info.name,
                "project": info.project,
                "status": info.status,
                "last_step": info.last_step,
                "n_points": info.n_points,
                "keys": sorted(summ),
                "key": key,
                "value": _num(summ[key].last_value) if key else None,
                "forecast": None,
            }
            if key is not None:
                last = summ[key].last_step
                fc = (
                    self._list_forecast(info.id, key, last, info.status)
                    if wait
                    else self._cached_forecast(info.id, key, last, info.status)
                )
                if fc is not None and "final" in fc:
                    # the step the forecast was made from: a finished run's is a fifth of the
                    # way in (``cutoff``), so its forecast can be held against what it reached
                    row["forecast"] = {**fc["final"], "made_at": fc["cutoff_step"]}
                    # a finished run's value reached (its trend at the last step), the number
                    # the report and the demo give; "value" is the last point, labelled so
                    row["reached"] = fc.get("actual_final")
                elif fc is not None:
                    row["forecast_note"] = fc.get("note")
            out.append(row)
        return {"runs": out, "key": self.key, "total": page.total, "offset": offset, "limit": limit}

    def curve(
        self,
        run_id: str,
        key: str,
        since_step: int | None = None,
        max_points: int | None = None,
    ) -> dict[str, Any]:
        """Points of ``key`` with step > ``since_step`` (all when None), and the run's status.

        ``max_points`` thins what is sent (min/max per bucket, spikes kept): the page's first
        load of a 100,000-step run asks for ~5000; later polls get only the new points.
        """
        from runcast.report._data import thin_indices

        info = self._store.run(run_id)
        c = self._store.curve(info.id, key, since_step=since_step)
        step, value = c.step, c.value
        if max_points is not None:
            idx = thin_indices(value, max(max_points, 2))
            step, value = step[idx], value[idx]
        return {
            "run": info.id,
            "key": key,
            "status": info.status,
            "step": step.tolist(),
            "value": _nums(value),
        }

    def batch(self, run_id: str) -> dict[str, Any]:
        """The run's batch size, noise scale and measured CBS intervals (report._batch)."""
        from runcast.report._batch import batch_data

        d = batch_data(self._store, run_id)
        if d is None:
            return {"run": run_id, "note": "no batch_size, noise_scale or cbs_lo/cbs_hi recorded"}
        return {"run": d.run_id, **d.to_dict()}

    def forecast(self, run_id: str, key: str) -> dict[str, Any]:
        """The forecast band of ``key`` (cached until the run moves on), or a note why none."""
        from runcast.report import forecast_band, planned_total, run_schedule
        from runcast.report._build import FORECAST_ERRORS

        info = self._store.run(run_id)
        summ = self._store.summary(info.id)
        if key not in summ:
            raise MetricNotFoundError(
                f"Run {info.id} has no metric {key!r}; it has: {', '.join(sorted(summ))}."
            )
        last = summ[key].last_step
        # a config the schedule or the planned length cannot be read from (an unknown schedule
        # kind, max_steps=inf) costs this run's forecast, with a note, not the reply: the run
        # list would otherwise show it as pending for ever
        lr = self._store.curve(info.id, "lr") if "lr" in summ else None
        plan_error: Exception | None = None
        schedule: Schedule | None = None
        total: int | None = None
        try:
            schedule = run_schedule(info.config or {}, lr)
            total = planned_total(info.config or {}, schedule)
        except FORECAST_ERRORS as err:
            plan_error = err
        # recompute when the run has moved on by ~1% of its length, or its status changed
        grain = max((total or last + 1) // 100, 1)
        with self._lock:
            hit = self._cache.get((info.id, key))
            if hit is not None and hit[1] == info.status and last - hit[0] < grain:
                return hit[2]
        try:
            if plan_error is not None:
                raise plan_error
            curve = self._store.curve(info.id, key)
            band = forecast_band(
                curve, schedule, total, finished=info.status != "running", cutoff=self.cutoff
            )
            payload: dict[str, Any] = {
                "run": info.id,
                "key": key,
                "cutoff_step": band.cutoff_step,
                "method": band.method,
                "step": band.step.tolist(),
                "median": _nums(band.median),
                "lo80": _nums(band.lo80),
                "hi80": _nums(band.hi80),
                "lo95": _nums(band.lo95),
                "hi95": _nums(band.hi95),
                "final": {
                    "step": band.final.step,
                    "median": _num(band.final.median),
                    "lo80": _num(band.final.lo80),
                    "hi80": _num(band.final.hi80),
                },
                "actual_final": _num(band.actual_final),
            }
        except FORECAST_ERRORS as err:
            why = str(err)
            if err is plan_error:
                why = (
                    f"its config gives no usable schedule or planned length ({err}); fix "
                    "config['schedule'] or the steps/max_steps value in the run's config"
                )
            payload = {"run": info.id, "key": key, "note": f"No forecast: {why}"}
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.pop(next(iter(self._cache)))
            self._cache[(info.id, key)] = (last, info.status, payload)
        return payload
