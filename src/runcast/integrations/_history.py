"""Reported values as a Curve, shared by the integrations (sweeps and training callbacks)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from runcast.curve import Curve


def history_curve(steps: Sequence[int], values: Sequence[float]) -> Curve:
    """The points reported, in step order, the last value of a repeated step winning (gradient
    accumulation repeats a global step); a diverged value (±inf) becomes NaN.

    A curve holds NaN for a missing point and refuses inf. A trial or a run that blew up reports
    inf, and its history still counts: a donor for the forecasts of other trials (it shows where
    such a run goes until it diverged), or the curve a stop rule reads. So the point is kept as
    missing rather than failing every later decision.

    Example:
        >>> history_curve([20, 10, 30], [0.5, 0.9, float("inf")]).value.tolist()
        [0.9, 0.5, nan]
    """
    clean = [v if math.isfinite(v) else math.nan for v in map(float, values)]
    return Curve.from_unsorted(list(steps), clean)
