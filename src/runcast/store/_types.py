"""What the store hands out: a run's record and a metric's summary (plain, frozen values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["running", "finished", "failed", "killed"]

#: Every status a run can have. "killed" marks a run whose process died without finishing
#: (found on a later read: its pid is gone, or its heartbeat stopped).
STATUSES: tuple[Status, ...] = ("running", "finished", "failed", "killed")


@dataclass(frozen=True)
class RunInfo:
    """One run as recorded in the store.

    Attributes:
        id: short unique id (8 hex characters), what ``runcast runs show`` takes.
        name: human name; not necessarily unique.
        project: the project the run belongs to.
        status: ``"running"``, ``"finished"``, ``"failed"`` or ``"killed"``.
        config: the run's hyper-parameters, as logged with ``runcast.init(config=...)``.
        start_time: Unix time the run started.
        end_time: Unix time it ended (None while running).
        parent_id: the run this one was forked from (None if not a fork).
        fork_step: the first step this run has that its parent also had (None if not a fork).
        last_step: the largest step recorded for any metric (None if no point yet).
        n_points: the number of points recorded, all metrics together.
        host, pid: the machine and process that record the run (None when not known).
        heartbeat: Unix time the run's writer last wrote or said it is alive.

    Example:
        >>> info = RunInfo(id="0a1b2c3d", name="base", project="default", status="finished")
        >>> info.is_fork
        False
    """

    id: str
    name: str
    project: str
    status: Status
    config: dict[str, Any] = field(default_factory=dict)
    start_time: float = 0.0
    end_time: float | None = None
    parent_id: str | None = None
    fork_step: int | None = None
    last_step: int | None = None
    n_points: int = 0
    # who records the run: what tells a live run from a dead one (not part of its identity)
    host: str | None = field(default=None, compare=False, repr=False)
    pid: int | None = field(default=None, compare=False, repr=False)
    heartbeat: float | None = field(default=None, compare=False, repr=False)

    @property
    def is_fork(self) -> bool:
        """True when the run was forked from another one (``runcast.init(resume=...)``)."""
        return self.parent_id is not None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (None while running)."""
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass(frozen=True)
class MetricSummary:
    """A summary of one metric of one run, read without loading its points.

    Example:
        >>> MetricSummary(key="loss", n_points=3, first_step=0, last_step=2, last_value=1.5).span
        2
    """

    key: str
    n_points: int
    first_step: int
    last_step: int
    last_value: float
    n_missing: int = 0

    @property
    def span(self) -> int:
        """Steps between the first and the last point."""
        return self.last_step - self.first_step


@dataclass(frozen=True)
class RunsPage:
    """One page of a store's runs, newest first, as :meth:`SQLStore.runs_page` reads it.

    Attributes:
        runs: the runs of the page.
        total: how many runs match the filter in all (every page together).
        summaries: each run's :class:`MetricSummary` by metric key (``{}`` before its first
            point), read with the page.

    Example:
        >>> RunsPage(runs=[], total=0, summaries={}).total
        0
    """

    runs: list[RunInfo]
    total: int
    summaries: dict[str, dict[str, MetricSummary]]
