"""Forecasts that stay within what a metric can be: an accuracy in [0, 1], a loss above 0.

A metric's bounds are read from its name and values (:func:`infer_bounds`): an accuracy, AUC,
F1, precision, recall or R² (while it stays above 0) lies in [0, 1] (or [0, 100] when logged in
percent); a loss, an error or a squared error cannot go below 0, a perplexity below 1. A
forecast is first made as usual, on the metric's own scale, where its intervals were calibrated.
Only when its paths leave the bounds (a validation accuracy forecast up to 1.008), or the method
refuses because its median takes a positive loss below 0 (a classifier's training loss heading
to 0), is the curve forecast again on a scale that respects the bounds, and mapped back: the log
of the distance to the floor for a one-sided bound, the logit of the position within two. Both
maps are monotone, so every quantile of the forecast is the map of a quantile on that scale.

``runcast.forecast(..., bounds=(lo, hi))`` gives the bounds by hand; ``bounds=None`` turns this
off.

Example:
    >>> infer_bounds("val_acc", np.array([0.5, 0.8, 0.9]))
    Bounds(lo=0.0, hi=1.0, why='an accuracy-like metric in [0, 1]')
    >>> infer_bounds("loss", np.array([2.3, 0.4, 0.05])).lo
    0.0
    >>> infer_bounds("reward", np.array([-1.0, 3.0])) is None
    True
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from runcast._range import parse_range
from runcast.curve import Curve
from runcast.errors import FitError, InvalidInputError, RuncastWarning
from runcast.forecast._types import Forecast

FloatArray = npt.NDArray[np.float64]

_RATE = re.compile(
    r"(^|[^a-z])(acc|accuracy|auc|auroc|f1|precision|recall|iou|miou|dice|top1|top5|"
    r"top_1|top_5|exact_match|em|hit|hits|ndcg|mrr|map|r2|r_squared)([^a-z]|$)"
)
_FLOORED = re.compile(
    r"(^|[^a-z])(loss|nll|xent|ce|cross_entropy|mse|mae|rmse|error|err|bpb|bpc|bits|kl|"
    r"wer|cer|ppl|perplexity)([^a-z]|$)"
)
_PERPLEXITY = re.compile(r"(^|[^a-z])(ppl|perplexity)([^a-z]|$)")
#: how close to a bound (as a share of the observed distance to it) a value is moved before
#: the log or logit: a training accuracy of exactly 1.0 is kept, just inside the bound
_EDGE = 1e-3
#: set while a bounded forecast runs its inner forecasts (a mixture's parts): checked once
_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("runcast_bounds", default=False)


class Bounds(NamedTuple):
    """The range a metric can take (``-inf``/``inf`` for an open side) and why."""

    lo: float
    hi: float
    why: str


def infer_bounds(name: str | None, values: FloatArray) -> Bounds | None:
    """The bounds of a metric named ``name`` with these observed ``values``, or None.

    An accuracy-like name with values in [0, 1] is in [0, 1]; in [0, 100], in percent. A
    loss-like name with non-negative values is floored at 0 (a perplexity at 1). A curve with
    no name that stays positive is a loss (runcast's default) and floored at 0. Anything else,
    or values that break the rule (a "loss" that goes negative), has no bounds.

    Example: see the module docstring.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    lowered = (name or "").lower()
    lo, hi = float(v.min()), float(v.max())
    if _RATE.search(lowered):
        if lo >= 0 and hi <= 1:
            return Bounds(0.0, 1.0, "an accuracy-like metric in [0, 1]")
        if lo >= 0 and hi <= 100:
            return Bounds(0.0, 100.0, "an accuracy-like metric in percent, in [0, 100]")
        return None
    if _PERPLEXITY.search(lowered) and lo >= 1:
        return Bounds(1.0, math.inf, "a perplexity, never below 1")
    if (_FLOORED.search(lowered) or not lowered) and lo >= 0:
        return Bounds(0.0, math.inf, "a loss, never below 0")
    return None


def _as_bounds(given: Any) -> Bounds:
    lo, hi = parse_range(given)
    if math.isinf(lo) and math.isinf(hi):
        raise InvalidInputError(
            f"bounds must have at least one finite side, but got ({lo}, {hi}); use "
            "bounds=None for none."
        )
    return Bounds(lo, hi, "given")


def _inside(f: Forecast, b: Bounds) -> bool:
    return bool(f.samples.min() >= b.lo and f.samples.max() <= b.hi)


class _Scale(NamedTuple):
    """A monotone map of the bounded range onto the real line, and back."""

    name: str
    to: Callable[[FloatArray], FloatArray]
    back: Callable[[FloatArray], FloatArray]


def _scale(b: Bounds, values: FloatArray) -> _Scale:
    """log(distance to the one finite bound), or the logit of the position between two."""
    if math.isfinite(b.lo) and math.isfinite(b.hi):
        width = b.hi - b.lo
        p = (values - b.lo) / width
        inner = p[(p > 0) & (p < 1)]
        gap = float(min(inner.min(), (1 - inner).min())) if inner.size else 0.5
        eps = max(min(_EDGE * gap, 1e-4), 1e-12)

        def to(y: FloatArray) -> FloatArray:
            q = np.clip((y - b.lo) / width, eps, 1 - eps)
            return np.log(q) - np.log1p(-q)

        def back(z: FloatArray) -> FloatArray:
            return b.lo + width / (1.0 + np.exp(-z))

        return _Scale("logit", to, back)
    sign = 1.0 if math.isfinite(b.lo) else -1.0
    edge = b.lo if math.isfinite(b.lo) else b.hi
    dist = sign * (values - edge)
    positive = dist[dist > 0]
    eps = _EDGE * float(positive.min()) if positive.size else 1e-12

    def to_log(y: FloatArray) -> FloatArray:
        return np.log(np.maximum(sign * (y - edge), eps))

    def back_log(z: FloatArray) -> FloatArray:
        # exp(-800) underflows to 0.0, i.e. onto the bound a log scale never reaches: the
        # smallest positive float keeps such a far tail strictly inside
        tail = np.maximum(np.exp(np.minimum(z, 700.0)), np.finfo(np.float64).tiny)
        return np.asarray(edge + sign * tail, dtype=np.float64)

    return _Scale("log", to_log, back_log)


def _direction_of(curve: Curve, direction: Any) -> Any:
    if direction is not None:
        return direction
    from runcast.forecast._prep import detect_direction

    values = curve.finite().value
    return detect_direction(values, curve.name) if values.size else "down"


def _on_scale(
    fn: Callable[..., Forecast],
    curve: Curve,
    until: Any,
    b: Bounds,
    args: tuple[Any, ...],
    kw: dict[str, Any],
) -> Forecast:
    """The forecast of ``curve`` made on the bounds' scale and mapped back."""
    scale = _scale(b, curve.finite().value)
    moved = Curve(curve.step, scale.to(curve.value), schedule=curve.schedule, name=curve.name)
    kw = {**kw, "direction": _direction_of(curve, kw.get("direction"))}
    with warnings.catch_warnings():
        # a fallback inside (the law refusing, the PFN answering) is about the moved curve,
        # which the user never saw; the one warning that matters is said below
        warnings.simplefilter("ignore", RuncastWarning)
        inner = fn(moved, until, *args, **kw)
    info = {**inner.info, "bounds": [b.lo, b.hi], "scale": scale.name, "bounds_why": b.why}
    samples = np.clip(scale.back(inner.samples), b.lo, b.hi)
    return Forecast(inner.steps, samples, inner.direction, inner.method, info)


def with_bounds(fn: Callable[..., Forecast]) -> Callable[..., Forecast]:
    """Wrap ``runcast.forecast`` so its forecasts stay within the metric's bounds.

    Takes one more keyword, ``bounds``: ``"auto"`` (default, :func:`infer_bounds`), a
    ``(lo, hi)`` pair, or None (off).
    """

    @functools.wraps(fn)
    def forecast(curve: Any, until: Any, *args: Any, bounds: Any = "auto", **kw: Any) -> Forecast:
        if bounds is None or _ACTIVE.get() or not isinstance(curve, Curve):
            return fn(curve, until, *args, **kw)
        b = (
            infer_bounds(curve.name, curve.finite().value)
            if isinstance(bounds, str) and bounds == "auto"
            else _as_bounds(bounds)
        )
        if b is None:
            return fn(curve, until, *args, **kw)
        token = _ACTIVE.set(True)
        try:
            try:
                first = fn(curve, until, *args, **kw)
            except FitError as err:
                method = kw.get("method", args[1] if len(args) > 1 else "auto")
                # a method named by the user is the user's choice: its refusal stands
                if method != "auto" or isinstance(err, InvalidInputError) or math.isinf(b.lo):
                    raise
                # a loss heading to its floor that the method took below it: forecast how far
                # above the floor it stays, on a log scale, instead of no forecast at all
                out = _on_scale(fn, curve, until, b, args, kw)
                out.info["refused_on_own_scale"] = str(err)
                return out
            if _inside(first, b):
                return first
            try:
                out = _on_scale(fn, curve, until, b, args, kw)
            except FitError as err:
                # the method cannot follow the curve on that scale: its own paths, held inside
                # the range (a path past a bound is at it), are the better answer than none
                samples = np.clip(first.samples, b.lo, b.hi)
                info = {**first.info, "bounds": [b.lo, b.hi], "clipped": str(err)}
                return Forecast(first.steps, samples, first.direction, first.method, info)
            out.info["left_bounds_on_own_scale"] = [
                float(first.samples.min()),
                float(first.samples.max()),
            ]
            return out
        finally:
            _ACTIVE.reset(token)

    return forecast
