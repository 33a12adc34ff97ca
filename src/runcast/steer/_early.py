"""Early stopping that pays: stop a run whose validation metric has turned, or has stalled at
the learning rate it will keep, and remember the step with the best validation value.

Three reasons to stop, checked at every evaluation:

- **turned** (overfitting): the validation metric, smoothed by a running median of ``window``
  evaluations, has risen from its lowest level by more than ``z`` standard errors of the run's
  own evaluation noise and by ``min_rise`` of that level, it is still rising, and the training
  loss, smoothed the same way, fell over the same span beyond ``train_z`` of its noise.
- **stalled**: the smoothed level has made no new low for ``patience`` evaluations and for
  ``stall`` of the run's evaluations so far, and the schedule will not lower the learning rate
  below ``lr_drop`` of today's before ``until`` (a plateau before an LR decay is not final: the
  decay lowers it). Needs ``schedule`` and ``until``.
- **not worth it**: a :class:`~runcast.steer.StopRule` (off by default) says the rest won't pay.

Whoever stops restores the weights of :attr:`EarlyStopper.best_step`. The defaults were chosen
leave-one-family-out (bench/README.md, "Early stopping that pays"); the stall test is off.

Example:
    >>> es = EarlyStopper(window=3, z=1.0, min_rise=0.0)
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

from runcast.errors import InvalidInputError, RuncastError
from runcast.steer._decision import Decision

if TYPE_CHECKING:
    from runcast.schedules import Schedule
    from runcast.steer._dynamics import TrainingPlateau
    from runcast.steer._stop import StopRule

_NOISE_EVALS = 30  # evaluations (the latest) the noise is read from
_MEDIAN_SE = math.sqrt(math.pi / 2)  # a median's standard error over a mean's (normal noise)


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


def _level(x: np.ndarray, w: int) -> float:
    """The median of the last ``w`` values (NaN until there are ``w``, or when fewer than half
    of them are finite: a NaN evaluation is no evidence either way)."""
    if x.size < w:
        return math.nan
    last = x[-w:]
    return _finite_median(last) if np.isfinite(last).sum() >= (w + 1) // 2 else math.nan


class EarlyStopper:
    """Decide at each evaluation whether to stop, and track the best validation step.

    Args:
        mode: ``"min"`` for a loss, ``"max"`` for an accuracy.
        window: evaluations in the running median that smooths the validation metric and the
            training loss (and the fewest evaluations between the lowest level and a stop).
        z: how many standard errors the smoothed level must have risen by from its lowest.
        train_z: how many standard errors the smoothed training loss must have fallen by over
            the same span (0: fallen at all); ignored when no training loss is given.
        min_rise: the rise must also be at least this fraction of the lowest level (0.02: a
            rise of 2%).
        min_evals: never stop before this many evaluations.
        stop_rule: also stop when this forecast rule says the rest is not worth it (needs
            ``until``); None: the turn test only.
        until: the last step of the run's budget (for ``stop_rule`` and the stall test).
        schedule: the run's LR schedule (the forecast and the stall test see a coming decay).
        forecast_every: ask ``stop_rule`` every this many evaluations (a forecast costs tens
            of milliseconds).
        dynamics: a :class:`TrainingPlateau` fed by :meth:`observe_train` (stops without a
            validation set).
        patience: the stall test's fewest evaluations without a new low of the running median
            (None, the default: no stall test; it needs ``schedule`` and ``until``).
        stall: the stall test's span as a fraction of the evaluations so far, when longer than
            ``patience`` (a run of 100 evaluations stalls over a longer span than one of 20).
        lr_drop: the stall test waits while the schedule will still take the LR below this
            fraction of the current one before ``until``.

    ``decisions`` keeps every decision that stopped the run (reason and numbers). Pass the
    training loss either per step (:meth:`observe_train`) or summarised per evaluation
    (``evaluate(..., train_loss=...)``); without it the turn test reads validation only.
    State is explicit (``state_dict``/``load_state_dict``) so a resumed run continues exactly.

    Example:
        >>> es = EarlyStopper(window=2, z=0.5, min_rise=0.0, min_evals=3)
        >>> for i, v in enumerate([3.0, 2.0, 1.5, 1.4, 1.6, 1.9]):
        ...     d = es.evaluate(i, v)
        >>> d.action, es.best_step, d.numbers["level_low"], round(d.numbers["rise"], 2)
        ('stop', 3, 1.45, 0.3)
    """

    def __init__(
        self,
        *,
        mode: Literal["min", "max"] = "min",
        window: int = 4,
        z: float = 5.0,
        train_z: float = 3.0,
        min_rise: float = 0.02,
        min_evals: int = 8,
        stop_rule: StopRule | None = None,
        until: int | None = None,
        schedule: Schedule | None = None,
        forecast_every: int = 1,
        dynamics: TrainingPlateau | None = None,
        patience: int | None = None,
        stall: float = 0.33,
        lr_drop: float = 0.7,
    ) -> None:
        if mode not in ("min", "max"):
            raise InvalidInputError(f"mode must be 'min' or 'max', but got {mode!r}.")
        if window < 2 or min_evals < 1 or forecast_every < 1:
            raise InvalidInputError(
                f"need window >= 2, min_evals >= 1 and forecast_every >= 1, but got "
                f"{window=}, {min_evals=}, {forecast_every=}."
            )
        if patience is not None and patience < 1:
            raise InvalidInputError(f"patience must be >= 1 or None (off), but got {patience=}.")
        for name, val in (("stall", stall), ("lr_drop", lr_drop)):
            if not (math.isfinite(val) and 0 <= val <= 1):
                raise InvalidInputError(f"{name} must be a fraction in [0, 1], but got {val}.")
        for name, val in (("z", z), ("train_z", train_z), ("min_rise", min_rise)):
            if not (math.isfinite(val) and val >= 0):
                raise InvalidInputError(f"{name} must be a finite number >= 0, but got {val}.")
        if stop_rule is not None and until is None:
            raise InvalidInputError(
                "a stop_rule forecasts to the end of the budget: pass until=<the run's last "
                "step> (e.g. max_steps - 1), or stop_rule=None."
            )
        self.mode = mode
        self.window, self.z, self.train_z, self.min_rise = window, z, train_z, min_rise
        self.min_evals = min_evals
        self.stop_rule, self.until, self.schedule = stop_rule, until, schedule
        self.forecast_every = forecast_every
        self.dynamics = dynamics
        self.patience, self.stall, self.lr_drop = patience, stall, lr_drop
        self._lr: np.ndarray | None = None  # the schedule's LR per step, up to until
        self._lr_min_ahead: np.ndarray | None = None  # its suffix minima
        self.steps: list[int] = []
        self.values: list[float] = []
        self.train: list[float] = []  # training loss per evaluation interval (NaN: none given)
        self._pending: list[float] = []  # per-step training losses since the last evaluation
        self.best_value: float | None = None
        self.best_step: int | None = None
        self._best_index = -1
        self._levels: list[float] = []  # running medians of sign * value, one per evaluation
        self._low = -1  # index of the lowest level so far
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
        self._add_level(len(self.values))
        sign = self._sign()
        if math.isfinite(value) and (
            self.best_value is None or sign * (value - self.best_value) < 0
        ):
            self.best_value, self.best_step = value, int(step)
            self._best_index = len(self.values) - 1
        d = self._turned(step)
        if not d and self.patience is not None:
            d = self._stalled(step)
        if not d and self.stop_rule is not None and len(self.values) % self.forecast_every == 0:
            d = self._not_worth_it(step)
        if d:
            self.decisions.append(d)
        return d

    def _add_level(self, k: int) -> None:
        """Append the running median ending at the ``k``-th evaluation."""
        level = _level(
            self._sign() * np.asarray(self.values[max(0, k - self.window) : k]), self.window
        )
        self._levels.append(level)
        if math.isfinite(level) and (self._low < 0 or level < self._levels[self._low]):
            self._low = len(self._levels) - 1

    def _train_series(self) -> tuple[np.ndarray, bool]:
        """The training loss up to now (log units when all positive: a training loss falls by
        factors, and its batch noise scales with it), and whether it was logged."""
        tr = np.asarray(self.train, dtype=np.float64)
        fin = tr[np.isfinite(tr)]
        log_scale = bool(fin.size and float(fin.min()) > 0)
        return (np.log(tr) if log_scale else tr), log_scale

    def _turned(self, step: int) -> Decision:
        n, w, low = len(self.values), self.window, self._low
        if low < 0 or n < max(self.min_evals, 2 * w) or n - 1 - low < w:
            return Decision(
                "continue",
                f"the turn test needs {w} evaluations past the lowest level of the running "
                f"median (and {max(self.min_evals, 2 * w)} in all)",
                step=step,
            )
        sign = self._sign()
        v = sign * np.asarray(self.values)
        now, level_low = self._levels[-1], self._levels[low]
        if not math.isfinite(now):
            return Decision("continue", "too few finite evaluations in the window", step=step)
        # the two medians cover disjoint windows (>= w apart): their difference has sqrt(2)
        # times a median's standard error, ~1.2533 sigma / sqrt(w) for normal noise
        sigma = eval_noise(v[-_NOISE_EVALS:])
        se = _MEDIAN_SE * sigma * math.sqrt(2.0 / w)
        rise = now - level_low
        needed = max(self.z * se, self.min_rise * abs(level_low))
        last = v[-w:]
        ok = np.isfinite(last)
        slope = float(np.polyfit(np.arange(w)[ok], last[ok], 1)[0]) if ok.sum() >= 2 else 0.0
        tr, log_scale = self._train_series()
        train_now = _level(tr, w)
        train_then = _level(tr[: low + 1], w)
        train_fall = train_then - train_now  # NaN when there is no training loss
        has_train = math.isfinite(train_now)
        train_se = _MEDIAN_SE * eval_noise(tr[-_NOISE_EVALS:]) * math.sqrt(2.0 / w)
        fall_needed = self.train_z * train_se if math.isfinite(train_se) else 0.0
        unlog = math.exp if log_scale else float
        numbers = {
            "best": float(self.best_value) if self.best_value is not None else math.nan,
            "best_step": float(self.best_step if self.best_step is not None else -1),
            "level_low": sign * level_low,
            "level_low_step": float(self.steps[low]),
            "level_now": sign * now,
            "rise": rise,
            "rise_needed": needed,
            "noise": sigma,
            "recent_slope": sign * slope,
            "train_then": unlog(train_then) if math.isfinite(train_then) else math.nan,
            "train_now": unlog(train_now) if has_train else math.nan,
            "train_fall": float(train_fall),  # in log units (a relative fall) when all > 0
            "train_fall_needed": float(fall_needed) if has_train else math.nan,
        }
        what = (
            f"median of the last {w} evaluations {sign * now:.6g} is {rise:+.4g} from its lowest "
            f"{sign * level_low:.6g} (step {self.steps[low]}; noise {sigma:.3g}, needed "
            f"{needed:.3g}), latest slope {sign * slope:+.3g}"
        )
        turned = rise > needed and slope > 0
        # overfitting is a validation metric rising while the training loss still falls; a
        # training loss that rises or stalls with it is an instability or a noisy plateau
        falls = not has_train or train_fall > fall_needed
        if turned and falls:
            kind = f"training loss fell {train_fall:.4g}" if has_train else "no training loss given"
            return Decision(
                "stop", f"validation turned: {what}; {kind}", step=step, numbers=numbers
            )
        if turned:
            what += f"; but the training loss did not fall ({train_fall:+.4g})"
        return Decision("continue", f"not turned: {what}", step=step, numbers=numbers)

    def _lr_now_and_ahead(self, step: int) -> tuple[float, float] | None:
        """The schedule's LR at ``step`` and its lowest over ``(step, until]`` (None: unknown)."""
        if self.schedule is None or self.until is None or step >= self.until:
            return None
        if self._lr is None or self._lr_min_ahead is None:
            try:
                self._lr = np.asarray(self.schedule.array(self.until + 1), dtype=np.float64)
            except RuncastError:  # a recorded schedule shorter than the budget: no evidence
                return None
            self._lr_min_ahead = np.minimum.accumulate(self._lr[::-1])[::-1]
        s = max(int(step), 0)
        return float(self._lr[s]), float(self._lr_min_ahead[s + 1])

    def _stalled(self, step: int) -> Decision:
        assert self.patience is not None  # checked by the caller
        n, low = len(self.values), self._low
        since = n - 1 - low if low >= 0 else 0
        if n < self.min_evals or since < max(self.patience, self.stall * n):
            return Decision(
                "continue", f"{since} evaluation(s) since the lowest running median", step=step
            )
        lrs = self._lr_now_and_ahead(step)
        if lrs is None:
            return Decision(
                "continue",
                f"stalled {since} evaluations, but with no schedule (or no budget end) an LR "
                "decay may still lower it: pass schedule= and until=",
                step=step,
            )
        lr_now, lr_ahead = lrs
        numbers = {
            "best": float(self.best_value) if self.best_value is not None else math.nan,
            "best_step": float(self.best_step if self.best_step is not None else -1),
            "level_low": self._sign() * self._levels[low],
            "level_low_step": float(self.steps[low]),
            "evals_since_low": float(since),
            "lr_now": lr_now,
            "lr_min_ahead": lr_ahead,
        }
        what = (
            f"no new low of the median of {self.window} evaluations for {since} of {n} "
            f"evaluations (lowest {numbers['level_low']:.6g} at step {self.steps[low]})"
        )
        if lr_now <= 0 or lr_ahead < self.lr_drop * lr_now:
            return Decision(
                "continue",
                f"{what}, but the LR falls from {lr_now:.3g} to {lr_ahead:.3g} before step "
                f"{self.until} (below {self.lr_drop:g} of it): the decay may lower the plateau",
                step=step,
                numbers=numbers,
            )
        return Decision(
            "stop",
            f"stalled: {what}; the LR stays >= {self.lr_drop:g} of {lr_now:.3g} to the end",
            step=step,
            numbers=numbers,
        )

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

    def settings(self) -> dict[str, Any]:
        """The JSON-able constructor arguments (``EarlyStopper(**es.settings())`` makes the same
        rule); ``stop_rule``, ``schedule`` and ``dynamics`` are objects and are left out.

        Example:
            >>> EarlyStopper(window=3).settings()["window"]
            3
        """
        return {
            "mode": self.mode,
            "window": self.window,
            "z": self.z,
            "train_z": self.train_z,
            "min_rise": self.min_rise,
            "min_evals": self.min_evals,
            "forecast_every": self.forecast_every,
            "until": self.until,
            "patience": self.patience,
            "stall": self.stall,
            "lr_drop": self.lr_drop,
        }

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
        self._levels, self._low = [], -1  # the running medians follow from the values
        for k in range(1, len(self.values) + 1):
            self._add_level(k)
        self.decisions = [
            Decision(d["action"], d["reason"], step=d["step"], numbers=d["numbers"])
            for d in state["decisions"]
        ]
        if self.dynamics is not None and state.get("dynamics") is not None:
            self.dynamics.load_state_dict(state["dynamics"])
