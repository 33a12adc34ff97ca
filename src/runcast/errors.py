"""runcast's one exception hierarchy.

Every error runcast raises on purpose is a :class:`RuncastError`. Subclasses also derive from the
matching built-in (``ValueError``, ``KeyError``, ``ImportError``) so that ``except ValueError``
code written against plain Python keeps working. Messages name the value that was wrong and say
how to fix it.

Example:
    >>> import runcast
    >>> try:
    ...     runcast.Curve([0, 0], [1.0, 2.0])
    ... except runcast.RuncastError as err:
    ...     print(type(err).__name__)
    InvalidCurveError
"""

from __future__ import annotations


class RuncastError(Exception):
    """Base class of every error runcast raises on purpose."""


class InvalidInputError(RuncastError, ValueError):
    """An argument or a piece of data is not what runcast can use."""


class InvalidCurveError(InvalidInputError):
    """A curve's steps or values are malformed (order, type, length, non-finite)."""


class ScheduleError(InvalidInputError):
    """A schedule spec or a recorded LR array is malformed, or too short for its use."""


class StoreError(RuncastError):
    """The run store cannot be opened, read or written."""


class NotAStoreError(StoreError):
    """The file exists but is not a runcast store."""


class SchemaVersionError(StoreError):
    """The store was written by a newer runcast than this one."""


class RunNotFoundError(StoreError, KeyError):
    """No run with the given id (or name) is in the store."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class MetricNotFoundError(StoreError, KeyError):
    """The run has no metric with the given key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ImportFormatError(InvalidInputError):
    """A file being imported is malformed; the message gives the file and line."""


class FitError(RuncastError):
    """A law or a forecaster could not be fitted (too few points, no convergence)."""


class NotEnoughDataError(FitError, InvalidInputError):
    """Too few usable points to fit; the message says how many are needed."""


class MissingDependencyError(RuncastError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class RuncastWarning(UserWarning):
    """Base class of runcast's warnings (dropped NaNs, forks, poor fits)."""


__all__ = [
    "FitError",
    "ImportFormatError",
    "InvalidCurveError",
    "InvalidInputError",
    "MetricNotFoundError",
    "MissingDependencyError",
    "NotAStoreError",
    "NotEnoughDataError",
    "RunNotFoundError",
    "RuncastError",
    "RuncastWarning",
    "ScheduleError",
    "SchemaVersionError",
    "StoreError",
]
