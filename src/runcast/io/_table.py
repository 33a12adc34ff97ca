"""Turning rows of a log file (CSV cells or JSON values) into one series per metric.

Shared by the CSV, JSONL and W&B readers. A cell that is empty (or a JSON null) means "not
logged at this step" and is skipped; "nan"/"inf" mean "logged, but missing" and are kept as NaN.
Every problem is an :class:`~runcast.errors.ImportFormatError` naming the file and line.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.errors import ImportFormatError, InvalidInputError, RuncastWarning
from runcast.store import Points

#: Step columns tried in order when none is named (runcast/generic, W&B, HF/Lightning, misc).
STEP_CANDIDATES = (
    "step",
    "_step",
    "global_step",
    "Step",
    "iteration",
    "iter",
    "trainer/global_step",
)
_INT64_MAX = 2**63 - 1

Columns = str | Sequence[str] | Mapping[str, str] | None


class Skip:
    """Marker: the cell is empty, the metric was not logged at this row."""


SKIP = Skip()


def last_of_each_step(step: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Indices that sort ``step`` and keep the last occurrence of each repeated step.

    Example:
        >>> last_of_each_step(np.array([5, 1, 5])).tolist()
        [1, 2]
    """
    # reverse + unique(return_index) finds the first of each in reverse = the last written
    _, idx = np.unique(step[::-1], return_index=True)
    return step.size - 1 - idx


def where(path: Path, line: int) -> str:
    """``file:line`` for error messages."""
    return f"{path}:{line}"


def parse_step(raw: Any, path: Path, line: int, column: str) -> int:
    """A cell of the step column as a non-negative int, or a clear error."""
    if isinstance(raw, bool) or raw is None or raw == "":
        raise ImportFormatError(
            f"{where(path, line)}: the step column {column!r} is empty or not a number "
            f"({raw!r}); every row needs a step."
        )
    value: float | int | None = raw if isinstance(raw, int) else None
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            value = int(raw)  # exact, where a float rounds (past 2**53, up to int64's max)
    if value is None:
        try:
            value = raw if isinstance(raw, float) else float(raw)
        except (TypeError, ValueError):
            raise ImportFormatError(
                f"{where(path, line)}: the step {raw!r} in column {column!r} is not a number."
            ) from None
        if not math.isfinite(value) or value != int(value):
            raise ImportFormatError(
                f"{where(path, line)}: the step {raw!r} in column {column!r} is not a whole "
                "number; steps are training-step counts (pass step= to use another column)."
            )
        value = int(value)
    if not 0 <= value <= _INT64_MAX:
        raise ImportFormatError(
            f"{where(path, line)}: the step {raw!r} in column {column!r} is out of range "
            f"(steps must be between 0 and {_INT64_MAX})."
        )
    return int(value)


