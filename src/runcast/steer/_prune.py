"""The one pruning rule that Optuna's and Ray Tune's integrations share.

A trial is pruned when its forecast gives it too small a chance of beating the best completed
trial: ``P(final < best) < threshold`` (``>`` when maximising), once it is past a warm-up and
enough trials have completed to know what "best" is. In a sweep the forecast comes by default
from the completed trials themselves (:func:`~runcast.steer.peer_forecast`: how they continued
from the same step), and from the trial's own curve (:func:`runcast.forecast`) when no completed
trial reported that early. Unlike a median or successive-halving rule,
this compares where the trial is *going* (its forecast final value, with uncertainty) with where
the best trial *ended*, so slow starters that will win are kept and fast starters that will
plateau are cut.

Example:
    >>> import numpy as np
    >>> from runcast.forecast import Forecast
    >>> f = Forecast([100], np.linspace(0.50, 0.60, 200)[:, None])  # final loss 0.50..0.60
    >>> prune_decision(f, best=0.45, step=20).action
    'prune'
    >>> prune_decision(f, best=0.55, step=20).action
    'continue'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from runcast.errors import InvalidInputError, NotEnoughDataError, RuncastError
from runcast.steer._decision import Decision
from runcast.steer._peers import peer_forecast

if TYPE_CHECKING:
    from runcast.curve import Curve
    from runcast.forecast import Forecast
    from runcast.schedules import Schedule

Mode = Literal["min", "max"]
Forecaster = Callable[["Curve", int], "Forecast"]


def _check_mode(mode: str) -> None:
    if mode not in ("min", "max"):
        raise InvalidInputError(f"mode must be 'min' or 'max', but got {mode!r}.")


def _check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold < 1.0:
        raise InvalidInputError(
            f"The pruning threshold is a probability in [0, 1), but got {threshold=}. "
            "Typical values are 0.01-0.1 (prune when the chance of winning is below it)."
        )


def prune_decision(
    forecast: Forecast,
    best: float | None,
    *,
    step: int,
    threshold: float = 0.05,
    warmup_steps: int = 0,
    mode: Mode = "min",
) -> Decision:
    """Prune when ``P(trial's final beats best) < threshold``, after ``warmup_steps``.

    Args:
        forecast: the trial's forecast; its last step is the trial's final step.
        best: the best final value among completed trials, or None if none completed yet.
        step: the trial's current step.
        threshold: prune when the probability of beating ``best`` falls below this.
        warmup_steps: never prune before this step.
        mode: ``"min"`` (a loss: beating means ending below ``best``) or ``"max"``.

    Example:
        >>> import numpy as np
        >>> from runcast.forecast import Forecast
        >>> f = Forecast([50], np.linspace(0.9, 1.1, 100)[:, None])
        >>> d = prune_decision(f, best=0.95, step=10, threshold=0.3)
        >>> d.action, round(d.numbers["p_beat"], 2)
        ('prune', 0.25)
    """
    _check_mode(mode)
    _check_threshold(threshold)
    if step < warmup_steps:
        return Decision(
            "continue",
            f"warming up: step {step} < warmup_steps {warmup_steps}",
            step=step,
            numbers={"warmup_steps": warmup_steps},
        )
    if best is None or not np.isfinite(best):
        return Decision("continue", "no completed trial to compare with yet", step=step)
    p = forecast.prob_below(best) if mode == "min" else forecast.prob_above(best)
    lo, hi = forecast.final.interval(0.8)
    numbers = {
        "p_beat": p,
        "threshold": threshold,
        "best": float(best),
        "final_median": forecast.final.median,
        "final_lo80": lo,
        "final_hi80": hi,
        "final_step": float(forecast.steps[-1]),
    }
    side = "below" if mode == "min" else "above"
    what = (
        f"P(final {side} best {best:.6g}) = {p:.3f}; forecast final median "
        f"{forecast.final.median:.6g}, 80% [{lo:.6g}, {hi:.6g}] at step {int(forecast.steps[-1])}"
    )
    if p < threshold:
        return Decision("prune", f"{what} < threshold {threshold:g}", step=step, numbers=numbers)
    return Decision("continue", f"{what} >= threshold {threshold:g}", step=step, numbers=numbers)


def default_forecaster(schedule: Schedule | None = None, mode: Mode | None = None) -> Forecaster:
    """``runcast.forecast(curve, until=until, schedule=schedule)`` as a two-argument callable.

    ``mode`` fixes the forecast's direction (``"min"``: a loss, ``"max"``: an accuracy) instead
    of letting the forecaster guess it from a short, noisy start.

    Example:
        >>> callable(default_forecaster())
        True
    """

    def fn(curve: Curve, until: int) -> Forecast:
        # looked up at call time: the forecasting module is heavy and imported only when needed
        forecast = importlib.import_module("runcast.forecast").forecast
        direction = None if mode is None else ("down" if mode == "min" else "up")
        # a schedule of `total` steps gives the LR of steps 0..total-1, while a trial's final
        # report after `total` updates is step `total`: forecast that one step earlier
        total = getattr(schedule, "total", None)
        if total is not None and until >= total:
            until = total - 1
        result: Forecast = forecast(curve, until=until, schedule=schedule, direction=direction)
        return result

    return fn


@dataclass
class PruneRule:
    """The forecast pruning rule with its settings, applied to a trial's reported points.

    Args:
        threshold: prune when ``P(final beats best) < threshold``.
        warmup_steps: never prune before this step.
        n_min_trials: never prune until this many trials have completed.
        min_points: never forecast a trial from its own curve with fewer points (the peer
            forecast needs one).
        mode: ``"min"`` or ``"max"``.
        forecaster: ``fn(curve, until) -> Forecast``; replaces the default (peers, else
            :func:`runcast.forecast`).
        use_peers: forecast from completed peers when they are given to :meth:`decide`.
        peer_window, peer_scale_floor: see :func:`~runcast.steer.peer_forecast`.

    Example:
        >>> rule = PruneRule(n_min_trials=2)
        >>> rule.decide([1, 2], [1.0, 0.9], total_steps=10, best=0.5, n_completed=1).reason
        'only 1 completed trial(s), n_min_trials=2'
    """

    threshold: float = 0.05
    warmup_steps: int = 0
    n_min_trials: int = 1
    min_points: int = 5
    mode: Mode = "min"
    forecaster: Forecaster | None = None
    use_peers: bool = True
    peer_window: int = 10
    peer_scale_floor: float = 0.1

    def __post_init__(self) -> None:
        _check_mode(self.mode)
        _check_threshold(self.threshold)
        for name in ("warmup_steps", "n_min_trials", "min_points"):
            value = getattr(self, name)
            if value < 0:
                raise InvalidInputError(f"{name} cannot be negative, but got {name}={value}.")

    def decide(
        self,
        steps: Sequence[int] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        *,
        total_steps: int,
        best: float | None,
        n_completed: int,
        schedule: Schedule | None = None,
        peers: Sequence[Curve] | None = None,
    ) -> Decision:
        """Decide for a trial that reported ``values`` at ``steps`` and will end at ``total_steps``.

        ``peers`` are the curves of completed trials (for the peer forecast). A trial whose
        latest value is NaN or infinite has diverged and is pruned at once (it cannot win). A
        forecast that fails (too few points, a fit error) never prunes.
        """
        from runcast.curve import Curve

        st = np.asarray(steps, dtype=np.int64)
        va = np.asarray(values, dtype=np.float64)
        if st.size == 0:
            return Decision("continue", "no reported points yet")
        step = int(st[-1])
        if n_completed < self.n_min_trials:
            return Decision(
                "continue",
                f"only {n_completed} completed trial(s), n_min_trials={self.n_min_trials}",
                step=step,
            )
        if not np.isfinite(va[-1]):
            return Decision(
                "prune",
                f"the trial diverged: its value at step {step} is {va[-1]}",
                step=step,
                numbers={"value": float(va[-1])},
            )
        if step < self.warmup_steps:
            return Decision(
                "continue",
                f"warming up: step {step} < warmup_steps {self.warmup_steps}",
                step=step,
                numbers={"warmup_steps": self.warmup_steps},
            )
        if step >= total_steps:
            return Decision("continue", f"the trial reached its last step {total_steps}", step=step)
        ok = np.isfinite(va)
        curve = Curve(st[ok], va[ok])
        fc = None
        if self.forecaster is None and self.use_peers and peers:
            try:
                fc = peer_forecast(
                    curve,
                    total_steps,
                    peers,
                    direction="down" if self.mode == "min" else "up",
                    window=self.peer_window,
                    scale_floor=self.peer_scale_floor,
                )
            except NotEnoughDataError:
                fc = None  # no peer reported this early: the trial's own curve decides
        if fc is None:
            if int(ok.sum()) < self.min_points:
                return Decision(
                    "continue",
                    f"{int(ok.sum())} finite point(s) so far; min_points={self.min_points}",
                    step=step,
                )
            fn = self.forecaster or default_forecaster(schedule, self.mode)
            try:
                fc = fn(curve, total_steps)
            except RuncastError as err:  # no forecast, no evidence: never prune on a failed fit
                return Decision("continue", f"no forecast ({err})", step=step)
        return prune_decision(
            fc,
            best,
            step=step,
            threshold=self.threshold,
            warmup_steps=self.warmup_steps,
            mode=self.mode,
        )
