"""The registry of forecasting methods that ``runcast.forecast(..., method=NAME)`` dispatches to.

A method is a callable ``fn(curve, until, schedule, **options) -> Forecast`` where ``curve`` is a
finite :class:`~runcast.Curve` (NaNs already dropped), ``until`` the last step to forecast, and
``schedule`` the run's :class:`~runcast.Schedule` (covering ``until``) or None. Modules register
their methods at import; ``runcast.forecast`` imports them lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runcast.errors import InvalidInputError

MethodFn = Callable[..., Any]


@dataclass(frozen=True)
class Method:
    """A registered forecasting method and what it needs."""

    name: str
    fn: MethodFn
    needs_schedule: bool
    summary: str


METHODS: dict[str, Method] = {}


def register_method(
    name: str, *, needs_schedule: bool, summary: str
) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn`` as forecasting method ``name``."""

    def deco(fn: MethodFn) -> MethodFn:
        METHODS[name] = Method(name, fn, needs_schedule, summary)
        return fn

    return deco


def get_method(name: str) -> Method:
    """The method called ``name``; the error lists the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        known = ", ".join(sorted(METHODS)) or "none registered"
        raise InvalidInputError(
            f"Unknown forecast method {name!r}; use 'auto' or one of: {known}."
        ) from None
