"""What the SQLite and PostgreSQL stores share: one schema, one set of queries, two drivers.

Both keep runs, metrics and packed chunks of points in the same three tables (see
``_schema.py``), so every query here is written once, with ``?`` placeholders; a store supplies
the driver calls (:meth:`SQLStore._fetch`, :meth:`SQLStore._execute`) and its point writer.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from runcast.errors import InvalidInputError, MetricNotFoundError, RunNotFoundError, StoreError
from runcast.store._base import Points, PointSink, Store
from runcast.store._config import config_json
from runcast.store._types import STATUSES, MetricSummary, RunInfo, RunsPage, Status
from runcast.store._writer import STEP_DTYPE, VALUE_DTYPE, Series

#: A run whose heartbeat is older than this (seconds) is taken as dead, whatever its pid says
#: (pids get reused; a run on another host has no pid we can check). Writers beat every 10 s.
STALE_AFTER_S = 600.0

HOST = socket.gethostname()

# each run's totals through the metrics(run_id, key) index, one run at a time: looking up one
# run costs one index probe, where a join with an aggregate over every metric cost a scan of
# the whole table per lookup (4 s for the dashboard's list at 1,000 runs)
_RUN_COLUMNS = (
    "r.id, r.name, r.project, r.status, r.config, r.start_time, r.end_time, r.parent_id, "
    "r.fork_step, r.host, r.pid, r.heartbeat, "
    "(SELECT max(m.last_step) FROM metrics m WHERE m.run_id = r.id), "
    "(SELECT coalesce(sum(m.n_points), 0) FROM metrics m WHERE m.run_id = r.id)"
)
RUN_QUERY = f"SELECT {_RUN_COLUMNS} FROM runs r"
# the same first 12 columns (what _info reads), of a page's subquery p
_PAGE_COLUMNS = _RUN_COLUMNS.split(", (SELECT")[0].replace("r.", "p.")
_RUN_FIELDS = (
    "id, project, name, status, config, start_time, end_time, parent_id, fork_step, host, pid, "
    "heartbeat"
)
Statement = tuple[str, tuple[Any, ...]]


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with id ``pid`` exists."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def is_dead(host: str | None, pid: int | None, heartbeat: float | None, now: float) -> bool:
    """Whether a "running" run's process is gone: its heartbeat is stale, or it ran on this
    host and its pid no longer exists."""
    if heartbeat is not None and now - heartbeat > STALE_AFTER_S:
        return True
    return host == HOST and pid is not None and pid != os.getpid() and not pid_alive(pid)


def _unpack(blobs: list[bytes], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    return np.frombuffer(b"".join(blobs), dtype=dtype)


def check_status(status: object) -> None:
    """Refuse a status that is not one of :data:`STATUSES`."""
    if status not in STATUSES:
        raise InvalidInputError(f"status must be one of {STATUSES}, but got {status!r}.")


class SQLStore(Store):
    """A store over the shared SQL schema; subclasses bring the driver."""

    #: the column that orders runs written in the same instant (insertion order)
    _SEQ = "r.rowid"

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """The store as messages name it (a path, or a URL without its password)."""

    @property
    @abc.abstractmethod
    def location(self) -> Path | str:
        """What :func:`runcast.open_store` takes to open this store again."""

    @abc.abstractmethod
    def _fetch(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of one query (``?`` placeholders)."""

    @abc.abstractmethod
    def _execute(self, statements: Sequence[Statement], what: str) -> list[int]:
        """Run ``statements`` in one transaction (all or none); their row counts."""

    @abc.abstractmethod
    def writer(self, run: str) -> PointSink:
        """A sink that appends points to ``run`` over its own connection."""

    # -- runs ---------------------------------------------------------------------------------
    def _info(self, row: tuple[Any, ...], now: float) -> RunInfo:
        (rid, name, project, status, config, start, end, parent, fork, host, pid, beat) = row[:12]
        if status == "running" and is_dead(host, pid, beat, now):
            status, end = "killed", beat if beat is not None else start
            self._mark_killed(rid, end)
        return RunInfo(
            id=rid,
            name=name,
            project=project,
            status=status,
            config=json.loads(config),
            start_time=start,
            end_time=end,
            parent_id=parent,
            fork_step=None if fork is None else int(fork),
            last_step=None if row[12] is None else int(row[12]),
            n_points=int(row[13]),
            host=host,
            pid=None if pid is None else int(pid),
            heartbeat=beat,
        )

    def _mark_killed(self, run_id: str, end: float) -> None:
        # best effort: a reader without write access still reports "killed"
        with contextlib.suppress(StoreError):
            self._execute(
                [
                    (
                        "UPDATE runs SET status = 'killed', end_time = ? "
                        "WHERE id = ? AND status = 'running'",
                        (end, run_id),
                    )
                ],
                f"mark run {run_id} killed",
            )

    def runs(self, project: str | None = None) -> list[RunInfo]:
        """All runs (of ``project``, if given), newest first; dead "running" runs show "killed".

        Example:
            >>> import tempfile, pathlib
            >>> from runcast.store import SQLiteStore
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "r.db")
            >>> _ = store.create_run("a", "old", start_time=1.0), store.create_run("a", "new")
            >>> [r.name for r in store.runs("a")]
            ['new', 'old']
        """
        sql = RUN_QUERY + (" WHERE r.project = ?" if project is not None else "")
        sql += f" ORDER BY r.start_time DESC, {self._SEQ} DESC"
        rows = self._fetch(sql, () if project is None else (project,))
        now = time.time()
        return [self._info(r, now) for r in rows]

    def runs_page(
        self,
        project: str | None = None,
        status: str | None = None,
        name: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> RunsPage:
        """One page of the runs, newest first, with their metric summaries and how many match
        in all: what a dashboard shows of a store with thousands of runs, in one query.

        Args:
            project: only this project's runs.
            status: only runs with this status.
            name: only runs whose name contains this text (any case).
            limit, offset: the page: at most ``limit`` runs, after skipping ``offset``.

        Example:
            >>> import tempfile, pathlib
            >>> from runcast.store import SQLiteStore
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "p.db")
            >>> for i in range(5):
            ...     _ = store.create_run("p", f"lr-{i}", start_time=float(i))
            >>> page = store.runs_page(name="LR", limit=2, offset=1)
            >>> [r.name for r in page.runs], page.total
            (['lr-3', 'lr-2'], 5)
        """
        if status is not None:
            check_status(status)
        for arg, value in (("limit", limit), ("offset", offset)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInputError(f"{arg} must be an int >= 0, but got {value!r}.")
        where: list[str] = []
        args: list[Any] = []
        for column, wanted in (("r.project", project), ("r.status", status)):
            if wanted is not None:
                where.append(f"{column} = ?")
                args.append(wanted)
        if name:
            escaped = name.lower()
            for special in ("\\", "%", "_"):  # the name is text, not a LIKE pattern
                escaped = escaped.replace(special, "\\" + special)
            where.append("lower(r.name) LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        count = f"SELECT count(*) FROM runs r{cond}"
        # one round trip (each one waits for a busy server's scheduler): the page by the runs
        # table alone (newest first is a walk down runs_by_time), its runs' metrics joined to
        # it, and the count of every match as a column
        page = (
            f"SELECT r.*, {self._SEQ} AS seq_ FROM runs r{cond} "
            f"ORDER BY r.start_time DESC, {self._SEQ} DESC LIMIT ? OFFSET ?"
        )
        rows = self._fetch(
            f"SELECT {_PAGE_COLUMNS}, ({count}), "
            f"m.key, m.n_points, m.first_step, m.last_step, m.last_value, m.n_missing "
            f"FROM ({page}) p LEFT JOIN metrics m ON m.run_id = p.id "
            "ORDER BY p.start_time DESC, p.seq_ DESC, m.key",
            (*args, *args, limit, offset),
        )
        if not rows:  # past the last page: the count alone
            return RunsPage([], int(self._fetch(count, tuple(args))[0][0]), {})
        by_run: dict[str, list[tuple[Any, ...]]] = {}
        for r in rows:
            by_run.setdefault(r[0], []).append(r)
        now = time.time()
        runs, summaries = [], {}
        for rid, group in by_run.items():
            metrics = [g[13:] for g in group if g[13] is not None]
            steps = [int(m[3]) for m in metrics if m[3] is not None]
            n_points = sum(int(m[1]) for m in metrics)
            runs.append(self._info((*group[0][:12], max(steps, default=None), n_points), now))
            summaries[rid] = {
                m[0]: MetricSummary(
                    key=m[0],
                    n_points=int(m[1]),
                    first_step=int(m[2]),
                    last_step=int(m[3]),
                    last_value=float("nan") if m[4] is None else float(m[4]),
                    n_missing=int(m[5]),
                )
                for m in metrics
                if int(m[1]) > 0
            }
        return RunsPage(runs, int(rows[0][12]), summaries)

    def run(self, run: str) -> RunInfo:
        """One run by id, by name (the newest of that name) or by a unique id prefix.

        Example:
            >>> import tempfile, pathlib
            >>> from runcast.store import SQLiteStore
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "r.db")
            >>> info = store.create_run(name="baseline")
            >>> store.run("baseline").id == store.run(info.id[:5]).id == info.id
            True
        """
        if not isinstance(run, str):
            raise InvalidInputError(
                f"A run is named by its id or name (a string), but got {run!r} "
                f"({type(run).__name__})."
            )
        for where in ("r.id = ?", "r.name = ?"):
            rows = self._fetch(
                f"{RUN_QUERY} WHERE {where} ORDER BY r.start_time DESC LIMIT 1", (run,)
            )
            if rows:
                return self._info(rows[0], time.time())
        pattern = run.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        ids = [
            r[0]
            for r in self._fetch(
                "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 6", (pattern,)
            )
        ]
        if len(ids) == 1 and len(run) >= 3:
            return self.run(ids[0])
        if len(ids) > 1 and len(run) >= 3:
            raise RunNotFoundError(
                f"Run id prefix {run!r} is ambiguous in {self.where!r}: it matches "
                f"{', '.join(ids[:5])}. Give more characters of the id."
            )
        raise RunNotFoundError(
            f"No run {run!r} (id or name) in the store {self.where!r}. "
            "List the runs with `runcast runs list`."
        )

    def create_run(
        self,
        project: str = "default",
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        parent_id: str | None = None,
        fork_step: int | None = None,
        status: Status = "running",
        start_time: float | None = None,
        end_time: float | None = None,
        owner_pid: int | None = None,
    ) -> RunInfo:
        """Record a new run; ``owner_pid`` (default: this process) is checked for liveness."""
        check_status(status)
        for arg, text in (("project", project), ("name", name)):
            if not isinstance(text, str) and not (arg == "name" and text is None):
                raise InvalidInputError(
                    f"A run's {arg} must be a string, but got {text!r} ({type(text).__name__})."
                )
        cfg = config_json(config)
        start = time.time() if start_time is None else start_time
        pid = os.getpid() if owner_pid is None else owner_pid
        for _ in range(100):
            run_id = secrets.token_hex(4)
            values: tuple[Any, ...] = (run_id, project, name or f"run-{run_id}", status, cfg)
            values += (start, end_time, parent_id, fork_step, HOST, pid, time.time())
            inserted = self._execute(
                [
                    (
                        f"INSERT INTO runs({_RUN_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                        "?, ?) ON CONFLICT(id) DO NOTHING",
                        values,
                    )
                ],
                "record a new run",
            )
            if inserted[0]:
                return self.run(run_id)
            # 1 in 4 billion: the id is taken, draw another
        raise StoreError("Could not draw a unique run id after 100 tries.")

    def put_run(self, info: RunInfo) -> None:
        """Record ``info`` as it is, id, status, owner and heartbeat included: a new run, or an
        update of the run with that id (what ``runcast sync`` copies between stores)."""
        check_status(info.status)
        values: tuple[Any, ...] = (info.id, info.project, info.name, info.status)
        values += (config_json(info.config),)
        values += (info.start_time, info.end_time, info.parent_id, info.fork_step, info.host)
        values += (info.pid, info.heartbeat)
        updated = ", ".join(
            f"{c} = excluded.{c}" for c in _RUN_FIELDS.split(", ") if c not in ("id", "start_time")
        )
        self._execute(
            [
                (
                    f"INSERT INTO runs({_RUN_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    f"ON CONFLICT(id) DO UPDATE SET {updated}",
                    values,
                )
            ],
            f"record run {info.id}",
        )

    def set_status(self, run: str, status: Status, end_time: float | None = None) -> None:
        """Set a run's status; any status but "running" also sets its end time (default now).

        Example:
            >>> import tempfile, pathlib
            >>> from runcast.store import SQLiteStore
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "r.db")
            >>> info = store.create_run()
            >>> store.set_status(info.id, "failed")
            >>> store.run(info.id).status
            'failed'
        """
        check_status(status)
        end = None if status == "running" else (time.time() if end_time is None else end_time)
        run_id = self.run(run).id
        self._execute(
            [
                (
                    "UPDATE runs SET status = ?, end_time = ?, heartbeat = ? WHERE id = ?",
                    (status, end, time.time(), run_id),
                )
            ],
            f"set the status of run {run_id}",
        )

    def claim(self, run: str, config: Mapping[str, Any] | None = None) -> RunInfo:
        """Mark ``run`` as running in this process (to resume it), adding ``config`` keys to its
        config; returns the run as it was before."""
        before = self.run(run)
        merged = config_json({**before.config, **(config or {})})
        self._execute(
            [
                (
                    "UPDATE runs SET status = 'running', end_time = NULL, host = ?, pid = ?, "
                    "heartbeat = ?, config = ? WHERE id = ?",
                    (HOST, os.getpid(), time.time(), merged, before.id),
                )
            ],
            f"resume run {before.id}",
        )
        return before

    def fork(self, run: str, fork_step: int, name: str | None = None) -> RunInfo:
        """A new child run of ``run`` with a copy of the parent's points before ``fork_step``.

        The copy (not a reference) keeps each run self-contained: deleting the parent later
        leaves the fork whole.

        Example:
            >>> import tempfile, pathlib
            >>> from runcast.store import SQLiteStore
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "r.db")
            >>> parent = store.create_run(name="base")
            >>> with store.writer(parent.id) as w:
            ...     w.write({"loss": Series.of([0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0])})
            >>> child = store.fork(parent.id, 2)
            >>> child.name, child.fork_step, store.curve(child.id, "loss").step.tolist()
            ('base@2', 2, [0, 1])
        """
        if isinstance(fork_step, bool) or not isinstance(fork_step, int | np.integer):
            raise InvalidInputError(
                f"fork_step must be a non-negative int step, but got {fork_step!r}."
            )
        if fork_step < 0:
            raise InvalidInputError(f"fork_step must be a non-negative step, but got {fork_step}.")
        fork_step = int(fork_step)
        parent = self.run(run)
        child = self.create_run(
            parent.project,
            name or f"{parent.name}@{fork_step}",
            parent.config,
            parent_id=parent.id,
            fork_step=fork_step,
        )
        batch: dict[str, Series] = {}
        for key in self.keys(parent.id):
            p = self.points(parent.id, key)
            keep = p.step < fork_step
            if keep.any():
                batch[key] = Series(p.step[keep], p.value[keep], p.wall[keep])
        with self.writer(child.id) as sink:
            sink.write(batch, heartbeat=False)
        return self.run(child.id)

    def delete(self, run: str) -> None:
        """Remove a run and all its points (its forks keep their own copies).

        Example:
            >>> import tempfile, pathlib
            >>> from runcast.store import SQLiteStore
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "r.db")
            >>> store.delete(store.create_run().id)
            >>> store.runs()
            []
        """
        run_id = self.run(run).id
        # the run row goes first: a writer holding it (PostgreSQL's key-share lock) makes this
        # wait for its batch, and a writer after this sees no run and writes nothing
        self._execute(
            [
                ("DELETE FROM runs WHERE id = ?", (run_id,)),
                (
                    "DELETE FROM chunks WHERE metric_id IN "
                    "(SELECT id FROM metrics WHERE run_id = ?)",
                    (run_id,),
                ),
                ("DELETE FROM metrics WHERE run_id = ?", (run_id,)),
            ],
            f"delete run {run_id}",
        )

    # -- metrics ------------------------------------------------------------------------------
    def summary(self, run: str) -> dict[str, MetricSummary]:
        """Each metric's point count, first/last step and last value, read without its points.

        Example:
            >>> import tempfile, pathlib
            >>> from runcast.store import SQLiteStore
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "r.db")
            >>> info = store.create_run()
            >>> with store.writer(info.id) as w:
            ...     w.write({"loss": Series.of([0, 5], [2.0, float("nan")])})
            >>> s = store.summary(info.id)["loss"]
            >>> s.n_points, s.last_step, s.n_missing
            (2, 5, 1)
        """
        run_id = self.run(run).id
        rows = self._fetch(
            "SELECT key, n_points, first_step, last_step, last_value, n_missing "
            "FROM metrics WHERE run_id = ? AND n_points > 0 ORDER BY key",
            (run_id,),
        )
        return {
            r[0]: MetricSummary(
                key=r[0],
                n_points=int(r[1]),
                first_step=int(r[2]),
                last_step=int(r[3]),
                last_value=float("nan") if r[4] is None else float(r[4]),
                n_missing=int(r[5]),
            )
            for r in rows
        }

    def points(
        self, run: str, key: str, since_step: int | None = None, wall: bool = True
    ) -> Points:
        """The raw points of one metric, in write order (see :meth:`Store.curve`);
        ``wall=False`` skips reading wall times (``.wall`` is then empty)."""
        if since_step is not None:
            if isinstance(since_step, bool) or not isinstance(since_step, int | np.integer):
                raise InvalidInputError(
                    f"since_step must be an int step or None, but got {since_step!r}."
                )
            # the query compares in int64: clamp, so a huge since_step reads nothing
            since_step = min(max(int(since_step), -1), 2**63 - 1)
        found = self._fetch("SELECT id FROM metrics WHERE run_id = ? AND key = ?", (run, key))
        if not found:
            run_id = self.run(run).id  # raises RunNotFoundError for an unknown run
            found = self._fetch(
                "SELECT id FROM metrics WHERE run_id = ? AND key = ?", (run_id, key)
            )
            if not found:
                keys = ", ".join(self.keys(run_id)) or "none yet"
                raise MetricNotFoundError(
                    f"Run {run_id} has no metric {key!r}; its metrics: {keys}."
                )
        sql = f"SELECT steps, vals{', walls' if wall else ''} FROM chunks WHERE metric_id = ?"
        args: tuple[int, ...] = (int(found[0][0]),)
        if since_step is not None:
            sql += " AND max_step > ?"
            args += (int(since_step),)
        chunks = self._fetch(sql + " ORDER BY id", args)
        # one join + frombuffer per column: a 1M-point metric reads in a few milliseconds
        step = _unpack([c[0] for c in chunks], STEP_DTYPE).astype(np.int64, copy=False)
        value = _unpack([c[1] for c in chunks], VALUE_DTYPE).astype(np.float64, copy=False)
        walls = _unpack([c[2] for c in chunks] if wall else [], VALUE_DTYPE).astype(np.float64)
        if since_step is not None:
            keep = step > since_step
            step, value = step[keep], value[keep]
            walls = walls[keep] if wall else walls
        return Points(step, value, walls)
