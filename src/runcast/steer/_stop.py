"""Stop a run that has stopped learning: the forecast says the rest of its budget will not pay.

The rule: from the run's forecast to the end of its budget, the improvement still to come is
``current - final`` (``final - current`` for a metric that rises). The run has stopped learning
when ``P(improvement > tolerance) < 1 - confidence``: we are ``confidence`` sure that the
remaining steps will improve the metric by less than ``tolerance``. "current" is the median of
the last few observed values, so one noisy batch does not decide.

Example:
    >>> import numpy as np
    >>> from runcast.curve import Curve
    >>> from runcast.forecast import Forecast
    >>> c = Curve(np.arange(100), np.full(100, 2.0))
    >>> flat = Forecast([99, 1000], np.full((100, 2), 1.999))
    >>> should_stop(c, 1000, tolerance=0.01, forecast=flat).action
    'stop'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from runcast.errors import InvalidInputError, RuncastError
from runcast.steer._decision import Decision
from runcast.steer._prune import Forecaster, default_forecaster

if TYPE_CHECKING:
    from runcast.curve import Curve
    from runcast.forecast import Forecast
    from runcast.schedules import Schedule


def _recent_level(values: np.ndarray, window: int) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite[-window:]))


@dataclass
class StopRule:
    """Decide "stopped learning" from a run's forecast over its remaining budget.

    Args:
        tolerance: the improvement (absolute, or relative to the current value if ``relative``)
            below which the remaining budget is not worth spending.
        confidence: how sure the rule must be that the improvement stays below ``tolerance``.
        relative: read ``tolerance`` as a fraction of the current value (0.01 = 1%).
        mode: ``"min"`` for a loss, ``"max"`` for an accuracy.
        window: how many recent points make up the current level (their median).
        min_points: never stop a run with fewer finite points.
        forecaster: ``fn(curve, until) -> Forecast``; default :func:`runcast.forecast`.

    Example:
        >>> import numpy as np
        >>> from runcast.curve import Curve
        >>> from runcast.forecast import Forecast
        >>> c = Curve(np.arange(50), np.linspace(3.0, 2.0, 50))
        >>> still = Forecast([49, 500], [[2.0, 1.5]] * 10)  # 0.5 more to gain
        >>> StopRule(tolerance=0.05).decide(c, 500, forecast=still).action
        'continue'
    """

    tolerance: float = 0.01
    confidence: float = 0.9
    relative: bool = False
    mode: Literal["min", "max"] = "min"
    window: int = 5
    min_points: int = 10
    forecaster: Forecaster | None = None

    def __post_init__(self) -> None:
        if not (self.tolerance >= 0 and np.isfinite(self.tolerance)):
            raise InvalidInputError(
                f"tolerance must be a finite number >= 0, but got tolerance={self.tolerance}."
            )
        if not 0.0 < self.confidence < 1.0:
            raise InvalidInputError(
                f"confidence must be in (0, 1), but got confidence={self.confidence}; "
                "e.g. 0.9 stops when 90% sure the remaining gain is below tolerance."
            )
        if self.mode not in ("min", "max"):
            raise InvalidInputError(f"mode must be 'min' or 'max', but got {self.mode!r}.")
        if self.window < 1 or self.min_points < 1:
            raise InvalidInputError(
                f"window and min_points must be >= 1, but got window={self.window}, "
                f"min_points={self.min_points}."
            )

    def decide(
        self,
        curve: Curve,
        until: int,
        *,
        schedule: Schedule | None = None,
        forecast: Forecast | None = None,
    ) -> Decision:
        """Decide for ``curve``, whose budget ends at step ``until``.

        Args:
            curve: the metric so far.
            until: the last step of the run's budget.
            schedule: the run's LR schedule (lets the forecast see a coming cooldown).
            forecast: a forecast already made (skips forecasting).
        """
        if isinstance(until, bool) or not isinstance(until, (int, np.integer)) or until < 1:
            # a budget of -1 (a trainer with no max_steps) read as "the run reached its end"
            raise InvalidInputError(
                f"until must be the run's last step (a whole number >= 1), but got {until!r}; "
                "set the trainer's max_steps, or pass the planned number of steps."
            )
        finite = curve.finite()
        n = len(finite.step)
        if n == 0:
            return Decision("continue", "no finite points yet")
        step = int(finite.step[-1])
        if n < self.min_points:
            return Decision(
                "continue", f"{n} finite point(s); min_points={self.min_points}", step=step
            )
        if step >= until:
            return Decision("continue", f"the run reached the end of its budget {until}", step=step)
        if forecast is None:
            fn = self.forecaster or default_forecaster(schedule, self.mode)
            try:
                forecast = fn(finite, until)
            except RuncastError as err:  # no forecast, no evidence: keep training
                return Decision("continue", f"no forecast ({err})", step=step)
        current = _recent_level(np.asarray(finite.value), self.window)
        tol = self.tolerance * abs(current) if self.relative else self.tolerance
        if self.mode == "min":
            p_improve = forecast.prob_below(current - tol)
            gain = current - forecast.final.median
        else:
            p_improve = forecast.prob_above(current + tol)
            gain = forecast.final.median - current
        numbers = {
            "current": current,
            "final_median": forecast.final.median,
            "expected_gain": gain,
            "tolerance": tol,
            "p_improve": p_improve,
            "confidence": self.confidence,
            "remaining_steps": float(until - step),
        }
        what = (
            f"forecast gain over the remaining {until - step} steps: median {gain:.4g}; "
            f"P(gain > {tol:.4g}) = {p_improve:.3f}"
        )
        if p_improve < 1.0 - self.confidence:
            return Decision(
                "stop",
                f"stopped learning: {what} < {1.0 - self.confidence:.3g}",
                step=step,
                numbers=numbers,
            )
        return Decision("continue", f"still learning: {what}", step=step, numbers=numbers)


def should_stop(
    curve: Curve,
    until: int,
    *,
    tolerance: float = 0.01,
    confidence: float = 0.9,
    relative: bool = False,
    mode: Literal["min", "max"] = "min",
    schedule: Schedule | None = None,
    forecast: Forecast | None = None,
) -> Decision:
    """Has the run stopped learning? :class:`StopRule` in one call.

    Example:
        >>> import numpy as np
        >>> from runcast.curve import Curve
        >>> from runcast.forecast import Forecast
        >>> c = Curve(np.arange(20), np.linspace(1.0, 0.5, 20))
        >>> f = Forecast([19, 200], [[0.5, 0.2]] * 4)
        >>> d = should_stop(c, 200, tolerance=0.1, forecast=f)
        >>> d.action, round(d.numbers["current"], 3), round(d.numbers["expected_gain"], 3)
        ('continue', 0.553, 0.353)
    """
    rule = StopRule(tolerance=tolerance, confidence=confidence, relative=relative, mode=mode)
    return rule.decide(curve, until, schedule=schedule, forecast=forecast)
