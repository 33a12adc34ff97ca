"""The tracker's background writer: drains logged points into the store in batches.

The training thread only appends ``(step, wall, values, has_tensor)`` tuples to a deque (an
atomic operation under the GIL, no lock). This thread wakes every ``interval`` seconds (or when
asked to flush), turns the buffered rows into arrays, and writes them in one transaction.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from runcast.store import PointSink, Series
from runcast.track._values import TENSOR_TYPES, rows_to_array, tensors_to_floats

#: Seconds between heartbeats of an idle run (readers take a run as dead after 10 minutes).
HEARTBEAT_S = 10.0

Row = tuple[int, float, dict[str, Any], bool]


@dataclass(frozen=True)
class _Retarget:
    """Queue marker: points after it go to another sink (the run forked)."""

    open_sink: Callable[[], PointSink]


class BackgroundWriter:
    """Owns one thread and one store sink; ``push`` is all the training thread does."""

    def __init__(self, open_sink: Callable[[], PointSink], interval: float = 1.0) -> None:
        self.queue: deque[Row | threading.Event | _Retarget] = deque()
        self.interval = interval
        self.n_written = 0
        self.nonfinite: dict[str, int] = {}
        self.error: BaseException | None = None
        self._open_sink = open_sink
        self._wake = threading.Event()
        self._stop = False
        self._pending: dict[str, list[Series]] = {}
        self._last_beat = 0.0
        self._thread = threading.Thread(target=self._run, name="runcast-writer", daemon=True)
        self._thread.start()

    # -- called from the training thread ------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Block until every point pushed so far is committed; False on timeout."""
        done = threading.Event()
        self.queue.append(done)
        self._wake.set()
        return done.wait(timeout)

    def retarget(self, open_sink: Callable[[], PointSink]) -> None:
        """Send every point pushed from now on to the sink ``open_sink`` makes."""
        self.queue.append(_Retarget(open_sink))
        self._wake.set()

    def close(self, timeout: float | None = None) -> None:
        """Write everything, stop the thread, close the sink."""
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread is still running."""
        return self._thread.is_alive()

    # -- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            sink: PointSink | None = self._open_sink()
        except BaseException as err:  # the store vanished: report at finish()
            self.error = err
            sink = None
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            stopping = self._stop  # read before draining, so nothing pushed earlier is missed
            try:
                sink = self._drain(sink)
            except Exception as err:  # never die silently: finish() reports it
                self.error = err
            if stopping and not self.queue:
                break
        if sink is not None:
            sink.close()

    def _drain(self, sink: PointSink | None) -> PointSink | None:
        rows: list[Row] = []
        for _ in range(len(self.queue)):
            item = self.queue.popleft()
            if isinstance(item, tuple):
                rows.append(item)
                continue
            self._collect(rows)
            rows = []
            sink = self._commit(sink)
            if isinstance(item, _Retarget):
                if sink is not None:
                    sink.close()
                sink = item.open_sink()
            else:
                item.set()  # a flush() waiting for everything before it
        self._collect(rows)
        return self._commit(sink)

    def _collect(self, rows: list[Row]) -> None:
        """Group rows by their key set and turn each group into one Series per key."""
        if not rows:
            return
        groups: dict[tuple[str, ...], list[Row]] = {}
        for row in rows:
            groups.setdefault(tuple(row[2]), []).append(row)
        for keys, group in groups.items():
            if any(r[3] for r in group):
                self._tensors_to_floats(group)
            step = np.fromiter((r[0] for r in group), dtype=np.int64, count=len(group))
            wall = np.fromiter((r[1] for r in group), dtype=np.float64, count=len(group))
            values = rows_to_array([tuple(r[2].values()) for r in group])
            for j, key in enumerate(keys):
                series = Series.of(step, values[:, j], wall)
                if series.n_missing:
                    self.nonfinite[key] = self.nonfinite.get(key, 0) + series.n_missing
                self._pending.setdefault(key, []).append(series)

    @staticmethod
    def _tensors_to_floats(group: list[Row]) -> None:
        kinds = TENSOR_TYPES
        where = [(r[2], k) for r in group if r[3] for k, v in r[2].items() if type(v) in kinds]
        floats = tensors_to_floats([d[k] for d, k in where])
        for (d, k), f in zip(where, floats, strict=True):
            d[k] = f  # the dict is log()'s private copy

    def _commit(self, sink: PointSink | None) -> PointSink | None:
        now = time.time()
        beat = now - self._last_beat > HEARTBEAT_S
        if sink is None or (not self._pending and not beat):
            return sink
        batch = {
            k: parts[0]
            if len(parts) == 1
            else Series(
                np.concatenate([p.step for p in parts]),
                np.concatenate([p.value for p in parts]),
                np.concatenate([p.wall for p in parts]),
            )
            for k, parts in self._pending.items()
        }
        try:
            sink.write(batch, heartbeat=True)
        except BaseException as err:  # keep the points; retry on the next wake-up
            self.error = err
            self._pending = {k: [s] for k, s in batch.items()}
            return sink
        self.error = None
        self._last_beat = now
        self.n_written += sum(len(s) for s in batch.values())
        self._pending = {}
        return sink
