"""Schedule refinement from observed gradient norms (Defazio et al. 2023).

"When, Why and How Much? Adaptive Learning Rate Scheduling by Refinement" bounds the last
iterate's suboptimality for any weights ``w_t`` on the steps and shows the best step sizes are
``eta_t ∝ w_t * sum_{k>t} w_k``. With no knowledge of the problem this is linear decay; given the
gradient norms ``g_t`` observed in a previous run, the bound is smallest for ``w_t ∝ 1/g_t^2``
(SGD, l2 norms). For Adam-type optimizers the paper uses the l1 norm of the update with
``w_t ∝ 1/g_t`` (``power=1`` here). The norms are noisy, so they are median-filtered first. The
refined schedules warm up and anneal quickly at the end on their own; a linear warmup can still
be prepended.

Example:
    >>> import numpy as np
    >>> from runcast.schedules._refine import refined_lrs
    >>> lrs = refined_lrs(np.ones(5), window=1)
    >>> lrs.tolist()  # constant norms give linear decay to 0, the worst-case optimum
    [1.0, 0.75, 0.5, 0.25, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.ndimage import median_filter

from runcast.curve import Curve
from runcast.errors import ScheduleError

FloatArray = npt.NDArray[np.float64]


def window_steps(window: float, total: int) -> int:
    """The median filter's width in steps: an int is steps, a float in (0, 1) a share of total."""
    if isinstance(window, bool) or not np.isfinite(window) or window <= 0:
        raise ScheduleError(
            f"window must be a positive number of steps or a share of the run in (0, 1), "
            f"but got {window!r}."
        )
    if isinstance(window, float) and window < 1:
        return max(1, round(window * total))
    if window != round(window):
        raise ScheduleError(f"A window of {window!r} steps must be a whole number.")
    return int(window)


def refined_lrs(norms: npt.ArrayLike, window: int, power: float = 2.0) -> FloatArray:
    """The refined schedule for per-step gradient ``norms``, scaled so its largest LR is 1.

    ``eta_t = w_t * sum_{k>t} w_k`` with ``w_t = median_filter(norms)_t ** -power``; computed in
    O(T log window) with a reverse cumulative sum. An even ``window`` is widened by one step so
    the filter stays centred.

    Example:
        >>> refined_lrs([1.0, 1.0, 2.0, 2.0], window=1).round(3).tolist()
        [1.0, 0.333, 0.042, 0.0]
    """
    g = np.asarray(norms, dtype=np.float64)
    if g.ndim != 1 or g.size < 2:
        raise ScheduleError(
            f"Refinement needs a 1-D array of at least 2 gradient norms, but got shape {g.shape}."
        )
    bad = ~np.isfinite(g) | (g <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScheduleError(
            f"Gradient norms must be finite and positive, but norms[{i}] = {float(g[i])!r}. Drop "
            "skipped steps (pass a Curve of (step, norm) and runcast interpolates the gaps)."
        )
    if not np.isfinite(power) or power <= 0:
        raise ScheduleError(f"power must be positive (2 for SGD, 1 for Adam), but got {power!r}.")
    # an odd width centres the window on each step (scipy takes the upper median of even ones)
    size = int(window) | 1
    smooth = median_filter(g, size=size, mode="nearest") if size > 1 else g
    # work with weights relative to their largest so 1/g^2 cannot overflow for tiny norms
    w = (smooth.min() / smooth) ** power
    after = np.concatenate([np.cumsum(w[::-1])[::-1][1:], [0.0]])  # sum_{k>t} w_k
    eta = w * after
    return np.asarray(eta / eta.max(), dtype=np.float64)


def _per_step_norms(grad_norms: Any, total: int | None) -> FloatArray:
    if isinstance(grad_norms, Curve):
        c = grad_norms.finite()
        if len(c) < 2:
            raise ScheduleError(
                f"The gradient-norm curve has {len(c)} finite points; refinement needs at least 2."
            )
        n = total if total is not None else c.last_step + 1
        if c.last_step + 1 < n:
            raise ScheduleError(
                f"The gradient norms end at step {c.last_step} but the schedule has {n} steps; "
                "refine from a run that covers the whole schedule, or pass a shorter schedule."
            )
        return np.interp(np.arange(n, dtype=np.float64), c.step, c.value)
    g = np.asarray(grad_norms, dtype=np.float64)
    if total is not None and g.ndim == 1 and g.size != total:
        raise ScheduleError(
            f"Got {g.size} gradient norms for a schedule of {total} steps; pass one norm per "
            "step, or a Curve of (step, norm) to interpolate norms logged every few steps."
        )
    return g


def refined_schedule_lrs(
    grad_norms: Any, total: int | None, window: float, power: float, peak: float, warmup: int
) -> FloatArray:
    """Every-step LRs of :meth:`Schedule.refine` (``total``: the schedule's length, if known).

    Example:
        >>> lrs = refined_schedule_lrs(np.ones(5), 5, window=1, power=2.0, peak=0.1, warmup=0)
        >>> lrs.round(6).tolist()
        [0.1, 0.075, 0.05, 0.025, 0.0]
    """
    g = _per_step_norms(grad_norms, total)
    lrs = refined_lrs(g, window_steps(window, g.size), power)
    if not 0 <= warmup < lrs.size:
        raise ScheduleError(f"warmup must be in [0, {lrs.size}), but got {warmup=}.")
    if warmup > 0:
        # same semantics as spec warmups: linspace(0, lr at the end of warmup, warmup)
        lrs[:warmup] = np.linspace(0.0, lrs[warmup], warmup)
    # scale last, so the largest LR after the warmup is exactly the peak
    out: FloatArray = lrs * (peak / lrs.max())
    return out
