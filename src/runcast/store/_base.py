"""The store interface: what the tracker, importers, CLI, reports and dashboard rely on.

Two implementations share one schema and one set of queries (``_sql.py``): SQLite for one
machine, PostgreSQL for a team or a cluster; everything above the interface works with either.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.store._types import MetricSummary, RunInfo, Status
from runcast.store._writer import Series

_S = TypeVar("_S", bound="Store")


class Points(NamedTuple):
    """The raw points of one metric: steps, values (NaN = missing) and Unix wall times."""

    step: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    wall: npt.NDArray[np.float64]


class PointSink(Protocol):
    """Where a run's points go: ``write`` one batch per metric key, atomically."""

    run_id: str

    def write(self, batch: Mapping[str, Series], heartbeat: bool = True) -> None:
        """Write all series of ``batch`` at once, or nothing."""

    def close(self) -> None:
        """Release the sink's resources."""

    def __enter__(self) -> PointSink:
        """Use as a context manager that closes the sink."""

    def __exit__(self, *exc: object) -> None:
        """Close the sink."""


class Store(abc.ABC):
    """A run store: runs (with config and status) and their metrics' points.

    Open one with :func:`runcast.open_store`; use it as a context manager to close it.
    """

    # -- runs ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def runs(self, project: str | None = None) -> list[RunInfo]:
        """All runs (of ``project``, if given), newest first."""

    @abc.abstractmethod
    def run(self, run: str) -> RunInfo:
        """One run by id, name (newest of that name) or unique id prefix."""

    @abc.abstractmethod
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
        """Record a new run and return it (its id is fresh and unique in this store)."""

    @abc.abstractmethod
    def set_status(self, run: str, status: Status, end_time: float | None = None) -> None:
        """Set a run's status (and end time, for anything but "running")."""

    @abc.abstractmethod
    def claim(self, run: str, config: Mapping[str, Any] | None = None) -> RunInfo:
        """Mark an existing run as running in this process (to resume it), adding ``config``
        keys to its config; returns the run as it was before."""

    @abc.abstractmethod
    def fork(self, run: str, fork_step: int, name: str | None = None) -> RunInfo:
        """A new run, child of ``run``, holding a copy of its points before ``fork_step``."""

    @abc.abstractmethod
    def delete(self, run: str) -> None:
        """Remove a run and all its points."""

    # -- metrics ------------------------------------------------------------------------------
    @abc.abstractmethod
    def summary(self, run: str) -> dict[str, MetricSummary]:
        """Every metric of a run with its point count and last step/value, without its points."""

    @abc.abstractmethod
    def points(
        self, run: str, key: str, since_step: int | None = None, wall: bool = True
    ) -> Points:
        """The raw points of one metric in the order they were written (``wall=False``: skip
        the wall times, which a curve does not need; ``.wall`` is then empty)."""

    @abc.abstractmethod
    def writer(self, run: str) -> PointSink:
        """A sink that appends points to ``run`` (one per writing thread)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store (idempotent)."""

    # -- derived, shared by every implementation ----------------------------------------------
    def keys(self, run: str) -> list[str]:
        """The metric keys of a run, sorted.

        Example:
            >>> import tempfile, pathlib, runcast
            >>> with runcast.open_store(pathlib.Path(tempfile.mkdtemp()) / "k.db") as store:
            ...     r = store.create_run(name="k")
            ...     with store.writer(r.id) as w:
            ...         w.write({"b": Series.of([0], [1.0]), "a": Series.of([0], [2.0])})
            ...     store.keys(r.id)
            ['a', 'b']
        """
        return sorted(self.summary(run))

    def curve(self, run: str, key: str, since_step: int | None = None) -> Curve:
        """One metric of one run as a :class:`runcast.Curve` named ``key``.

        NaN values are points recorded as missing (a logged NaN or inf). With ``since_step``,
        only the points with step > since_step (what a live view polls for). If a step was
        written twice, the last write wins.

        Example:
            >>> import tempfile, pathlib, runcast
            >>> with runcast.open_store(pathlib.Path(tempfile.mkdtemp()) / "c.db") as store:
            ...     r = store.create_run(name="c")
            ...     with store.writer(r.id) as w:
            ...         w.write({"loss": Series.of([0, 1, 2], [3.0, 2.0, 1.0])})
            ...     store.curve(r.id, "loss", since_step=0).step.tolist()
            [1, 2]
        """
        p = self.points(run, key, since_step, wall=False)
        if p.step.size > 1 and not bool(np.all(p.step[1:] > p.step[:-1])):
            return Curve.from_unsorted(p.step, p.value, name=key)
        return Curve(p.step, p.value, name=key)

    def curves(self, run: str, keys: Iterable[str] | None = None) -> dict[str, Curve]:
        """Several metrics of one run (all of them by default), by key."""
        wanted = self.keys(run) if keys is None else list(keys)
        return {k: self.curve(run, k) for k in wanted}

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
