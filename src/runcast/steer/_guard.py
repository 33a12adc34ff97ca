"""InstabilityGuard: catch loss and gradient-norm spikes, NaN/inf and forecast divergence.

A spike is a rise over the run's *local level* (the median of the last ``level_window`` good
steps), on a log scale, that is large in units of the run's own noise (the robust spread of the
rises over the last ``window`` good steps), past a bar that is higher while few steps were seen
(:func:`z_needed`). With both values, each is judged *given the other*: a hard batch raises both
and is no spike, while a loss x10 whose gradient norm did not move, or a gradient norm x100
whose loss did not, is. NaN/inf is always an alarm; a spike never enters the windows. The
defaults were chosen leave-one-family-out on the corpus's healthy runs with injected spikes
(bench/README.md, "The guard's false alarms and caught spikes at its defaults").

What to do is the ``action``: ``"warn"`` (a :class:`~runcast.RuncastWarning`), ``"skip"`` (skip
this optimizer step), ``"lower_lr"`` (multiply the LR, and a scheduler's ``base_lrs``, by
``lr_factor`` and skip the step) or ``"rollback"`` (restore the last good checkpoint, taken
every ``checkpoint_every`` good steps). With ``run=``, every event is recorded in the run: a
``guard_<action>`` point at its step and its reason under ``config["runcast_guard_events"]``
(the first 100).

Example:
    >>> g = InstabilityGuard("skip", min_history=5)
    >>> for step in range(20):
    ...     _ = g.check(step, loss=2.0 + 0.01 * (step % 3))
    >>> d = g.check(20, loss=20.0)
    >>> d.action, d.numbers["loss_z"] > 100, round(d.numbers["loss_factor"], 2)
    ('skip', True, 9.95)
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import ndtr, stdtrit

from runcast.errors import InvalidInputError, RuncastWarning
from runcast.steer._decision import Decision

if TYPE_CHECKING:
    from runcast.forecast import Forecast

GuardAction = Literal["warn", "skip", "lower_lr", "rollback"]
_ACTIONS = ("warn", "skip", "lower_lr", "rollback")
#: the run config key holding the guard's events with their reasons
EVENTS_KEY = "runcast_guard_events"
_MAX_RECORDED = 100
_MAD_SD = 1.4826  # MAD to a normal's standard deviation
_Q99_SD = 2.3263  # the normal's 99th percentile in standard deviations
_MAD_EFFICIENCY = 0.37  # a MAD from n values is as precise as a standard deviation from 0.37 n


def z_needed(z: float, n: int) -> float:
    """The robust z a value must pass, its scale estimated from ``n`` values, for the false-alarm
    rate of ``z`` with a known scale: the Student-t quantile at the normal's tail probability
    beyond ``z``, with the MAD's ``0.37 n`` degrees of freedom. Few values give a scale that may
    be far too small, so the bar is higher (z 6.5: 53 from 20 values, 9 from 100).

    Example:
        >>> [round(z_needed(6.5, n), 1) for n in (20, 100, 10**6)]
        [53.0, 9.0, 6.5]
    """
    # the lower tail: ndtr(z) rounds to 1 for z > 8, ndtr(-z) keeps its digits
    return float(-stdtrit(max(_MAD_EFFICIENCY * n, 1.0), ndtr(-z)))


def robust_z(x: float, history: np.ndarray, resolution: float = 0.0) -> float:
    """The robust z-score of ``x`` against ``history``: ``(x - median) / (1.4826 * MAD)``.

    A value logged at a coarse resolution (a loss in bfloat16 takes steps of 1/128 of its size)
    is known no finer than that step, so the scale is at least the smallest gap between the
    history's distinct values (or ``resolution``, the finest step seen before). When more than
    half the history is one value the MAD is 0 and says nothing of the spread: the mean
    absolute deviation (times 1.2533, the normal's sd) stands in. The scale has a floor (1e-6
    of the median's size) so a perfectly flat history does not turn the tiniest wiggle into an
    infinite z.

    Example:
        >>> round(robust_z(5.0, np.array([1.0, 2.0, 3.0])), 2)
        2.02
    """
    return _z(x, history, max(resolution, _resolution(history)))


def _z(x: float, history: np.ndarray, resolution: float) -> float:
    """:func:`robust_z` with the resolution already known."""
    # values near float64's limit (1e308) overflow here to inf: z = inf is a spike, as it should
    # be, with no numpy RuntimeWarning at the user
    with np.errstate(over="ignore", invalid="ignore"):
        med = float(np.median(history))
        dev = np.abs(history - med)
        mad = float(np.median(dev))
        # a coarse loss (bfloat16: most steps at exactly 2.0, the rest one resolution step
        # away) has MAD 0: fall back on the mean deviation, and never measure a deviation on a
        # scale finer than the values' own resolution, or plain noise reads as a spike
        spread = _MAD_SD * mad if mad > 0 else 1.2533 * float(np.mean(dev))
        scale = max(spread, resolution, 1e-6 * max(abs(med), 1e-12))
        z = float(np.float64(x - med) / scale)
    return z if not math.isnan(z) else math.inf


def _centre_scale(rises: np.ndarray, floor: float) -> tuple[float, float]:
    """The median of ``rises`` and their robust scale, wide enough for a heavy upper tail: the
    larger of 1.4826 MAD (the mean absolute deviation when the MAD is 0) and the distance from
    the median to the rises' 99th percentile over 2.326, at least ``floor``."""
    with np.errstate(over="ignore", invalid="ignore"):
        srt = np.sort(rises)
        n = srt.size
        med = float(srt[(n - 1) // 2] / 2 + srt[n // 2] / 2)  # halves first: no overflow
        dev = np.sort(np.abs(rises - med))
        mad = float(dev[(n - 1) // 2] / 2 + dev[n // 2] / 2)
        spread = _MAD_SD * mad if mad > 0 else 1.2533 * float(np.mean(dev))
        pos = 0.99 * (n - 1)  # numpy's linear quantile, on the sorted rises
        lo = int(pos)
        q99 = float(srt[lo] + (pos - lo) * (srt[min(lo + 1, n - 1)] - srt[lo]))
        tail = (q99 - med) / _Q99_SD
    scale = max(spread, tail, floor)
    return med, scale if not math.isnan(scale) else math.inf


def _level(values: Iterable[float], k: int) -> float:
    """The median of the last ``k`` values (a few: plain Python beats numpy's overhead)."""
    last = sorted(deque(values, maxlen=k))
    n = len(last)
    return last[(n - 1) // 2] / 2 + last[n // 2] / 2


def _levels_and_rises(values: np.ndarray, k: int, n_rises: int) -> tuple[float, np.ndarray]:
    """The local level now (the median of the last ``k`` values) and the last ``n_rises`` rises
    of the values over their own local level then (the median of up to ``k`` values before)."""
    n = values.size
    with np.errstate(over="ignore", invalid="ignore"):
        level = float(np.median(values[-k:]))
        first = max(1, n - n_rises)
        full = max(first, k)  # positions with a whole level window before them
        parts = [np.median(values[max(0, i - k) : i]) for i in range(first, min(full, n))]
        if full < n:
            meds = np.median(sliding_window_view(values[full - k : n - 1], k), axis=1)
            parts.extend(meds.tolist())
        rises = values[first:] - np.asarray(parts, dtype=np.float64)
    return level, rises


def _resolution(values: np.ndarray) -> float:
    """The smallest gap between distinct values (0 for fewer than two), e.g. 1/128 for bfloat16
    numbers near 1."""
    levels = np.unique(values)
    with np.errstate(over="ignore"):  # +-1e308 apart: an infinite gap, no warning
        return float(np.min(np.diff(levels))) if levels.size > 1 else 0.0


def _med(x: np.ndarray) -> float:
    """The median, by one sort (numpy's median costs ten times more on a window this small)."""
    srt = np.sort(x)
    n = srt.size
    return float(srt[(n - 1) // 2] / 2 + srt[n // 2] / 2)


def _gk_slope(a: np.ndarray, b: np.ndarray) -> float:
    """The robust slope of ``a`` on ``b``: Gnanadesikan-Kettenring's correlation of the
    MAD-standardised values, times the ratio of their scales (0 when either is flat)."""
    ma, mb = _med(a), _med(b)
    sa = _MAD_SD * _med(np.abs(a - ma))
    sb = _MAD_SD * _med(np.abs(b - mb))
    if not (sa > 0 and sb > 0 and math.isfinite(sa) and math.isfinite(sb)):
        return 0.0
    u = (a - ma) / sa
    v = (b - mb) / sb
    p = _med(np.abs((u + v) - _med(u + v))) ** 2
    q = _med(np.abs((u - v) - _med(u - v))) ** 2
    rho = (p - q) / (p + q) if p + q > 0 else 0.0
    return rho * sa / sb


def _to_float(x: Any) -> float:
    # note: for a torch tensor this is a device sync; the guard has to read the value to decide
    # before the optimizer step, so it is the price of deciding in time.
    if hasattr(x, "detach"):
        x = x.detach()
    try:
        return float(x)
    except (TypeError, ValueError, RuntimeError):
        # e.g. a per-sample loss tensor: float() of it is numpy's/torch's error, not ours
        raise InvalidInputError(
            f"The guard checks one number per step, but got {type(x).__name__} {x!r:.80}; "
            "pass the mean loss (loss.mean()) or the total gradient norm."
        ) from None


class InstabilityGuard:
    """Watch every step for instabilities and act on them.

    Args:
        action: ``"warn"``, ``"skip"``, ``"lower_lr"`` or ``"rollback"`` (see the module doc).
        window: how many recent good steps the noise (the spread of rises) is taken over.
        z_threshold: a rise more than this many robust scales above the usual is a spike
            (more while the window holds few steps: :func:`z_needed`).
        min_history: no spike is called before this many good steps (NaN/inf always is).
        model, optimizer: needed for ``"rollback"`` (and ``optimizer`` for ``"lower_lr"``).
        scheduler: a torch LR scheduler whose ``base_lrs`` ``"lower_lr"`` scales as well
            (else the scheduler would restore the old LR at its next step).
        lr_factor: the LR multiplier of ``"lower_lr"``.
        checkpoint_every: good steps between checkpoints for ``"rollback"``.
        checkpoint_dir: keep the checkpoint on disk here instead of in memory.
        max_rollbacks: after this many rollbacks the guard asks to stop the run.
        divergence_level: with a forecast, the central interval the loss must stay under.
        divergence_patience: checks in a row above that interval that count as divergence.
        log_loss: score a positive loss on a log scale; False scores it on its own scale (as
            it is from the first loss below 0 on: no factors, no coupling).
        min_factor: a spike of a gradient norm or a log-scored loss judged alone (the other
            value unknown) is also at least this many times its local level (1: off).
        max_factor: a gradient norm or a log-scored loss this many times its local level is a
            spike whatever its z (off by default: on the corpus a near-zero classifier's batch
            loss moves 1000x over its level, healthily).
        loss_floor: a log-scored loss below this share of the largest good loss so far is
            scored as that share: a loss at the end of learning (1e-7, or 0.0 from a float
            underflow) moves by factors that are no instability.
        level_window: the local level is the median of this many last good steps.
        coupled: with both a loss and a gradient norm, judge each given the other: the log
            loss is regressed on the log gradient norm over the window (a robust
            Gnanadesikan-Kettenring slope, held >= 0) and the residual scored, and the other
            way round.
            False judges each alone.
        coupled_factors: the least rise, as a factor, of the loss over what its gradient norm
            explains, and of the gradient norm over what its loss explains, that can be a
            spike.
        coupled_z: the bar for those two residuals (more while few steps were seen, as for
            ``z_threshold``); lower than a value's own, since the other explains hard batches.
        coupled_growth: a residual's scale grows by this much per unit (log) that the other
            value rose above its usual rise, up to the largest rise of it in the window: a hard
            batch raises both, by a ratio that varies.
        run: a :class:`runcast.Run` to record every event in (see the module doc).

    Example:
        >>> g = InstabilityGuard(action="skip")
        >>> g.check(0, loss=float("nan")).action
        'skip'
    """

    def __init__(
        self,
        action: GuardAction = "warn",
        *,
        window: int = 100,
        z_threshold: float = 6.0,
        min_history: int = 20,
        model: Any = None,
        optimizer: Any = None,
        scheduler: Any = None,
        lr_factor: float = 0.5,
        checkpoint_every: int = 100,
        checkpoint_dir: str | Path | None = None,
        max_rollbacks: int = 3,
        divergence_level: float = 0.98,
        divergence_patience: int = 5,
        log_loss: bool = True,
        min_factor: float = 5.0,
        max_factor: float = math.inf,
        loss_floor: float = 1e-3,
        level_window: int = 10,
        coupled: bool = True,
        coupled_factors: tuple[float, float] = (3.0, 20.0),
        coupled_z: float = 4.75,
        coupled_growth: float = 0.3,
        run: Any = None,
    ) -> None:
        if action not in _ACTIONS:
            raise InvalidInputError(
                f"action must be one of {', '.join(_ACTIONS)}, but got {action!r}."
            )
        if window < 3 or min_history < 3 or min_history > window:
            raise InvalidInputError(
                f"Need 3 <= min_history <= window, but got {min_history=}, {window=}."
            )
        if not (z_threshold > 0 and coupled_z > 0):
            raise InvalidInputError(
                f"z_threshold and coupled_z must be > 0, but got {z_threshold=}, {coupled_z=}."
            )
        if not coupled_growth >= 0:
            raise InvalidInputError(f"coupled_growth must be >= 0, but got {coupled_growth=}.")
        if not 0 < lr_factor < 1:
            raise InvalidInputError(f"lr_factor must be in (0, 1), but got {lr_factor=}.")
        if not 0 < divergence_level < 1:
            raise InvalidInputError(
                f"divergence_level is a central interval's probability in (0, 1), but got "
                f"{divergence_level=}."
            )
        if checkpoint_every < 1 or max_rollbacks < 0 or divergence_patience < 1:
            raise InvalidInputError(
                f"checkpoint_every and divergence_patience must be >= 1 and max_rollbacks >= 0, "
                f"but got {checkpoint_every=}, {divergence_patience=}, {max_rollbacks=}."
            )
        if action == "rollback" and (model is None or optimizer is None):
            raise InvalidInputError(
                "action='rollback' needs the model and the optimizer to checkpoint: "
                "InstabilityGuard('rollback', model=model, optimizer=optimizer)."
            )
        if action == "lower_lr" and optimizer is None:
            raise InvalidInputError(
                "action='lower_lr' needs the optimizer: InstabilityGuard('lower_lr', "
                "optimizer=optimizer)."
            )
        if not 1 <= min_factor <= max_factor:
            raise InvalidInputError(
                f"Need 1 <= min_factor <= max_factor, but got {min_factor=}, {max_factor=}."
            )
        if not 0 <= loss_floor < 1:
            raise InvalidInputError(f"loss_floor must be in [0, 1), but got {loss_floor=}.")
        if level_window < 1:
            raise InvalidInputError(f"level_window must be >= 1, but got {level_window=}.")
        factors = tuple(float(f) for f in coupled_factors)
        if len(factors) != 2 or not all(f >= 1 for f in factors):
            raise InvalidInputError(
                f"coupled_factors is (loss factor, gradient-norm factor), each >= 1, but got "
                f"{coupled_factors!r}."
            )
        self.action: GuardAction = action
        self.window = window
        self.z_threshold = z_threshold
        self.min_history = min_history
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.lr_factor = lr_factor
        self.checkpoint_every = checkpoint_every
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.max_rollbacks = max_rollbacks
        self.divergence_level = divergence_level
        self.divergence_patience = divergence_patience
        self.log_loss = bool(log_loss)
        self.min_factor = float(min_factor)
        self.max_factor = float(max_factor)
        self.loss_floor = float(loss_floor)
        self.level_window = int(level_window)
        self.coupled = bool(coupled)
        self.coupled_factors: tuple[float, float] = (factors[0], factors[1])
        self.coupled_z = float(coupled_z)
        self.coupled_growth = float(coupled_growth)
        span = window + self.level_window  # the values behind `window` rises and their levels
        self._loss: deque[float] = deque(maxlen=span)  # the losses as scored
        self._loss_raw: deque[float] = deque(maxlen=span)  # the same losses, as given
        self._log_grad: deque[float] = deque(maxlen=span)
        # (log loss, log grad norm) of good steps with both, the loss unfloored
        self._pairs: deque[tuple[float, float]] = deque(maxlen=span)
        # each good value's rise over its local level then, per stream ("a", "b": the pairs'),
        # and the (centre, scale) of each stream's rises, found once after a good step joins
        self._rises: dict[str, deque[float]] = {
            k: deque(maxlen=window) for k in ("loss", "log_grad", "a", "b")
        }
        self._stats: dict[str, tuple[float, ...]] = {}
        # the finest step between distinct good values seen so far, per stream: a window that
        # happens to hold one bfloat16 level only (20 steps at 2.0) still knows its resolution
        self._resolution = {"loss": 0.0, "log_grad": 0.0}
        # the smallest gap in each window as it is now, found once as a value joins it
        self._gap = {"loss": 0.0, "log_grad": 0.0}
        self._good_steps = 0
        self._above_forecast = 0
        self._checkpoint: dict[str, Any] | None = None
        self.checkpoint_step: int | None = None
        self.rollbacks = 0
        self.events: list[Decision] = []
        self._loss_peak = 0.0
        self.run = run

    # --- detection ----------------------------------------------------------------------------
    def _floor(self, name: str, level: float) -> float:
        """The least scale of a stream's rises: its logging resolution, and a hair of its size
        (a perfectly flat history must not turn the tiniest wiggle into an infinite z)."""
        res = max(self._resolution[name], self._gap[name])
        logged = name == "log_grad" or self.log_loss
        return max(res, 1e-6 if logged else 1e-6 * max(abs(level), 1e-12))

    def _spike(self, x: float, hist: deque[float], name: str) -> tuple[float, float, float] | None:
        """(z, rise over the local level, the z it must pass) of ``x``, or None while the
        history is short."""
        rises = self._rises[name]
        if len(hist) < self.min_history or len(rises) < 2:
            return None
        level = _level(hist, self.level_window)
        if name not in self._stats:
            arr = np.fromiter(rises, dtype=np.float64)
            centre, scale = _centre_scale(arr, self._floor(name, level))
            self._stats[name] = (centre, scale, z_needed(self.z_threshold, arr.size))
        centre, scale, need = self._stats[name]
        with np.errstate(over="ignore", invalid="ignore"):
            rise = float(np.float64(x) - level)
            z = float(np.float64(rise - centre) / scale)
        if not (math.isfinite(centre) and math.isfinite(scale)):
            # a history spanning the whole float range (+-1e308) has an infinite spread: no
            # finite rise is a spike against it
            z = 0.0 if math.isfinite(rise) else math.inf
        return (z if not math.isnan(z) else math.inf), rise, need

    def _is_spike(self, z: float, rise: float, need: float, logged: bool) -> bool:
        if not logged:
            return z > need
        # on a log scale a rise is log(x / level): fewer than min_factor times the level is the
        # run's own noise, however quiet the run was before; max_factor times it is a spike
        if rise >= math.log(self.max_factor):
            return True
        return z > need and rise >= math.log(self.min_factor)

    def _coupled(self, la: float, lb: float) -> dict[str, float]:
        """The z and factor of the log loss ``la`` given the log gradient norm ``lb`` and of
        ``lb`` given ``la``, against the window's pairs (empty while it is short)."""
        ra, rb = self._rises["a"], self._rises["b"]
        if not (self.coupled and self.log_loss) or len(self._pairs) < self.min_history:
            return {}
        if len(ra) < 2:
            return {}
        if "pairs" not in self._stats:
            a = np.fromiter(ra, dtype=np.float64)
            b = np.fromiter(rb, dtype=np.float64)
            stats: list[float] = []
            for own, other, floor in (
                (a, b, self._resolution["loss"]),
                (b, a, self._resolution["log_grad"]),
            ):
                with np.errstate(over="ignore", invalid="ignore"):
                    # a rise of the other value never makes a spike more likely: a negative
                    # slope is noise (a loss stuck flat gave -12 and a false alarm), so 0
                    beta = max(_gk_slope(own, other), 0.0)
                    centre, scale = _centre_scale(own - beta * other, max(floor, 1e-6))
                    stats += [beta, centre, scale, _med(other), float(np.max(other))]
            self._stats["pairs"] = (*stats, z_needed(self.coupled_z, len(ra)))
        b_ab, c_ab, s_ab, m_b, top_b, b_ba, c_ba, s_ba, m_a, top_a, need = self._stats["pairs"]
        last = list(self._pairs)[-self.level_window :]
        xa = la - _level((p[0] for p in last), self.level_window)
        xb = lb - _level((p[1] for p in last), self.level_window)
        # the residual's scale grows with how far the other value rose above its usual rise (a
        # hard batch's loss/gradient ratio varies; a fall adds no doubt), but only as far as the
        # window saw it rise: a rise of the other beyond any seen is no evidence of a hard batch
        ga = self.coupled_growth * min(max(xb - m_b, 0.0), max(top_b - m_b, 0.0))
        gb = self.coupled_growth * min(max(xa - m_a, 0.0), max(top_a - m_a, 0.0))
        out: dict[str, float] = {}
        for key, rise, scale in (
            ("loss_given_grad", xa - b_ab * xb - c_ab, math.hypot(s_ab, ga)),
            ("grad_given_loss", xb - b_ba * xa - c_ba, math.hypot(s_ba, gb)),
        ):
            out[f"{key}_z"] = rise / scale if math.isfinite(rise) else math.inf
            out[f"{key}_factor"] = math.exp(min(rise, 700.0))
        out["coupled_z_needed"] = need
        return out

    def _remember(self, x: float, hist: deque[float], name: str) -> None:
        if hist:
            self._rises[name].append(x - _level(hist, self.level_window))
        self._stats.pop(name, None)
        hist.append(x)
        gap = self._gap[name] = _resolution(np.fromiter(hist, dtype=np.float64))
        if gap > 0:
            old = self._resolution[name]
            self._resolution[name] = gap if old == 0 else min(old, gap)

    def _diverging(self, step: int, loss: float, forecast: Forecast) -> tuple[bool, float]:
        steps = forecast.steps
        if step < steps[0] or step > steps[-1]:
            return False, math.nan
        _, hi = forecast.interval(self.divergence_level)
        upper = float(np.interp(step, steps, hi))
        self._above_forecast = self._above_forecast + 1 if loss > upper else 0
        return self._above_forecast >= self.divergence_patience, upper

    def check(
        self,
        step: int,
        *,
        loss: Any = None,
        grad_norm: Any = None,
        forecast: Forecast | None = None,
    ) -> Decision:
        """Check one step's loss and gradient norm (floats or 0-d tensors); act if unstable.

        Call it after ``backward()`` and before ``optimizer.step()``; when the decision's action
        is ``"skip"``, ``"lower_lr"`` or ``"rollback"``, skip this step's ``optimizer.step()``.
        The decision's numbers hold each score: ``loss_z`` and ``loss_factor`` (the loss over
        its local level), ``grad_norm_z`` and ``grad_norm_factor``, and with both values
        ``loss_given_grad_z``/``_factor`` and ``grad_given_loss_z``/``_factor``.

        Args:
            step: the training step.
            loss: this step's training loss.
            grad_norm: this step's gradient norm (before clipping).
            forecast: the loss forecast made earlier; the loss staying above its
                ``divergence_level`` interval for ``divergence_patience`` checks is divergence.
        """
        lv = _to_float(loss) if loss is not None else None
        gv = _to_float(grad_norm) if grad_norm is not None else None
        numbers: dict[str, float] = {}
        problems: list[str] = []
        for name, v in (("loss", lv), ("grad_norm", gv)):
            if v is not None and not math.isfinite(v):
                problems.append(f"{name} is {v}")
                numbers[name] = v
        if gv is not None and math.isfinite(gv) and gv < 0:
            # a norm is never negative: this is not the gradient norm (it was read as 1e-30, a
            # "perfectly stable" step, before fuzzing found it)
            problems.append(f"grad_norm is {gv}, but a norm is >= 0: pass the gradient's norm")
            numbers["grad_norm"] = gv
        if not problems:
            problems = self._score(step, lv, gv, forecast, numbers)
        if problems:
            numbers["z_threshold"] = self.z_threshold
            return self._act(step, "; ".join(problems), numbers)
        if lv is not None:
            self._remember(self._loss_value(lv), self._loss, "loss")
            self._loss_raw.append(lv)
            self._loss_peak = max(self._loss_peak, lv)
        if gv is not None:
            self._remember(math.log(max(gv, 1e-30)), self._log_grad, "log_grad")
        if lv is not None and gv is not None and lv > 0 and gv > 0 and self.log_loss:
            pair = (math.log(lv), math.log(gv))
            if self._pairs:
                last = list(self._pairs)[-self.level_window :]
                for i, key in enumerate(("a", "b")):
                    level = _level((p[i] for p in last), self.level_window)
                    self._rises[key].append(pair[i] - level)
            self._stats.pop("pairs", None)
            self._pairs.append(pair)
        self._good_steps += 1
        if self.model is not None and self._good_steps % self.checkpoint_every == 0:
            self.save_checkpoint(step)
        return Decision("continue", "stable", step=step, numbers=numbers)

    def _score(
        self,
        step: int,
        lv: float | None,
        gv: float | None,
        forecast: Forecast | None,
        numbers: dict[str, float],
    ) -> list[str]:
        """Score finite values into ``numbers``; the spikes found, as reasons.

        With both values, each is judged given the other only: a loss that rises with its
        gradient norm is a hard batch (on the corpus, near-zero classifiers' batch losses jump
        100x with their gradient norms, healthily), and so is the gradient norm's rise."""
        problems: list[str] = []
        if lv is not None and self.log_loss and lv < 0:
            self._loss_to_linear()
        given: dict[str, float] = {}
        if lv is not None and gv is not None and lv > 0 and gv > 0:
            given = self._coupled(math.log(lv), math.log(gv))
        for name, v in (("loss", lv), ("grad_norm", gv)):
            if v is None:
                continue
            numbers[name] = v
            logged = name == "grad_norm" or self.log_loss
            if name == "loss":
                scored = self._spike(self._loss_value(v), self._loss, "loss")
            else:
                scored = self._spike(math.log(max(v, 1e-30)), self._log_grad, "log_grad")
            if scored is None:
                continue
            z, rise, need = scored
            numbers[f"{name}_z"] = z
            if logged:
                numbers[f"{name}_factor"] = math.exp(min(rise, 700.0))
            # alone only while the other value is unknown; max_factor acts either way
            if self._is_spike(z, rise, need if not given else math.inf, logged):
                what = "loss spike" if name == "loss" else "grad-norm spike"
                problems.append(f"{what} {v:.6g} ({self._why(z, rise, need, logged)})")
        if given:
            numbers.update(given)
            need = given["coupled_z_needed"]
            for key, what, value, factor in (
                ("loss_given_grad", "loss spike", lv, self.coupled_factors[0]),
                ("grad_given_loss", "grad-norm spike", gv, self.coupled_factors[1]),
            ):
                z = given[f"{key}_z"]
                f = given[f"{key}_factor"]
                taken = what in " ".join(problems)  # already called (max_factor)
                if z > need and f >= factor and not taken:
                    other = "gradient norm" if key == "loss_given_grad" else "loss"
                    problems.append(
                        f"{what} {value:.6g} ({f:.3g}x what its {other} explains, robust z "
                        f"{z:.1f} > {need:.1f})"
                    )
        if lv is not None and forecast is not None:
            diverging, upper = self._diverging(step, lv, forecast)
            if math.isfinite(upper):
                numbers["forecast_upper"] = upper
            if diverging:
                problems.append(
                    f"diverging: loss above the forecast's {self.divergence_level:.0%} "
                    f"interval ({upper:.6g}) for {self._above_forecast} checks"
                )
        return problems

    @staticmethod
    def _why(z: float, rise: float, need: float, logged: bool) -> str:
        bar = f"robust z {z:.1f} > {need:.1f}" if math.isfinite(need) else f"robust z {z:.1f}"
        if not logged:
            return bar
        return f"{math.exp(min(rise, 700.0)):.3g}x its level, {bar}"

    def _loss_value(self, loss: float) -> float:
        """The loss as the window holds it: while no loss was negative, the log of the loss or
        of ``loss_floor`` times the largest good loss, whichever is larger."""
        if not self.log_loss:
            return loss
        return math.log(max(loss, self.loss_floor * self._loss_peak, 1e-300))

    def _loss_to_linear(self) -> None:
        """A loss of 0 or below has no log: from now on the window holds losses as they are."""
        self.log_loss = False
        # the losses as given, not exp(log(x)): a round trip is off in the last bits, and a
        # window of identical values would turn that into a spread
        self._loss = deque(self._loss_raw, maxlen=self._loss.maxlen)
        self._resolution["loss"] = 0.0
        self._gap["loss"] = _resolution(np.fromiter(self._loss, dtype=np.float64))
        self._pairs.clear()
        self._rebuild_rises()

    def _rebuild_rises(self) -> None:
        """Every stream's rises found again from its values (after a resume or a change of
        scale)."""
        k = self.level_window
        streams = {
            "loss": list(self._loss),
            "log_grad": list(self._log_grad),
            "a": [p[0] for p in self._pairs],
            "b": [p[1] for p in self._pairs],
        }
        for name, values in streams.items():
            arr = np.asarray(values, dtype=np.float64)
            rises = _levels_and_rises(arr, k, self.window)[1].tolist() if arr.size > 1 else []
            self._rises[name] = deque(rises, maxlen=self.window)
        self._stats = {}

    def _record(self, d: Decision) -> None:
        """The event as a run point at its step, and its reason in the run's config."""
        if self.run is None:
            return
        self.run.log({f"guard_{d.action}": 1.0}, step=d.step)
        if len(self.events) <= _MAX_RECORDED:
            from runcast.integrations._plan import config_update

            event = {"step": d.step, "action": d.action, "reason": d.reason}
            events = [*self.run.config.get(EVENTS_KEY, []), event]
            config_update(self.run, {EVENTS_KEY: events})

    # --- actions ------------------------------------------------------------------------------
    def _act(self, step: int, what: str, numbers: dict[str, float]) -> Decision:
        if self.action == "warn":
            d = Decision("warn", what, step=step, numbers=numbers)
            warnings.warn(f"runcast InstabilityGuard at step {step}: {what}", RuncastWarning, 2)
        elif self.action == "skip":
            d = Decision("skip", f"{what}; skip this step", step=step, numbers=numbers)
        elif self.action == "lower_lr":
            lrs = self.lower_lr()
            numbers["lr_factor"] = self.lr_factor
            numbers["new_lr"] = lrs[0] if lrs else math.nan
            d = Decision(
                "lower_lr",
                f"{what}; LR x{self.lr_factor:g} (now {numbers['new_lr']:.3g}); skip this step",
                step=step,
                numbers=numbers,
            )
        elif self._checkpoint is None and self.checkpoint_step is None:
            d = Decision(
                "skip",
                f"{what}; no good checkpoint yet to roll back to, skip this step",
                step=step,
                numbers=numbers,
            )
        elif self.rollbacks >= self.max_rollbacks:
            d = Decision(
                "stop",
                f"{what}; already rolled back {self.rollbacks} time(s) (max_rollbacks="
                f"{self.max_rollbacks}): stop the run and look at it",
                step=step,
                numbers=numbers,
            )
        else:
            to = self.restore_checkpoint()
            numbers["rollback_to_step"] = float(to)
            d = Decision(
                "rollback",
                f"{what}; rolled back to the checkpoint of step {to}",
                step=step,
                numbers=numbers,
            )
        self.events.append(d)
        self._record(d)
        return d

    def lower_lr(self) -> list[float]:
        """Multiply every param group's LR (and the scheduler's base LRs) by ``lr_factor``."""
        out: list[float] = []
        for group in self.optimizer.param_groups:
            group["lr"] = group["lr"] * self.lr_factor
            if "initial_lr" in group:
                group["initial_lr"] = group["initial_lr"] * self.lr_factor
            out.append(float(group["lr"]))
        if self.scheduler is not None and hasattr(self.scheduler, "base_lrs"):
            self.scheduler.base_lrs = [lr * self.lr_factor for lr in self.scheduler.base_lrs]
        return out

    def save_checkpoint(self, step: int) -> None:
        """Keep the model and optimizer state of this (good) step to roll back to.

        The model state is cloned on its device (no host copy, no sync); the optimizer state is
        deep-copied. Schedule-free optimizers need nothing special: their train/eval flag lives
        in the param groups, so it is saved and restored with the weights it belongs to.
        """
        import torch

        state = {
            "step": step,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }
        if self.checkpoint_dir is not None:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            # write then rename: a crash mid-write never leaves a torn "last good" checkpoint
            tmp = self.checkpoint_dir / "runcast_guard_last_good.pt.tmp"
            torch.save(state, tmp)
            tmp.replace(self.checkpoint_dir / "runcast_guard_last_good.pt")
            self._checkpoint = None
        else:
            self._checkpoint = state
        self.checkpoint_step = step

    def restore_checkpoint(self) -> int:
        """Load the last good checkpoint into the model and optimizer; return its step."""
        import torch

        if self._checkpoint is not None:
            state = self._checkpoint
        elif self.checkpoint_dir is not None and self.checkpoint_step is not None:
            state = torch.load(
                self.checkpoint_dir / "runcast_guard_last_good.pt", weights_only=False
            )
        else:
            raise InvalidInputError("No checkpoint to restore: none was saved yet.")
        self.model.load_state_dict(state["model"])
        # load a copy: the kept checkpoint must survive the training steps that follow
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.rollbacks += 1
        self._above_forecast = 0
        return int(state["step"])

    # --- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The detector's windows and counters (not the checkpoint), for exact resume."""
        return {
            "loss": list(self._loss),
            "loss_raw": list(self._loss_raw),
            "log_grad": list(self._log_grad),
            "pairs": [list(p) for p in self._pairs],
            "resolution": dict(self._resolution),
            "good_steps": self._good_steps,
            "rollbacks": self.rollbacks,
            "above_forecast": self._above_forecast,
            "log_loss": self.log_loss,
            "loss_peak": self._loss_peak,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (also one saved by an earlier runcast)."""
        span = self.window + self.level_window
        self._loss = deque(state["loss"], maxlen=span)
        self._loss_raw = deque(state.get("loss_raw", state["loss"]), maxlen=span)
        self._log_grad = deque(state["log_grad"], maxlen=span)
        # a state saved before the pairs were kept has none: they are learnt again
        self._pairs = deque(((p[0], p[1]) for p in state.get("pairs", [])), maxlen=span)
        # a state saved before the resolution was kept has none: it is learnt again
        self._resolution = {"loss": 0.0, "log_grad": 0.0, **state.get("resolution", {})}
        self._gap = {
            name: _resolution(np.fromiter(hist, dtype=np.float64))
            for name, hist in (("loss", self._loss), ("log_grad", self._log_grad))
        }
        self._good_steps = int(state["good_steps"])
        self.rollbacks = int(state["rollbacks"])
        self._above_forecast = int(state["above_forecast"])
        # a state saved before losses were scored in log holds them as they are
        self.log_loss = bool(state.get("log_loss", False))
        self._loss_peak = float(state.get("loss_peak", max(self._loss_raw, default=0.0)))
        self._rebuild_rises()