def parse_value(raw: Any) -> float | Skip | None:
    """A cell as a float, SKIP if empty, None if not a number."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return SKIP
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, int | float):
        try:
            return float(raw)
        except OverflowError:  # an int too large for a float
            return math.inf
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            return None
    return None


@dataclass
class _Column:
    key: str
    explicit: bool
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    first_bad: tuple[int, Any] | None = None


def choose_step(header: Iterable[str], step: str | None, path: Path) -> str:
    """The step column: ``step`` if given (and present), else the first known candidate."""
    names = list(header)
    if step is not None:
        if step not in names:
            raise ImportFormatError(
                f"{path}: there is no step column {step!r}; the columns are "
                f"{', '.join(map(repr, names[:20]))}. Pass step='<column>'."
            )
        return step
    for name in STEP_CANDIDATES:
        if name in names:
            return name
    raise ImportFormatError(
        f"{path}: no step column found (looked for {', '.join(STEP_CANDIDATES)}); the columns "
        f"are {', '.join(map(repr, names[:20]))}. Pass step='<column>'."
    )


def requested_columns(columns: Columns) -> dict[str, str] | None:
    """``columns=`` as {file column: metric key}, checked: one column name is a list of one,
    and no two columns may become one metric (the second would silently replace the first).

    Example:
        >>> requested_columns("loss")
        {'loss': 'loss'}
    """
    if columns is None:
        return None
    if isinstance(columns, str):
        columns = [columns]
    pairs = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    bad = [k for k in pairs.values() if not isinstance(k, str) or not k.strip()]
    if bad:
        raise InvalidInputError(
            f"columns= (--column) gives the metric key(s) {bad}; a metric key must be a "
            "non-empty string."
        )
    keys = list(pairs.values())
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise InvalidInputError(
            f"columns= (--column) maps several file columns to the metric(s) {dupes}, so one "
            "would replace the other. Give each column its own metric key."
        )
    return pairs


def column_map(columns: Columns, available: Iterable[str], exclude: set[str]) -> dict[str, str]:
    """file column -> metric key; all other named columns (auto) when ``columns`` is None."""
    asked = requested_columns(columns)
    if asked is None:
        return {c: c for c in available if c not in exclude and c.strip()}
    return asked


class TableBuilder:
    """Accumulates rows into per-metric points, then checks and returns them."""

    def __init__(self, path: Path, step: str, wall: str | None, requested: bool) -> None:
        self.path = path
        self.step = step
        self.wall = wall
        self.columns: dict[str, _Column] = {}
        self.wall_seen = False
        # with columns named by the user, a non-number in them is an error at once
        self._requested = requested

    def add_column(self, column: str, key: str) -> None:
        """Track ``column`` of the file as metric ``key``."""
        self.columns.setdefault(column, _Column(key, self._requested))

    def add_row(self, line: int, row: Mapping[str, Any]) -> None:
        """One row: its step, wall time and each tracked column's value."""
        step = parse_step(row.get(self.step), self.path, line, self.step)
        wall = math.nan
        if self.wall is not None:
            self.wall_seen = self.wall_seen or self.wall in row
            w = parse_value(row.get(self.wall))
            wall = w if isinstance(w, float) else math.nan
        for column, col in self.columns.items():
            value = parse_value(row.get(column))
            if value is SKIP:
                continue
            if value is None:
                if col.explicit:
                    raise ImportFormatError(
                        f"{where(self.path, line)}: column {column!r} holds {row.get(column)!r}, "
                        "which is not a number. Fix the file, or leave the column out of columns=."
                    )
                if col.first_bad is None:
                    col.first_bad = (line, row.get(column))
                continue
            assert isinstance(value, float)
            col.steps.append(step)
            col.values.append(value)
            col.walls.append(wall)

    def points(self) -> dict[str, Points]:
        """Each metric's points sorted by step (the last value of a repeated step wins)."""
        if self.wall is not None and not self.wall_seen:
            raise ImportFormatError(
                f"{self.path}: there is no wall-time column {self.wall!r} in the file. Pass the "
                "name of a column of Unix times with wall=, or leave wall= out."
            )
        out: dict[str, Points] = {}
        repeated: list[str] = []
        for column, col in self.columns.items():
            if col.first_bad is not None:
                if not col.steps:
                    continue  # a text column (names, tags): not a metric
                line, raw = col.first_bad
                raise ImportFormatError(
                    f"{where(self.path, line)}: column {column!r} holds {raw!r}, which is not a "
                    "number, while other rows hold numbers. Fix the file, or choose the metric "
                    "columns with columns=[...]."
                )
            if not col.steps:
                continue
            step = np.asarray(col.steps, dtype=np.int64)
            value = np.asarray(col.values, dtype=np.float64)
            value[~np.isfinite(value)] = np.nan  # inf is recorded as missing, like the tracker
            wall = np.asarray(col.walls, dtype=np.float64)
            keep = last_of_each_step(step)
            if keep.size != step.size:
                repeated.append(col.key)
            out[col.key] = Points(step[keep], value[keep], wall[keep])
        if repeated:
            warnings.warn(
                RuncastWarning(
                    f"{self.path}: some steps appear more than once (metrics "
                    f"{', '.join(repeated[:5])}); the last row of each step was kept, as when "
                    "a run restarted from a checkpoint."
                ),
                stacklevel=3,
            )
        if not out:
            raise ImportFormatError(
                f"{self.path}: no metric with numeric values found (step column {self.step!r}). "
                "Pass columns=[...] to name the metric columns."
            )
        return out


def to_curves(points: Mapping[str, Points]) -> dict[str, Curve]:
    """Points (already sorted, unique steps) to named curves."""
    return {k: Curve(p.step, p.value, name=k) for k, p in points.items()}
