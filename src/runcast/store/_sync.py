"""Copy runs from one store into another (a laptop's SQLite file into the team's PostgreSQL):
idempotent, resumable after a kill, keeping run ids, forks and statuses.

A metric's points are append-only and read back in write order, so what the target already
holds of a run is a prefix of what the source holds: only the points past the target's count
are copied, in batches of one transaction each. A kill mid-copy leaves whole batches; the next
sync starts where it stopped, and a sync with nothing new writes nothing. While a run is being
copied, the target marks it "running" under the syncing process, so a reader there never takes a
half-copied run for a finished one; its own status, owner and heartbeat come last.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from runcast.errors import InvalidInputError
from runcast.store._config import config_json
from runcast.store._sql import HOST, RUN_QUERY, SQLStore
from runcast.store._types import RunInfo
from runcast.store._writer import Series

#: Points per write transaction: a kill loses at most one batch of work, never data.
BATCH_POINTS = 250_000


@dataclass
class SyncReport:
    """What one :func:`sync` did.

    Attributes:
        new: ids of runs the target did not have.
        updated: ids of runs that got points or a new status, config or heartbeat.
        unchanged: how many runs the target already held exactly.
        points: points copied, all runs together.
        conflicts: runs not copied, each with the reason (another run with the same id, or a
            metric with more points in the target than in the source).
    """

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    points: int = 0
    conflicts: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the sync wrote anything."""
        return bool(self.new or self.updated)


def _same_record(a: RunInfo, b: RunInfo) -> bool:
    keys = ("name", "project", "status", "end_time", "parent_id", "fork_step", "heartbeat")
    # configs compare as stored text: a NaN in one is equal to itself there
    same_config = config_json(a.config) == config_json(b.config)
    return same_config and all(getattr(a, k) == getattr(b, k) for k in keys)


def _chunks_from(store: SQLStore, run_id: str, key: str, skip: int) -> Series:
    """The points of one metric after its first ``skip`` (write order), reading only the chunks
    that hold them: a live run's sync reads its new points, not its whole history."""
    found = store._fetch("SELECT id FROM metrics WHERE run_id = ? AND key = ?", (run_id, key))
    metric_id = int(found[0][0])
    sizes = store._fetch("SELECT id, n FROM chunks WHERE metric_id = ? ORDER BY id", (metric_id,))
    before, first_id = 0, None
    for chunk_id, n in sizes:  # earlier chunks never change: only a writer's last one grows
        if before + int(n) > skip:
            first_id = int(chunk_id)
            break
        before += int(n)
    if first_id is None:
        return Series.of([], [], [])
    rows = store._fetch(
        "SELECT steps, vals, walls FROM chunks WHERE metric_id = ? AND id >= ? ORDER BY id",
        (metric_id, first_id),
    )
    step = np.frombuffer(b"".join(r[0] for r in rows), dtype="<i8")[skip - before :]
    value = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f8")[skip - before :]
    wall = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f8")[skip - before :]
    return Series(step.astype(np.int64), value.astype(np.float64), wall.astype(np.float64))


def _find(store: SQLStore, run_id: str) -> RunInfo | None:
    rows = store._fetch(f"{RUN_QUERY} WHERE r.id = ?", (run_id,))
    return store._info(rows[0], time.time()) if rows else None


def sync(
    source: SQLStore,
    target: SQLStore,
    project: str | None = None,
    batch_points: int = BATCH_POINTS,
    progress: Callable[[str], None] | None = None,
) -> SyncReport:
    """Copy every run of ``source`` (of ``project``, if given) into ``target``.

    Args:
        source: the store runs were recorded in (e.g. ``runcast.open_store("local.db")``).
        target: the store to copy them into (e.g. a ``postgresql://`` store).
        project: copy only this project's runs.
        batch_points: points per write transaction.
        progress: called with one line per run copied.

    Example:
        >>> import tempfile, pathlib, runcast
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with runcast.init(project="p", name="laptop", db=d / "local.db") as run:
        ...     run.log({"loss": 1.0})
        >>> with runcast.open_store(d / "local.db") as a, runcast.open_store(d / "team.db") as b:
        ...     first, again = sync(a, b), sync(a, b)
        ...     b.run(run.id).name
        'laptop'
        >>> (first.new == [run.id], first.points, again.changed)
        (True, 1, False)
    """
    if isinstance(batch_points, bool) or not isinstance(batch_points, int) or batch_points < 1:
        raise InvalidInputError(f"batch_points must be an int >= 1, but got {batch_points!r}.")
    report = SyncReport()
    # oldest first: a fork's parent lands before the fork
    for info in sorted(source.runs(project), key=lambda r: (r.start_time, r.id)):
        there = _find(target, info.id)
        if there is not None and (there.start_time, there.project) != (
            info.start_time,
            info.project,
        ):
            report.conflicts.append(
                f"{info.id}: the target has another run with this id ({there.name!r}, project "
                f"{there.project!r}); not copied"
            )
            continue
        have = target.summary(info.id) if there is not None else {}
        todo: dict[str, int] = {}
        for key, s in source.summary(info.id).items():
            done = have[key].n_points if key in have else 0
            if done > s.n_points:
                report.conflicts.append(
                    f"{info.id}: metric {key!r} has {done} points in the target but {s.n_points} "
                    "here (the run went on in the target); its new points were not copied"
                )
            elif done < s.n_points:
                todo[key] = done
        if not todo and there is not None and _same_record(there, info):
            report.unchanged += 1
            continue
        n_copied = 0
        if todo:
            # "running" under this process while copying: a half-copied run never reads as done
            target.put_run(
                replace(info, status="running", end_time=None, host=HOST, pid=os.getpid(),
                        heartbeat=time.time())
            )  # fmt: skip
            with target.writer(info.id) as sink:
                for key, done in todo.items():
                    new = _chunks_from(source, info.id, key, done)
                    for lo in range(0, len(new), batch_points):
                        part = Series(
                            new.step[lo : lo + batch_points],
                            new.value[lo : lo + batch_points],
                            new.wall[lo : lo + batch_points],
                        )
                        sink.write({key: part}, heartbeat=False)
                        n_copied += len(part)
        # the source's own record last: status, owner, heartbeat (read again: a live run's
        # heartbeat moved on while its points were copied)
        latest = _find(source, info.id) or info
        target.put_run(latest)
        report.points += n_copied
        (report.updated if there is not None else report.new).append(info.id)
        if progress is not None:
            progress(f"{info.id} {info.name!r}: {n_copied:,} points, {latest.status}")
    return report
