"""Plateaus on evaluation metrics: no new best for ``patience`` evaluations.

Evaluation metrics are few and noisy, often too few for a forecast; the classic patience rule
(as in ``ReduceLROnPlateau`` and early stopping) fits them. A value counts as a new best only
when it beats the best so far by ``min_delta`` (absolute, or relative to the best).

Example:
    >>> p = PlateauDetector(patience=2, min_delta=0.01)
    >>> [p.update(s, v).action for s, v in enumerate([1.0, 0.9, 0.899, 0.95])]
    ['continue', 'continue', 'continue', 'stop']
"""

from __future__ import annotations

import math
from typing import Any, Literal

from runcast.errors import InvalidInputError
from runcast.steer._decision import Decision


class PlateauDetector:
    """Report a plateau after ``patience`` evaluations without a new best.

    Args:
        patience: evaluations without improvement before the plateau is declared.
        min_delta: how much better than the best a value must be to count.
        mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
        relative: read ``min_delta`` as a fraction of the best value.

    State is explicit (``state_dict``/``load_state_dict``) so a resumed run continues exactly.

    Example:
        >>> p = PlateauDetector(patience=1, mode="max")
        >>> p.update(0, 0.8).action, p.update(1, 0.7).action
        ('continue', 'stop')
    """

    def __init__(
        self,
        patience: int = 5,
        min_delta: float = 0.0,
        mode: Literal["min", "max"] = "min",
        relative: bool = False,
    ) -> None:
        if patience < 1:
            raise InvalidInputError(f"patience must be >= 1, but got {patience=}.")
        if not (min_delta >= 0 and math.isfinite(min_delta)):
            raise InvalidInputError(f"min_delta must be finite and >= 0, but got {min_delta=}.")
        if mode not in ("min", "max"):
            raise InvalidInputError(f"mode must be 'min' or 'max', but got {mode!r}.")
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.relative = relative
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0

    def _improves(self, value: float) -> bool:
        if self.best is None:
            return True
        delta = self.min_delta * abs(self.best) if self.relative else self.min_delta
        if self.mode == "min":
            return value < self.best - delta
        return value > self.best + delta

    def update(self, step: int, value: float) -> Decision:
        """Record the evaluation ``value`` at ``step`` and say whether the metric has plateaued.

        A NaN or infinite value never counts as an improvement.
        """
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"PlateauDetector.update takes a number, but got {value!r} at step {step}."
            ) from None
        if math.isfinite(value) and self._improves(value):
            self.best, self.best_step, self.bad_evals = value, step, 0
            return Decision("continue", f"new best {value:.6g}", step=step, numbers={"best": value})
        self.bad_evals += 1
        numbers = {
            "value": value,
            "best": self.best if self.best is not None else math.nan,
            "best_step": float(self.best_step) if self.best_step is not None else math.nan,
            "evals_without_improvement": float(self.bad_evals),
            "patience": float(self.patience),
            "min_delta": self.min_delta,
        }
        why = (
            f"{self.bad_evals} evaluation(s) without beating best {self.best} "
            f"(step {self.best_step}) by min_delta {self.min_delta:g}"
            + (" (relative)" if self.relative else "")
        )
        if self.bad_evals >= self.patience:
            return Decision("stop", f"plateau: {why}", step=step, numbers=numbers)
        return Decision("continue", why, step=step, numbers=numbers)

    def state_dict(self) -> dict[str, Any]:
        """The detector's state, for checkpoints."""
        return {"best": self.best, "best_step": self.best_step, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.best = state["best"]
        self.best_step = state["best_step"]
        self.bad_evals = int(state["bad_evals"])
