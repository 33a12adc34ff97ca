"""The embedded store: one SQLite file in WAL mode, safe for many processes at once."""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from runcast.errors import InvalidInputError, MetricNotFoundError, RunNotFoundError, StoreError
from runcast.store._base import Points, Store
from runcast.store._config import config_json
from runcast.store._schema import connect, retry_busy
from runcast.store._types import STATUSES, MetricSummary, RunInfo, Status
from runcast.store._writer import STEP_DTYPE, VALUE_DTYPE, RunWriter, Series

#: A run whose heartbeat is older than this (seconds) is taken as dead, whatever its pid says
#: (pids get reused; a run on another host has no pid we can check). Writers beat every 10 s.
STALE_AFTER_S = 600.0

_RUN_COLUMNS = (
    "r.id, r.name, r.project, r.status, r.config, r.start_time, r.end_time, r.parent_id, "
    "r.fork_step, r.host, r.pid, r.heartbeat, m.last_step, coalesce(m.n_points, 0)"
)
_RUN_QUERY = (
    f"SELECT {_RUN_COLUMNS} FROM runs r LEFT JOIN (SELECT run_id, max(last_step) AS last_step, "
    "sum(n_points) AS n_points FROM metrics GROUP BY run_id) m ON m.run_id = r.id"
)
_HOST = socket.gethostname()


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _unpack(blobs: list[bytes], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    return np.frombuffer(b"".join(blobs), dtype=dtype)


def _is_dead(host: str | None, pid: int | None, heartbeat: float | None, now: float) -> bool:
    if heartbeat is not None and now - heartbeat > STALE_AFTER_S:
        return True
    return host == _HOST and pid is not None and pid != os.getpid() and not _pid_alive(pid)


class SQLiteStore(Store):
    """The SQLite (WAL) run store at ``path``; see :func:`runcast.open_store`.

    Example:
        >>> import tempfile, pathlib
        >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "s.db")
        >>> store.create_run(project="p", name="first").status
        'running'
        >>> [r.name for r in store.runs("p")]
        ['first']
        >>> store.close()
    """

    def __init__(self, path: str | os.PathLike[str], create: bool = True) -> None:
        # absolute: writers open their own connections later (the tracker's thread, forks), and
        # a relative path would then name another file if the process changed directory
        self.path = Path(path).absolute()
        self._conn: sqlite3.Connection | None = connect(self.path, create=create)
        # one connection shared by the calling threads: serialize its use
        self._lock = threading.RLock()

    @property
    def conn(self) -> sqlite3.Connection:
        """The reading connection (raises once the store is closed)."""
        if self._conn is None:
            raise StoreError(f"The store {str(self.path)!r} is closed; open it again.")
        return self._conn

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _fetch(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query; retried while another process's checkpoint or recovery makes
        SQLite answer BUSY at once (the busy timeout does not cover every case)."""

        def go() -> list[tuple[Any, ...]]:
            with self._lock:
                return self.conn.execute(sql, args).fetchall()

        return retry_busy(go, f"read {str(self.path)!r}")

    def close(self) -> None:
        """Close the store's connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- runs ---------------------------------------------------------------------------------
    def _info(self, row: tuple[Any, ...], now: float) -> RunInfo:
        (rid, name, project, status, config, start, end, parent, fork, host, pid, beat) = row[:12]
        if status == "running" and _is_dead(host, pid, beat, now):
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
            fork_step=fork,
            last_step=row[12],
            n_points=int(row[13]),
        )

    def _mark_killed(self, run_id: str, end: float) -> None:
        # best effort: a reader without write access still reports "killed"
        try:
            with self._lock:
                self.conn.execute(
                    "UPDATE runs SET status = 'killed', end_time = ? "
                    "WHERE id = ? AND status = 'running'",
                    (end, run_id),
                )
        except sqlite3.Error:
            pass

    def runs(self, project: str | None = None) -> list[RunInfo]:
        """All runs (of ``project``, if given), newest first; dead "running" runs show "killed".

        Example:
            >>> import tempfile, pathlib
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "r.db")
            >>> _ = store.create_run("a", "old", start_time=1.0), store.create_run("a", "new")
            >>> [r.name for r in store.runs("a")]
            ['new', 'old']
        """
        sql = _RUN_QUERY + (" WHERE r.project = ?" if project is not None else "")
        sql += " ORDER BY r.start_time DESC, r.rowid DESC"
        rows = self._fetch(sql, () if project is None else (project,))
        now = time.time()
        return [self._info(r, now) for r in rows]

    def run(self, run: str) -> RunInfo:
        """One run by id, by name (the newest of that name) or by a unique id prefix.

        Example:
            >>> import tempfile, pathlib
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
                f"{_RUN_QUERY} WHERE {where} ORDER BY r.start_time DESC LIMIT 1", (run,)
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
                f"Run id prefix {run!r} is ambiguous in {str(self.path)!r}: it matches "
                f"{', '.join(ids[:5])}. Give more characters of the id."
            )
        raise RunNotFoundError(
            f"No run {run!r} (id or name) in the store {str(self.path)!r}. "
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
        if status not in STATUSES:
            raise InvalidInputError(f"status must be one of {STATUSES}, but got {status!r}.")
        for arg, text in (("project", project), ("name", name)):
            if not isinstance(text, str) and not (arg == "name" and text is None):
                raise InvalidInputError(
                    f"A run's {arg} must be a string, but got {text!r} ({type(text).__name__})."
                )
        cfg = config_json(config)
        start = time.time() if start_time is None else start_time
        pid = os.getpid() if owner_pid is None else owner_pid

        def insert() -> str:
            with self._lock:
                for _ in range(100):
                    run_id = secrets.token_hex(4)
                    try:
                        self.conn.execute(
                            "INSERT INTO runs(id, project, name, status, config, start_time, "
                            "end_time, parent_id, fork_step, host, pid, heartbeat) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                run_id,
                                project,
                                name or f"run-{run_id}",
                                status,
                                cfg,
                                start,
                                end_time,
                                parent_id,
                                fork_step,
                                _HOST,
                                pid,
                                time.time(),
                            ),
                        )
                        return run_id
                    except sqlite3.IntegrityError as err:
                        if "runs.id" not in str(err):  # not an id clash: never retry it
                            raise StoreError(f"Could not record the run: {err}.") from err
                        continue  # 1 in 4 billion: draw another id
            raise StoreError("Could not draw a unique run id after 100 tries.")

        run_id = retry_busy(insert, "record a new run")
        return self.run(run_id)

    def set_status(self, run: str, status: Status, end_time: float | None = None) -> None:
        """Set a run's status; any status but "running" also sets its end time (default now).

        Example:
            >>> import tempfile, pathlib
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "r.db")
            >>> info = store.create_run()
            >>> store.set_status(info.id, "failed")
            >>> store.run(info.id).status
            'failed'
        """
        if status not in STATUSES:
            raise InvalidInputError(f"status must be one of {STATUSES}, but got {status!r}.")
        end = None if status == "running" else (time.time() if end_time is None else end_time)
        run_id = self.run(run).id

        def update() -> None:
            with self._lock:
                self.conn.execute(
                    "UPDATE runs SET status = ?, end_time = ?, heartbeat = ? WHERE id = ?",
                    (status, end, time.time(), run_id),
                )

        retry_busy(update, f"set the status of run {run_id}")

    def claim(self, run: str, config: Mapping[str, Any] | None = None) -> RunInfo:
        """Mark ``run`` as running in this process (to resume it), adding ``config`` keys to its
        config; returns the run as it was before."""
        before = self.run(run)
        merged = config_json({**before.config, **(config or {})})

        def update() -> None:
            with self._lock:
                self.conn.execute(
                    "UPDATE runs SET status = 'running', end_time = NULL, host = ?, pid = ?, "
                    "heartbeat = ?, config = ? WHERE id = ?",
                    (_HOST, os.getpid(), time.time(), merged, before.id),
                )

        retry_busy(update, f"resume run {before.id}")
        return before

    def fork(self, run: str, fork_step: int, name: str | None = None) -> RunInfo:
        """A new child run of ``run`` with a copy of the parent's points before ``fork_step``.

        The copy (not a reference) keeps each run self-contained: deleting the parent later
        leaves the fork whole.

        Example:
            >>> import tempfile, pathlib
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
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "r.db")
            >>> store.delete(store.create_run().id)
            >>> store.runs()
            []
        """
        run_id = self.run(run).id

        def remove() -> None:
            with self._lock:
                conn = self.conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "DELETE FROM chunks WHERE metric_id IN "
                        "(SELECT id FROM metrics WHERE run_id = ?)",
                        (run_id,),
                    )
                    conn.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
                    conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

        retry_busy(remove, f"delete run {run_id}")

    # -- metrics ------------------------------------------------------------------------------
    def summary(self, run: str) -> dict[str, MetricSummary]:
        """Each metric's point count, first/last step and last value, read without its points.

        Example:
            >>> import tempfile, pathlib
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

    def writer(self, run: str) -> RunWriter:
        """A writer appending to ``run`` over its own connection (use it from one thread)."""
        run_id = self.run(run).id
        return RunWriter(connect(self.path), run_id)
