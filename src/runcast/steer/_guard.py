"""InstabilityGuard: catch loss and gradient-norm spikes, NaN/inf and forecast divergence.

Detection is a robust z-score over a sliding window of recent *good* steps: ``z = (x - median)
/ (1.4826 * MAD)``. Median and MAD ignore the spikes they are meant to catch (a mean and standard
deviation would be dragged up by the first spike and then miss the next). Gradient norms and
positive losses are scored on a log scale, since they move by factors, not by amounts: a
classifier's loss near 0 varies by factors from batch to batch, and on its own scale that
spread shrinks with the loss until an ordinary batch scores as a spike. On the log scale a spike
is also at least ``min_factor`` (3) times the window's median, and anything ``max_factor`` (50)
times it is a spike whatever the spread; a loss under ``loss_floor`` of its largest good value
is scored at that floor (measured on the corpus: bench/README.md, "The guard's false alarms and
caught spikes at its defaults"). A loss that is ever below 0 is scored on its own scale from
then on. Only upward moves count.

With ``run=``, every event is recorded in the run: a ``guard_<action>`` point of 1 at its step
(``guard_warn``, ``guard_skip``, ``guard_lower_lr``, ``guard_rollback``, ``guard_stop``) and its
reason under ``config["runcast_guard_events"]`` (the first 100).

What to do is the user's choice (``action``):

- ``"warn"``: emit a :class:`~runcast.RuncastWarning` and go on;
- ``"skip"``: tell the loop to skip this optimizer step (``decision.action == "skip"``);
- ``"lower_lr"``: multiply every param group's LR (and a scheduler's ``base_lrs``) by
  ``lr_factor``, and skip this step;
- ``"rollback"``: restore the model and optimizer state of the last good checkpoint, taken every
  ``checkpoint_every`` good steps (in memory, or on disk under ``checkpoint_dir``).

Example:
    >>> g = InstabilityGuard("skip", min_history=5)
    >>> for step in range(20):
    ...     _ = g.check(step, loss=2.0 + 0.01 * (step % 3))
    >>> d = g.check(20, loss=9.0)
    >>> d.action, d.numbers["loss_z"] > 100
    ('skip', True)
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from runcast.errors import InvalidInputError, RuncastWarning
from runcast.steer._decision import Decision

if TYPE_CHECKING:
    from runcast.forecast import Forecast

GuardAction = Literal["warn", "skip", "lower_lr", "rollback"]
_ACTIONS = ("warn", "skip", "lower_lr", "rollback")
#: the run config key holding the guard's events with their reasons
EVENTS_KEY = "runcast_guard_events"
_MAX_RECORDED = 100


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
    """:func:`robust_z` with the resolution already known (the guard keeps its window's)."""
    # values near float64's limit (1e308) overflow here to inf: z = inf is a spike, as it should
    # be, with no numpy RuntimeWarning at the user
    with np.errstate(over="ignore", invalid="ignore"):
        med = float(np.median(history))
        dev = np.abs(history - med)
        mad = float(np.median(dev))
        # found by fuzzing: a bfloat16 loss (sd 0.25%: 76% of steps at exactly 2.0, the rest
        # 2 - 1/128 or 2 + 1/64) had MAD 0, and 18 of 300 steps of plain noise were "spikes"
        # (z ~ 8000); a value one resolution step up was never let into the history after
        spread = 1.4826 * mad if mad > 0 else 1.2533 * float(np.mean(dev))
        scale = max(spread, resolution, 1e-6 * max(abs(med), 1e-12))
        z = float(np.float64(x - med) / scale)
    return z if not math.isnan(z) else math.inf


def _resolution(values: np.ndarray) -> float:
    """The smallest gap between distinct values (0 for fewer than two), e.g. 1/128 for bfloat16
    numbers near 1."""
    levels = np.unique(values)
    with np.errstate(over="ignore"):  # +-1e308 apart: an infinite gap, no warning
        return float(np.min(np.diff(levels))) if levels.size > 1 else 0.0


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
        window: how many recent good steps the median/MAD are taken over.
        z_threshold: a robust z above this is a spike.
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
        log_loss: score a positive loss on a log scale (see the module doc); False scores it
            on its own scale.
        min_factor: a spike of a gradient norm or a log-scored loss is also at least this
            many times the window's median (1 turns this off).
        max_factor: a gradient norm or a log-scored loss this many times the window's median
            is a spike whatever its z (inf turns this off).
        loss_floor: a log-scored loss below this share of the largest good loss so far is
            scored as that share: a loss at the end of learning (1e-7, or 0.0 from a float
            underflow) moves by factors that are no instability.
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
        min_factor: float = 3.0,
        max_factor: float = 50.0,
        loss_floor: float = 1e-3,
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
        if not z_threshold > 0:
            raise InvalidInputError(f"z_threshold must be > 0, but got {z_threshold=}.")
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
        self._loss: deque[float] = deque(maxlen=window)
        self._loss_raw: deque[float] = deque(maxlen=window)  # the same losses, as given
        self._log_grad: deque[float] = deque(maxlen=window)
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
        if not 1 <= min_factor <= max_factor:
            raise InvalidInputError(
                f"Need 1 <= min_factor <= max_factor, but got {min_factor=}, {max_factor=}."
            )
        self.log_loss = bool(log_loss)
        self.min_factor = float(min_factor)
        self.max_factor = float(max_factor)
        if not 0 <= loss_floor < 1:
            raise InvalidInputError(f"loss_floor must be in [0, 1), but got {loss_floor=}.")
        self.loss_floor = float(loss_floor)
        self._loss_peak = 0.0
        self.run = run

    # --- detection ----------------------------------------------------------------------------
    def _spike(self, x: float, hist: deque[float], name: str) -> float | None:
        if len(hist) < self.min_history:
            return None
        floor = max(self._resolution[name], self._gap[name])  # robust_z's, not found again
        values = np.fromiter(hist, dtype=np.float64)
        z = _z(x, values, floor)
        if not (name == "log_grad" or (name == "loss" and self.log_loss)):
            return z
        # on a log scale, x - median is log(x / median): a value fewer than min_factor times
        # the median is the run's own noise, however quiet the run was before; one max_factor
        # times it is a spike, however noisy
        with np.errstate(invalid="ignore", over="ignore"):
            up = x - float(np.median(values))
        if z > self.z_threshold and up < math.log(self.min_factor):
            return min(z, self.z_threshold)
        if z <= self.z_threshold and up >= math.log(self.max_factor):
            return math.nextafter(self.z_threshold, math.inf)
        return z

    def _remember(self, x: float, hist: deque[float], name: str) -> None:
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
            if lv is not None:
                if self.log_loss and lv < 0:
                    self._loss_to_linear()
                z = self._spike(self._loss_value(lv), self._loss, "loss")
                numbers["loss"] = lv
                if z is not None:
                    numbers["loss_z"] = z
                    if z > self.z_threshold:
                        problems.append(f"loss spike {lv:.6g} (robust z {z:.1f})")
            if gv is not None:
                lg = math.log(max(gv, 1e-30))
                z = self._spike(lg, self._log_grad, "log_grad")
                numbers["grad_norm"] = gv
                if z is not None:
                    numbers["grad_norm_z"] = z
                    if z > self.z_threshold:
                        problems.append(f"grad-norm spike {gv:.6g} (robust z of log {z:.1f})")
            if lv is not None and forecast is not None:
                diverging, upper = self._diverging(step, lv, forecast)
                if math.isfinite(upper):
                    numbers["forecast_upper"] = upper
                if diverging:
                    problems.append(
                        f"diverging: loss above the forecast's {self.divergence_level:.0%} "
                        f"interval ({upper:.6g}) for {self._above_forecast} checks"
                    )
        if problems:
            numbers["z_threshold"] = self.z_threshold
            return self._act(step, "; ".join(problems), numbers)
        if lv is not None:
            self._remember(self._loss_value(lv), self._loss, "loss")
            self._loss_raw.append(lv)
            self._loss_peak = max(self._loss_peak, lv)
        if gv is not None:
            self._remember(math.log(max(gv, 1e-30)), self._log_grad, "log_grad")
        self._good_steps += 1
        if self.model is not None and self._good_steps % self.checkpoint_every == 0:
            self.save_checkpoint(step)
        return Decision("continue", "stable", step=step, numbers=numbers)

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
        self._loss = deque(self._loss_raw, maxlen=self.window)
        self._resolution["loss"] = 0.0
        self._gap["loss"] = _resolution(np.fromiter(self._loss, dtype=np.float64))

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
            "resolution": dict(self._resolution),
            "good_steps": self._good_steps,
            "rollbacks": self.rollbacks,
            "above_forecast": self._above_forecast,
            "log_loss": self.log_loss,
            "loss_peak": self._loss_peak,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._loss = deque(state["loss"], maxlen=self.window)
        self._loss_raw = deque(state.get("loss_raw", state["loss"]), maxlen=self.window)
        self._log_grad = deque(state["log_grad"], maxlen=self.window)
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
