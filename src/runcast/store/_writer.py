"""Writing a run's points into the SQLite store: one transaction per batch, packed chunks.

Each metric's points live in chunks of up to :data:`CHUNK_POINTS` points. The writer remembers
the metric's last, partly filled chunk and grows it in place, so a slow run that flushes a few
points at a time still ends up with few, large chunks (and fast reads).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from runcast.errors import InvalidInputError, RunNotFoundError
from runcast.store._schema import retry_busy

#: Points per chunk row. 8192 points = 192 KiB of blobs: large enough that a 1M-point metric is
#: ~120 rows, small enough that growing the last chunk each flush stays cheap.
CHUNK_POINTS = 8192

STEP_DTYPE = np.dtype("<i8")
VALUE_DTYPE = np.dtype("<f8")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Series:
    """A batch of points of one metric: steps, values (NaN = missing) and wall times.

    Example:
        >>> import numpy as np
        >>> s = Series.of([1, 2], [0.5, float("nan")], wall=100.0)
        >>> len(s), s.n_missing
        (2, 1)
    """

    step: IntArray
    value: FloatArray
    wall: FloatArray

    def __post_init__(self) -> None:
        shapes = (self.step.shape, self.value.shape, self.wall.shape)
        if len(set(shapes)) != 1 or self.step.ndim != 1:
            raise InvalidInputError(
                f"A Series needs three 1-d arrays of one length, but got shapes {shapes}."
            )

    @classmethod
    def of(
        cls,
        step: npt.ArrayLike,
        value: npt.ArrayLike,
        wall: npt.ArrayLike | float | None = None,
    ) -> Series:
        """Build a batch; ``wall`` defaults to now, a scalar is used for every point."""
        try:
            s = np.ascontiguousarray(step, dtype=STEP_DTYPE)
            v = np.ascontiguousarray(value, dtype=VALUE_DTYPE)
        except (TypeError, ValueError, OverflowError) as err:
            raise InvalidInputError(
                f"A Series needs int64 steps and float values, but converting them failed "
                f"({err}). Steps are training-step counts from 0 to {2**63 - 1}."
            ) from err
        if s.size and s.min() < 0:
            raise InvalidInputError(f"A Series' steps cannot be negative, but got {s.min()}.")
        v = np.where(np.isfinite(v), v, np.nan)  # inf is stored as missing, like NaN
        w_raw = time.time() if wall is None else wall
        w = np.broadcast_to(np.asarray(w_raw, dtype=VALUE_DTYPE), s.shape)
        return cls(s, v, np.ascontiguousarray(w))

    def __len__(self) -> int:
        return int(self.step.size)

    @property
    def n_missing(self) -> int:
        """How many values are missing (NaN)."""
        return int(np.isnan(self.value).sum())


def _should_grow(tail: int, new: int) -> bool:
    """Whether ``new`` points go into the metric's last chunk (rewritten) or a new chunk.

    Growing rewrites the whole tail, so it is worth it only while the tail is small (a slow run
    flushing a few points at a time) or small next to what arrives; otherwise a new chunk is
    cheaper. Chunks thus hold at least ~1/8 of CHUNK_POINTS unless the run itself is tiny.
    """
    if tail + new > CHUNK_POINTS:
        return False
    return tail < CHUNK_POINTS // 8 or 8 * new >= tail


@dataclass
class _Tail:
    chunk_id: int
    series: Series


def _concat(a: Series, b: Series) -> Series:
    return Series(
        np.concatenate([a.step, b.step]),
        np.concatenate([a.value, b.value]),
        np.concatenate([a.wall, b.wall]),
    )


def _blobs(s: Series) -> tuple[int, int, int, bytes, bytes, bytes]:
    return (
        int(s.step.min()),
        int(s.step.max()),
        len(s),
        s.step.tobytes(),
        s.value.tobytes(),
        s.wall.tobytes(),
    )


def check_keys(run_id: str, batch: Mapping[str, Series]) -> None:
    """Refuse a batch with a metric key that is not a non-empty string (every store's rule).

    ``run.log`` refuses these too; a metric must be found again by its key.
    """
    bad = [k for k in batch if not isinstance(k, str) or not k]
    if bad:
        raise InvalidInputError(
            f"Metric keys must be non-empty strings, but the batch for run {run_id} "
            f"has {bad[:3]}. Nothing of it was written."
        )


class RunWriter:
    """Appends batches of points to one run of an SQLite store.

    Not thread-safe: one writer per thread (the tracker gives its writer thread its own).

    Example:
        >>> import tempfile, pathlib, runcast
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "doc.db"
        >>> with runcast.open_store(path) as store:
        ...     info = store.create_run(project="doc", name="w")
        ...     with store.writer(info.id) as sink:
        ...         sink.write({"loss": Series.of([0, 1], [2.0, 1.5])})
        ...     store.curve(info.id, "loss").value.tolist()
        [2.0, 1.5]
    """

    def __init__(self, conn: sqlite3.Connection, run_id: str) -> None:
        self._conn = conn
        self.run_id = run_id
        self._metric_ids: dict[str, int] = {}
        self._tails: dict[int, _Tail] = {}

    def close(self) -> None:
        """Close the writer's connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, batch: Mapping[str, Series], heartbeat: bool = True) -> None:
        """Write every series of ``batch`` in one transaction (retried while the store is busy)."""
        check_keys(self.run_id, batch)
        batch = {k: s for k, s in batch.items() if len(s)}
        if not batch and not heartbeat:
            return
        retry_busy(lambda: self._write_once(batch, heartbeat), f"write run {self.run_id}")

    def _write_once(self, batch: Mapping[str, Series], heartbeat: bool) -> None:
        conn = self._conn
        new_ids: dict[str, int] = {}
        new_tails: dict[int, _Tail | None] = {}
        conn.execute("BEGIN IMMEDIATE")
        try:
            # the run may have been deleted (runs rm --force) since this writer opened: points
            # written now would belong to no run, unseen and never cleaned up
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (self.run_id,)).fetchone() is None:
                n = sum(len(s) for s in batch.values())
                raise RunNotFoundError(
                    f"Run {self.run_id} was deleted from the store while it was being written; "
                    f"{n} point(s) were not written."
                )
            for key, series in batch.items():
                metric_id = self._metric_ids.get(key)
                if metric_id is None:
                    metric_id = self._metric_id(key)
                    new_ids[key] = metric_id
                new_tails[metric_id] = self._append(metric_id, series)
                self._summarize(metric_id, series)
            if heartbeat:
                # a live heartbeat also revives a run that a reader wrongly marked "killed"
                # (a laptop that slept, a process stopped with SIGSTOP)
                conn.execute(
                    "UPDATE runs SET heartbeat = ?, status = 'running', end_time = NULL "
                    "WHERE id = ? AND status IN ('running', 'killed')",
                    (time.time(), self.run_id),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # only now, after the commit, is it safe to remember ids and chunk tails
        self._metric_ids.update(new_ids)
        for metric_id, tail in new_tails.items():
            if tail is None:
                self._tails.pop(metric_id, None)
            else:
                self._tails[metric_id] = tail

    def _metric_id(self, key: str) -> int:
        self._conn.execute(
            "INSERT OR IGNORE INTO metrics(run_id, key) VALUES (?, ?)", (self.run_id, key)
        )
        row = self._conn.execute(
            "SELECT id FROM metrics WHERE run_id = ? AND key = ?", (self.run_id, key)
        ).fetchone()
        return int(row[0])

    def _append(self, metric_id: int, series: Series) -> _Tail | None:
        conn = self._conn
        tail = self._tails.get(metric_id)
        if tail is not None and _should_grow(len(tail.series), len(series)):
            grown = _concat(tail.series, series)
            conn.execute(
                "UPDATE chunks SET min_step = ?, max_step = ?, n = ?, steps = ?, vals = ?, "
                "walls = ? WHERE id = ?",
                (*_blobs(grown), tail.chunk_id),
            )
            return _Tail(tail.chunk_id, grown)
        last: _Tail | None = None
        for lo in range(0, len(series), CHUNK_POINTS):
            part = Series(
                series.step[lo : lo + CHUNK_POINTS],
                series.value[lo : lo + CHUNK_POINTS],
                series.wall[lo : lo + CHUNK_POINTS],
            )
            cur = conn.execute(
                "INSERT INTO chunks(metric_id, min_step, max_step, n, steps, vals, walls) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (metric_id, *_blobs(part)),
            )
            assert cur.lastrowid is not None
            last = _Tail(int(cur.lastrowid), part)
        if last is not None and len(last.series) >= CHUNK_POINTS:
            return None
        return last

    def _summarize(self, metric_id: int, series: Series) -> None:
        # the value at the batch's largest step (its last occurrence) is the metric's latest
        i_max = int(series.step.size - 1 - np.argmax(series.step[::-1]))
        hi = int(series.step[i_max])
        val = float(series.value[i_max])
        self._conn.execute(
            "UPDATE metrics SET n_points = n_points + ?, n_missing = n_missing + ?, "
            "first_step = min(coalesce(first_step, ?), ?), "
            "last_value = CASE WHEN last_step IS NULL OR last_step <= ? THEN ? "
            "ELSE last_value END, "
            "last_step = max(coalesce(last_step, ?), ?) WHERE id = ?",
            (
                len(series),
                series.n_missing,
                int(series.step.min()),
                int(series.step.min()),
                hi,
                None if np.isnan(val) else val,
                hi,
                hi,
                metric_id,
            ),
        )
