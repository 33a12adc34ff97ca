"""A metric's range given by hand, ``(lo, hi)``: read once, for forecasts and the pruning rule.

Light on purpose (``math`` and the errors only): :mod:`runcast.steer` checks a range without
importing :mod:`runcast.forecast`.

Example:
    >>> check_bounds((0, 1)), check_bounds(None)
    ((0.0, 1.0), None)
"""

from __future__ import annotations

from typing import Any

from runcast.errors import InvalidInputError


def parse_range(given: Any) -> tuple[float, float]:
    """``given`` as two floats ``(lo, hi)`` with ``lo < hi`` (``-inf``/``inf`` for an open side).

    Example:
        >>> parse_range((1, 0))
        Traceback (most recent call last):
        ...
        runcast.errors.InvalidInputError: bounds must have lo < hi, but got (1.0, 0.0).
    """
    try:
        lo, hi = (float(x) for x in given)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"bounds must be (lo, hi) numbers (use -inf/inf for an open side) or None, but got "
            f"{given!r:.60}."
        ) from None
    if not lo < hi:  # also refuses NaN
        raise InvalidInputError(f"bounds must have lo < hi, but got ({lo}, {hi}).")
    return lo, hi


def check_bounds(bounds: tuple[float, float] | None) -> tuple[float, float] | None:
    """:func:`parse_range` of ``bounds``, or None for None (no range).

    Example:
        >>> check_bounds([0, 100])
        (0.0, 100.0)
    """
    return None if bounds is None else parse_range(bounds)
