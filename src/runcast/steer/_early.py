"""Early stopping that pays: stop a run whose validation metric has turned, or whose budget left
will not pay, and remember the step with the best validation value (the weights to keep).

Two reasons to stop, checked at every evaluation:

- **turned** (overfitting): since the best evaluation, the validation metric has risen, judged
  against its own noise so one bad evaluation never stops a run: the median of the last
  ``window`` evaluations is more than ``z`` noise units worse than the best, the least-squares
  slope of the evaluations since the best is worse by more than ``trend_z`` standard errors, and
  the training loss has not risen meanwhile (a rising training loss is an instability, not
  overfitting). The noise is the robust spread of the evaluations' second differences
  (``1.4826 * MAD / sqrt(6)``), which a smooth trend does not inflate.
- **not worth it**: a :class:`~runcast.steer.StopRule` says the forecast gain over the rest of
  the budget is below its tolerance (a loss law cannot turn upward, so this never catches
  overfitting; the turn test does).

Whoever stops restores the weights of :attr:`EarlyStopper.best_step`. The defaults were chosen
leave-one-family-out on the corpus of real runs; see bench/README.md, "Early stopping that
pays". Without a validation set, :class:`~runcast.steer.TrainingPlateau` stops from the training
dynamics alone.

Example:
    >>> es = EarlyStopper(window=3, z=1.0, trend_z=1.0)
    >>> vals = [1.0, 0.6, 0.5, 0.45, 0.44, 0.46, 0.50, 0.55, 0.61]
    >>> [es.evaluate(10 * i, v, train_loss=1.0 - 0.1 * i).action for i, v in enumerate(vals)][-1]
    'stop'
    >>> es.best_step, es.best_value
    (40, 0.44)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from runcast.errors import InvalidInputError
from runcast.steer._decision import Decision

if TYPE_CHECKING:
    from runcast.schedules import Schedule
    from runcast.steer._dynamics import TrainingPlateau
    from runcast.steer._stop import StopRule

_NOISE_EVALS = 30  # evaluations (the latest) the noise is read from


def eval_noise(values: np.ndarray) -> float:
    """The noise of an evaluation series: ``1.4826 * MAD(second differences) / sqrt(6)``.

    A second difference of white noise has variance ``6 sigma^2``; a straight trend adds nothing
    and a gentle curve little, so a falling loss does not pass for noise.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> round(eval_noise(np.linspace(2, 1, 400) + rng.normal(0, 0.01, 400)), 3)
        0.01
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 4:
        return math.nan
    d2 = np.diff(v, 2)
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / math.sqrt(6.0))


def _finite_median(x: np.ndarray) -> float:
    f = x[np.isfinite(x)]
    return float(np.median(f)) if f.size else math.nan


