"""Curve: one metric of one run, as numpy arrays of steps and values.

Every other part of runcast speaks in curves: the store reads them, laws and forecasters consume
them, reports draw them.

Example:
    >>> import runcast
    >>> c = runcast.Curve([0, 10, 20], [3.0, 2.5, 2.2], name="loss")
    >>> len(c), float(c.value[-1])
    (3, 2.2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from runcast.errors import InvalidCurveError, InvalidInputError

if TYPE_CHECKING:
    from runcast.schedules import Schedule

ArrayLike = Sequence[float] | Sequence[int] | npt.NDArray[Any]


def _as_steps(step: ArrayLike) -> npt.NDArray[np.int64]:
    raw = np.asarray(step)
    if raw.ndim != 1:
        raise InvalidCurveError(f"Curve steps must be one-dimensional, but got shape {raw.shape}.")
    if raw.dtype.kind == "b" or raw.dtype.kind not in "iuf":
        raise InvalidCurveError(
            f"Curve steps must be integers, but got dtype {raw.dtype}. "
            "Pass the training step (optimizer update count) of each value."
        )
    if raw.dtype.kind == "f":
        bad = ~np.isfinite(raw) | (raw != np.round(raw))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidCurveError(
                f"Curve steps must be whole numbers, but step[{i}] = {float(raw[i])!r}. "
                "Pass integer training steps, not epochs or fractions."
            )
    steps = raw.astype(np.int64)
    if steps.size and steps.min() < 0:
        i = int(np.argmin(steps))
        raise InvalidCurveError(f"Curve steps cannot be negative, but step[{i}] = {steps[i]}.")
    if steps.size > 1:
        d = np.diff(steps)
        if (d <= 0).any():
            i = int(np.flatnonzero(d <= 0)[0])
            raise InvalidCurveError(
                f"Curve steps must be strictly increasing, but step[{i}] = {steps[i]} is followed "
                f"by step[{i + 1}] = {steps[i + 1]}. Sort the points and drop duplicate steps "
                "(runcast.Curve.from_unsorted does both, keeping the last value of each step)."
            )
    return steps


def _as_values(value: ArrayLike, n: int) -> npt.NDArray[np.float64]:
    raw = np.asarray(value)
    if raw.ndim != 1:
        raise InvalidCurveError(f"Curve values must be one-dimensional, but got shape {raw.shape}.")
    if raw.dtype.kind not in "iuf" or raw.dtype.kind == "b":
        try:
            raw = raw.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise InvalidCurveError(
                f"Curve values must be numbers, but got dtype {raw.dtype}: {err}."
            ) from err
    values = raw.astype(np.float64)
    if values.size != n:
        raise InvalidCurveError(
            f"Curve needs one value per step, but got {n} steps and {values.size} values."
        )
    if np.isinf(values).any():
        i = int(np.flatnonzero(np.isinf(values))[0])
        raise InvalidCurveError(
            f"Curve values must be finite or NaN (missing), but value[{i}] = {values[i]}. "
            "Replace diverged points with NaN, or cut the curve before the divergence."
        )
    return values


class Curve:
    """One metric of one run: strictly increasing integer ``step`` and float ``value``.

    NaN values mean "missing" (a logged NaN or inf is stored as missing); forecasters drop them
    with a warning. ``schedule``, when given, is the run's LR schedule, future steps included.

    Args:
        step: training steps, strictly increasing non-negative integers.
        value: one float per step; NaN marks a missing point.
        schedule: the run's :class:`runcast.Schedule`, or None.
        name: the metric's name (e.g. ``"loss"``), or None.

    Example:
        >>> c = Curve([1, 2, 3], [2.0, float("nan"), 1.5])
        >>> c.finite().step.tolist()
        [1, 3]
    """

    __slots__ = ("_step", "_value", "name", "schedule")

    def __init__(
        self,
        step: ArrayLike,
        value: ArrayLike,
        schedule: Schedule | None = None,
        name: str | None = None,
    ) -> None:
        steps = _as_steps(step)
        values = _as_values(value, steps.size)
        steps.setflags(write=False)
        values.setflags(write=False)
        self._step = steps
        self._value = values
        if schedule is not None:
            from runcast.schedules import Schedule as _Schedule

            if not isinstance(schedule, _Schedule):
                raise InvalidCurveError(
                    f"Curve schedule must be a runcast.Schedule, but got {type(schedule).__name__}."
                    " Build one with Schedule.from_spec({...}) or Schedule.from_array(lrs)."
                )
        self.schedule = schedule
        self.name = name

    @classmethod
    def from_unsorted(
        cls,
        step: ArrayLike,
        value: ArrayLike,
        schedule: Schedule | None = None,
        name: str | None = None,
    ) -> Curve:
        """Build a curve from points in any order; for repeated steps the last value wins.

        Example:
            >>> Curve.from_unsorted([3, 1, 3], [1.0, 2.0, 0.5]).value.tolist()
            [2.0, 0.5]
        """
        s = np.asarray(step)
        v = np.asarray(value, dtype=np.float64)
        if s.shape != v.shape:
            raise InvalidCurveError(
                f"Curve needs one value per step, but got {s.size} steps and {v.size} values."
            )
        # reverse, then unique keeps the first occurrence = the last logged value of each step;
        # unique returns the steps sorted, so these indices are already in step order
        _, idx = np.unique(s[::-1], return_index=True)
        keep = s.size - 1 - idx
        return cls(s[keep], v[keep], schedule=schedule, name=name)

    @property
    def step(self) -> npt.NDArray[np.int64]:
        """The steps, a read-only int64 array."""
        return self._step

    @property
    def value(self) -> npt.NDArray[np.float64]:
        """The values, a read-only float64 array (NaN = missing)."""
        return self._value

    def __len__(self) -> int:
        return int(self._step.size)

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name else ""
        if len(self) == 0:
            return f"Curve({name}empty)"
        return (
            f"Curve({name}{len(self)} points, steps {int(self._step[0])}..{int(self._step[-1])}, "
            f"last value {self._value[-1]:.6g}{', with schedule' if self.schedule else ''})"
        )

    @property
    def last_step(self) -> int:
        """The last observed step; raises on an empty curve."""
        if len(self) == 0:
            raise InvalidCurveError("The curve is empty: it has no last step.")
        return int(self._step[-1])

    @property
    def n_missing(self) -> int:
        """How many values are NaN (missing)."""
        return int(np.isnan(self._value).sum())

    def finite(self) -> Curve:
        """The curve without its missing (NaN) points."""
        ok = np.isfinite(self._value)
        if ok.all():
            return self
        return Curve(self._step[ok], self._value[ok], schedule=self.schedule, name=self.name)

    def until(self, step: int) -> Curve:
        """The points with ``step <= step`` (a run's beginning, for forecasting its rest).

        Example:
            >>> Curve([0, 5, 9], [3.0, 2.0, 1.0]).until(5).step.tolist()
            [0, 5]
        """
        try:
            at = float(step)
        except (TypeError, ValueError) as err:
            raise InvalidInputError(f"until() needs a step number, but got {step!r}.") from err
        if at != at:  # NaN: every comparison is False, and the whole curve would come back
            raise InvalidInputError("until() needs a step number, but got NaN.")
        k = int(np.searchsorted(self._step, at, side="right"))
        return Curve(self._step[:k], self._value[:k], schedule=self.schedule, name=self.name)

    def head(self, fraction: float, total: int | None = None) -> Curve:
        """The first ``fraction`` of the run, measured in steps of ``total`` (default: last step).

        Example:
            >>> Curve(list(range(10)), [1.0] * 10).head(0.5).last_step
            4
        """
        if not 0.0 < fraction <= 1.0:
            raise InvalidCurveError(f"fraction must be in (0, 1], but got {fraction=}.")
        end = self.last_step if total is None else total
        return self.until(int(np.floor(fraction * end)))

    def with_schedule(self, schedule: Schedule | None) -> Curve:
        """The same points with another schedule attached."""
        return Curve(self._step, self._value, schedule=schedule, name=self.name)

    def lr(self) -> npt.NDArray[np.float64]:
        """The learning rate at each observed step (needs a schedule).

        Example:
            >>> from runcast import Schedule
            >>> s = Schedule.from_spec({"kind": "constant", "peak": 1e-3, "total": 10})
            >>> Curve([0, 9], [2.0, 1.0], schedule=s).lr().tolist()
            [0.001, 0.001]
        """
        if self.schedule is None:
            raise InvalidCurveError(
                "This curve has no schedule; attach one with curve.with_schedule(...)."
            )
        total = self.last_step + 1
        return self.schedule.array(total)[self._step]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN values become None)."""
        return {
            "name": self.name,
            "step": self._step.tolist(),
            "value": [None if np.isnan(v) else float(v) for v in self._value],
            "schedule": None if self.schedule is None else self.schedule.to_spec(),
        }
