"""Writing a run's points into the PostgreSQL store: one transaction per batch, batched.

The chunk layout is the SQLite writer's (a metric's last, small chunk grows in place), but each
kind of statement goes to the server once per batch with ``executemany`` (psycopg pipelines the
rows), so a batch of many metrics costs a handful of round trips, not one per metric.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from runcast.errors import InvalidInputError, RunNotFoundError, StoreError
from runcast.store._writer import (
    CHUNK_POINTS,
    Series,
    _blobs,
    _concat,
    _should_grow,
    _Tail,
    check_keys,
)

_SUMMARY = (
    "UPDATE metrics SET n_points = n_points + %s, n_missing = n_missing + %s, "
    "first_step = LEAST(coalesce(first_step, %s), %s), "
    "last_value = CASE WHEN last_step IS NULL OR last_step <= %s THEN %s::float8 "
    "ELSE last_value END, last_step = GREATEST(coalesce(last_step, %s), %s) WHERE id = %s"
)
_INSERT_CHUNK = (
    "INSERT INTO chunks(metric_id, min_step, max_step, n, steps, vals, walls) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
_GROW_CHUNK = (
    "UPDATE chunks SET min_step = %s, max_step = %s, n = %s, steps = %s, vals = %s, walls = %s "
    "WHERE id = %s"
)


def _parts(series: Series) -> list[Series]:
    return [
        Series(
            series.step[lo : lo + CHUNK_POINTS],
            series.value[lo : lo + CHUNK_POINTS],
            series.wall[lo : lo + CHUNK_POINTS],
        )
        for lo in range(0, len(series), CHUNK_POINTS)
    ]


def _summary_row(metric_id: int, series: Series) -> tuple[Any, ...]:
    # the value at the batch's largest step (its last occurrence) is the metric's latest
    i_max = int(series.step.size - 1 - np.argmax(series.step[::-1]))
    hi, lo = int(series.step[i_max]), int(series.step.min())
    val = float(series.value[i_max])
    return (len(series), series.n_missing, lo, lo, hi, None if np.isnan(val) else val, hi, hi,
            metric_id)  # fmt: skip


class PostgresRunWriter:
    """Appends batches of points to one run of a PostgreSQL store, over its own connection.

    Not thread-safe: one writer per thread (the tracker gives its writer thread its own). A
    dropped connection is opened again on the next write; the tracker keeps the batch and
    retries it.
    """

    def __init__(self, connect: Callable[[], Any], run_id: str, where: str) -> None:
        self._connect = connect
        self._conn: Any = connect()
        self.run_id = run_id
        self._where = where
        self._metric_ids: dict[str, int] = {}
        self._tails: dict[int, _Tail] = {}

    def close(self) -> None:
        """Close the writer's connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> PostgresRunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, batch: Mapping[str, Series], heartbeat: bool = True) -> None:
        """Write every series of ``batch`` in one transaction, or nothing."""
        import psycopg

        check_keys(self.run_id, batch)
        nul = [k for k in batch if "\x00" in k]
        if nul:  # PostgreSQL text cannot hold a NUL character
            raise InvalidInputError(
                f"Metric keys in a PostgreSQL store cannot contain NUL characters, but the batch "
                f"for run {self.run_id} has {nul[:3]}. Rename them; nothing of it was written."
            )
        batch = {k: s for k, s in batch.items() if len(s)}
        if not batch and not heartbeat:
            return
        try:
            if self._conn.closed or self._conn.broken:
                self._conn = self._connect()
            self._write_once(batch, heartbeat)
        except psycopg.Error as err:
            raise StoreError(
                f"Could not write run {self.run_id} to {self._where}: {err}. The batch was "
                "not written (a recording run keeps it and retries)."
            ) from err

    def _write_once(self, batch: Mapping[str, Series], heartbeat: bool) -> None:
        conn = self._conn
        new_ids: dict[str, int] = {}
        new_tails: dict[int, _Tail | None] = {}
        with conn.transaction(), conn.cursor() as cur:
            # the key-share lock keeps a concurrent delete of the run waiting until this batch
            # is in; a run deleted before it leaves nothing to lock, and nothing is written
            cur.execute("SELECT 1 FROM runs WHERE id = %s FOR KEY SHARE", (self.run_id,))
            if cur.fetchone() is None:
                n = sum(len(s) for s in batch.values())
                raise RunNotFoundError(
                    f"Run {self.run_id} was deleted from the store while it was being written; "
                    f"{n} point(s) were not written."
                )
            unknown = [k for k in batch if k not in self._metric_ids]
            if unknown:
                cur.executemany(
                    "INSERT INTO metrics(run_id, key) VALUES (%s, %s) ON CONFLICT (run_id, key) "
                    "DO UPDATE SET key = EXCLUDED.key RETURNING id",
                    [(self.run_id, k) for k in unknown],
                    returning=True,
                )
                for key in unknown:
                    new_ids[key] = int(cur.fetchone()[0])
                    cur.nextset()
            metric_ids = {k: self._metric_ids.get(k) or new_ids[k] for k in batch}
            grows: list[tuple[Any, ...]] = []
            inserts: list[tuple[int, Series]] = []
            for key, series in batch.items():
                metric_id = metric_ids[key]
                tail = self._tails.get(metric_id)
                if tail is not None and _should_grow(len(tail.series), len(series)):
                    grown = _concat(tail.series, series)
                    grows.append((*_blobs(grown), tail.chunk_id))
                    new_tails[metric_id] = _Tail(tail.chunk_id, grown)
                else:
                    inserts += [(metric_id, part) for part in _parts(series)]
                    new_tails[metric_id] = None
            if grows:
                cur.executemany(_GROW_CHUNK, grows)
            if inserts:
                rows = [(metric_id, *_blobs(part)) for metric_id, part in inserts]
                cur.executemany(_INSERT_CHUNK, rows, returning=True)
                for metric_id, part in inserts:
                    chunk_id = int(cur.fetchone()[0])
                    cur.nextset()
                    # the last part of a metric is its new tail, unless already full
                    full = len(part) >= CHUNK_POINTS
                    new_tails[metric_id] = None if full else _Tail(chunk_id, part)
            cur.executemany(_SUMMARY, [_summary_row(metric_ids[k], s) for k, s in batch.items()])
            if heartbeat:
                # a live heartbeat also revives a run that a reader wrongly marked "killed"
                cur.execute(
                    "UPDATE runs SET heartbeat = %s, status = 'running', end_time = NULL "
                    "WHERE id = %s AND status IN ('running', 'killed')",
                    (time.time(), self.run_id),
                )
        # only now, after the commit, is it safe to remember ids and chunk tails
        self._metric_ids.update(new_ids)
        for metric_id, new_tail in new_tails.items():
            if new_tail is None:
                self._tails.pop(metric_id, None)
            else:
                self._tails[metric_id] = new_tail
