"""Turning curves into fitting data: checks, NaN dropping, warmup cut and binning.

Laws are fitted to the loss after warmup (the laws do not model the warmup's transient) on at
most ``max_points`` points per curve: a per-step noisy curve of 100,000 points is reduced to the
means of equal-width step bins, which keeps fits fast and their residuals near-Gaussian.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from runcast.curve import Curve
from runcast.errors import InvalidCurveError, InvalidInputError, RuncastWarning, ScheduleError
from runcast.forecast.laws._areas import FloatArray, IntArray
from runcast.forecast.laws._base import schedule_lrs


@dataclass(frozen=True)
class FitCurve:
    """One curve ready to fit: binned steps and losses, and its schedule's LRs."""

    steps: IntArray
    losses: FloatArray
    lrs: FloatArray
    name: str
    planned: FloatArray  # the run's whole schedule when known (its future too), else ``lrs``

    @property
    def s1(self) -> FloatArray:
        """The forward area at each step."""
        return np.asarray(np.cumsum(self.lrs)[self.steps], dtype=np.float64)


def warmup_end(lrs: FloatArray) -> int:
    """The first step at which the LR reaches 99% of its peak (0 without warmup).

    Example:
        >>> warmup_end(np.array([0.0, 0.5, 1.0, 1.0, 0.5]))
        2
    """
    return int(np.argmax(lrs >= 0.99 * lrs.max()))


def bin_curve(steps: IntArray, values: FloatArray, max_points: int) -> tuple[IntArray, FloatArray]:
    """At most ``max_points`` points: means of values in equal-width step bins (rounded steps).

    Example:
        >>> s, v = bin_curve(np.arange(10), np.arange(10.0), 2)
        >>> s.tolist(), v.tolist()
        ([2, 7], [2.0, 7.0])
    """
    if steps.size <= max_points:
        return steps, values
    edges = np.linspace(steps[0], steps[-1] + 1, max_points + 1)
    idx = np.clip(np.searchsorted(edges, steps, side="right") - 1, 0, max_points - 1)
    count = np.bincount(idx, minlength=max_points)
    ok = count > 0
    mean_step = np.bincount(idx, steps.astype(np.float64), max_points)[ok] / count[ok]
    mean_val = np.bincount(idx, values, max_points)[ok] / count[ok]
    # a mean step is rounded to the nearest integer: the law is evaluated there
    out_steps = np.unique(np.round(mean_step).astype(np.int64))
    if out_steps.size != mean_step.size:  # rounding collided (bins < 2 steps wide): keep raw
        return steps, values
    return out_steps, mean_val


def prepare_curves(
    curves: Curve | Sequence[Curve], *, max_points: int, min_step: int | None
) -> list[FitCurve]:
    """Check and bin the curves of a fit; every problem raises with what to do."""
    if isinstance(curves, Curve):
        curves = [curves]
    if not isinstance(curves, Sequence) or not curves:
        raise InvalidInputError(
            "fit_law needs a Curve or a non-empty list of Curves, each with a schedule."
        )
    out = []
    for i, curve in enumerate(curves):
        label = curve.name or f"curve {i}" if isinstance(curve, Curve) else f"curve {i}"
        if not isinstance(curve, Curve):
            raise InvalidInputError(f"{label} is a {type(curve).__name__}, not a runcast.Curve.")
        if curve.schedule is None:
            raise ScheduleError(
                f"{label} has no schedule: a law needs the LR of every step. Attach it with "
                "curve.with_schedule(Schedule.from_spec({...})) or Schedule.from_array(lrs)."
            )
        n_nan = curve.n_missing
        if n_nan:
            warnings.warn(
                f"{label}: dropped {n_nan} missing (NaN) values before fitting.",
                RuncastWarning,
                stacklevel=3,
            )
            curve = curve.finite()
        if len(curve) == 0:
            raise InvalidCurveError(f"{label} has no finite values to fit.")
        last = curve.last_step
        sched = curve.schedule
        assert sched is not None  # checked above; finite() keeps the schedule
        total = sched.total
        if total is not None and sched.kind == "recorded" and last >= total:
            raise ScheduleError(
                f"{label} runs to step {last} but its recorded schedule has only {total} steps. "
                "Pass a schedule that covers every step of the curve."
            )
        if total is not None and last >= total:
            raise ScheduleError(
                f"{label} runs to step {last} but its schedule's total is {total}: the schedule "
                f"is shorter than the curve. Give the schedule's real total (>= {last + 1})."
            )
        lrs = schedule_lrs(sched, last)
        first = warmup_end(lrs) if min_step is None else int(min_step)
        if min_step is None:
            first = max(first, int(0.01 * last))
        keep = curve.step >= first
        keep &= np.cumsum(lrs)[curve.step] > 0
        steps, values = curve.step[keep], curve.value[keep]
        if (values <= 0).any():
            j = int(np.flatnonzero(values <= 0)[0])
            raise InvalidCurveError(
                f"{label}: loss laws need positive losses, but step {int(steps[j])} has "
                f"{float(values[j])!r}. Fit a loss (cross-entropy), not a metric that can be <= 0."
            )
        steps, values = bin_curve(steps, values, max_points)
        planned = lrs
        if total is not None and total > last + 1:
            planned = np.asarray(sched.array(total), dtype=np.float64)
        out.append(FitCurve(steps, values, lrs, label, planned))
    return out