class EarlyStopper:
    """Decide at each evaluation whether to stop, and track the best validation step.

    Args:
        mode: ``"min"`` for a loss, ``"max"`` for an accuracy.
        window: recent evaluations whose median must be worse than the best (and the fewest
            evaluations since the best before the turn test may stop).
        z: how many noise units worse than the best that median must be.
        trend_z: how many standard errors the slope since the best must be worse by.
        min_rise: and by at least this fraction of the best value.
        min_evals: never stop before this many evaluations.
        stop_rule: also stop when this forecast rule says the rest is not worth it (needs
            ``until``); None: the turn test only.
        until: the last step of the run's budget (for ``stop_rule``).
        schedule: the run's LR schedule (lets the forecast see a coming cooldown).
        forecast_every: ask ``stop_rule`` every this many evaluations (a forecast costs tens
            of milliseconds).
        dynamics: a :class:`TrainingPlateau` fed by :meth:`observe_train` (stops without a
            validation set).

    ``decisions`` keeps every decision that stopped the run (reason and numbers). Pass the
    training loss either per step (:meth:`observe_train`) or summarised per evaluation
    (``evaluate(..., train_loss=...)``); without it the turn test reads validation only.
    State is explicit (``state_dict``/``load_state_dict``) so a resumed run continues exactly.

    Example:
        >>> es = EarlyStopper(window=2, z=0.5, trend_z=0.5, min_evals=3)
        >>> for i, v in enumerate([3.0, 2.0, 1.5, 1.6, 1.9]):
        ...     d = es.evaluate(i, v)
        >>> d.action, es.best_step, round(d.numbers["rise"], 2)
        ('stop', 2, 0.25)
    """

    def __init__(
        self,
        *,
        mode: Literal["min", "max"] = "min",
        window: int = 5,
        z: float = 3.0,
        trend_z: float = 1.0,
        min_rise: float = 0.0,
        min_evals: int = 8,
        stop_rule: StopRule | None = None,
        until: int | None = None,
        schedule: Schedule | None = None,
        forecast_every: int = 1,
        dynamics: TrainingPlateau | None = None,
    ) -> None:
        if mode not in ("min", "max"):
            raise InvalidInputError(f"mode must be 'min' or 'max', but got {mode!r}.")
        if window < 2 or min_evals < 1 or forecast_every < 1:
            raise InvalidInputError(
                f"need window >= 2, min_evals >= 1 and forecast_every >= 1, but got "
                f"{window=}, {min_evals=}, {forecast_every=}."
            )
        for name, val in (("z", z), ("trend_z", trend_z), ("min_rise", min_rise)):
            if not (math.isfinite(val) and val >= 0):
                raise InvalidInputError(f"{name} must be a finite number >= 0, but got {val}.")
        if stop_rule is not None and until is None:
            raise InvalidInputError(
                "a stop_rule forecasts to the end of the budget: pass until=<the run's last "
                "step> (e.g. max_steps - 1), or stop_rule=None."
            )
        self.mode = mode
        self.window, self.z, self.trend_z, self.min_rise = window, z, trend_z, min_rise
        self.min_evals = min_evals
        self.stop_rule, self.until, self.schedule = stop_rule, until, schedule
        self.forecast_every = forecast_every
        self.dynamics = dynamics
        self.steps: list[int] = []
        self.values: list[float] = []
        self.train: list[float] = []  # training loss per evaluation interval (NaN: none given)
        self._pending: list[float] = []  # per-step training losses since the last evaluation
        self.best_value: float | None = None
        self.best_step: int | None = None
        self._best_index = -1
        self.decisions: list[Decision] = []

    @property
    def stopped(self) -> bool:
        """Whether a decision has asked to stop."""
        return bool(self.decisions)

    def _sign(self) -> float:
        return 1.0 if self.mode == "min" else -1.0  # worse = sign * (value - best) > 0

    def observe_train(self, step: int, loss: float) -> Decision:
        """Record one step's training loss (a Python float: convert once, off the GPU, in your
        logging path); returns the :class:`TrainingPlateau`'s decision when one is set."""
        self._pending.append(float(loss))
        if self.dynamics is None:
            return Decision("continue", "no training-dynamics rule", step=step)
        d = self.dynamics.update(step, loss)
        if d:
            self.decisions.append(d)
        return d

    def evaluate(self, step: int, value: float, *, train_loss: float | None = None) -> Decision:
        """Record the validation ``value`` at ``step`` and decide.

        Args:
            train_loss: the training loss over the steps since the last evaluation (default:
                the median of what :meth:`observe_train` recorded).
        """
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"EarlyStopper.evaluate takes a number, but got {value!r} at step {step}."
            ) from None
        if train_loss is None:
            train_loss = float(np.median(self._pending)) if self._pending else math.nan
        self._pending = []
        self.steps.append(int(step))
        self.values.append(value)
        self.train.append(float(train_loss))
        sign = self._sign()
        if math.isfinite(value) and (
            self.best_value is None or sign * (value - self.best_value) < 0
        ):
            self.best_value, self.best_step = value, int(step)
            self._best_index = len(self.values) - 1
        d = self._turned(step)
        if not d and self.stop_rule is not None and len(self.values) % self.forecast_every == 0:
            d = self._not_worth_it(step)
        if d:
            self.decisions.append(d)
        return d

    def _turned(self, step: int) -> Decision:
        n = len(self.values)
        since = n - 1 - self._best_index
        if self.best_value is None or n < self.min_evals or since < self.window:
            return Decision(
                "continue",
                f"{since} evaluation(s) since the best; the turn test needs {self.window}",
                step=step,
            )
        v = np.asarray(self.values)
        sign, best = self._sign(), self.best_value
        sigma = eval_noise(v[-_NOISE_EVALS:])
        after = v[self._best_index + 1 :][-3 * self.window :]
        # NaN evaluations are no evidence of a turn (runcast.steer.InstabilityGuard's job)
        after = after[np.isfinite(after)]
        if after.size < self.window:
            return Decision("continue", "too few finite evaluations since the best", step=step)
        rise = sign * (float(np.median(after[-self.window :])) - best)
        x = np.arange(after.size, dtype=np.float64)
        sxx = float(np.sum((x - x.mean()) ** 2))
        slope = sign * float(np.sum((x - x.mean()) * (after - after.mean())) / sxx)
        t = slope * math.sqrt(sxx) / sigma if sigma > 0 else math.copysign(math.inf, slope)
        tr = np.asarray(self.train)
        tr_best = tr[max(0, self._best_index - self.window + 1) : self._best_index + 1]
        train_now, train_then = _finite_median(tr[-self.window :]), _finite_median(tr_best)
        train_rising = bool(train_now > train_then)  # False when either is NaN (no train loss)
        numbers = {
            "best": best,
            "best_step": float(self.best_step or 0),
            "evals_since_best": float(since),
            "rise": rise,
            "noise": sigma,
            "rise_needed": max(self.z * sigma, self.min_rise * abs(best)),
            "trend_t": t,
            "trend_z": self.trend_z,
            "train_then": float(train_then),
            "train_now": float(train_now),
        }
        what = (
            f"median of the last {self.window} evaluations {rise:+.4g} from the best {best:.6g} "
            f"(step {self.best_step}; noise {sigma:.3g}), trend t={t:.2f}"
        )
        if rise > numbers["rise_needed"] and t > self.trend_z and not train_rising:
            kind = "training loss flat or falling" if np.isfinite(train_now) else "no train loss"
            return Decision(
                "stop", f"validation turned: {what}; {kind}", step=step, numbers=numbers
            )
        return Decision("continue", f"not turned: {what}", step=step, numbers=numbers)

    def _not_worth_it(self, step: int) -> Decision:
        from runcast.curve import Curve

        assert self.stop_rule is not None and self.until is not None  # checked in __init__
        if step >= self.until:
            return Decision("continue", "the run reached the end of its budget", step=step)
        curve = Curve(np.asarray(self.steps), np.asarray(self.values))
        try:
            return self.stop_rule.decide(curve, self.until, schedule=self.schedule)
        except (ValueError, ArithmeticError) as err:
            # a forecast that fails numerically must not end the training loop: no evidence
            return Decision("continue", f"no forecast ({type(err).__name__}: {err})", step=step)

    def state_dict(self) -> dict[str, Any]:
        """The stopper's state, for checkpoints (the rule objects are settings, not state)."""
        return {
            "steps": list(self.steps),
            "values": list(self.values),
            "train": list(self.train),
            "pending": list(self._pending),
            "best_value": self.best_value,
            "best_step": self.best_step,
            "best_index": self._best_index,
            "decisions": [d.to_dict() for d in self.decisions],
            "dynamics": None if self.dynamics is None else self.dynamics.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.steps = [int(s) for s in state["steps"]]
        self.values = [float(v) for v in state["values"]]
        self.train = [float(v) for v in state["train"]]
        self._pending = [float(v) for v in state["pending"]]
        self.best_value = state["best_value"]
        self.best_step = state["best_step"]
        self._best_index = int(state["best_index"])
        self.decisions = [
            Decision(d["action"], d["reason"], step=d["step"], numbers=d["numbers"])
            for d in state["decisions"]
        ]
        if self.dynamics is not None and state.get("dynamics") is not None:
            self.dynamics.load_state_dict(state["dynamics"])
