"""Decision: what a steering rule decided, and why, with the numbers it decided on.

Every rule in :mod:`runcast.steer` returns one, so a stopped run or a pruned trial can always
answer "why?" (the reason in words, and the quantities that crossed a threshold).

Example:
    >>> d = Decision("prune", "P(beat best)=0.010 < threshold 0.05", step=40, numbers={"p": 0.01})
    >>> bool(d), d.numbers["p"]
    (True, 0.01)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

Action = Literal["continue", "stop", "prune", "warn", "skip", "lower_lr", "rollback", "grow_batch"]
ACTIONS: tuple[str, ...] = get_args(Action)


@dataclass(frozen=True)
class Decision:
    """One decision of a steering rule.

    Args:
        action: ``"continue"`` (do nothing) or what to do: ``"stop"``, ``"prune"``, ``"warn"``,
            ``"skip"`` (skip this optimizer step), ``"lower_lr"``, ``"rollback"``,
            ``"grow_batch"`` (batch-size warmup: ``numbers["batch_size"]`` is the new one).
        reason: one sentence, with the numbers, that a person can read in a log.
        step: the training step the decision was made at (None if unknown).
        numbers: the quantities behind the decision (probabilities, thresholds, z-scores).

    ``bool(decision)`` is True when the rule asks for an action (anything but "continue").

    Example:
        >>> Decision("continue", "warming up").to_dict()["action"]
        'continue'
    """

    action: Action
    reason: str
    step: int | None = None
    numbers: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            from runcast.errors import InvalidInputError

            raise InvalidInputError(
                f"Decision action must be one of {', '.join(ACTIONS)}, but got {self.action!r}."
            )
        # read-only view: a logged decision must not change after the fact
        object.__setattr__(self, "numbers", MappingProxyType(dict(self.numbers)))

    def __bool__(self) -> bool:
        return self.action != "continue"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: action, reason, step and numbers."""
        return {
            "action": self.action,
            "reason": self.reason,
            "step": self.step,
            "numbers": {k: float(v) for k, v in self.numbers.items()},
        }

    def __str__(self) -> str:
        at = f" at step {self.step}" if self.step is not None else ""
        return f"{self.action}{at}: {self.reason}"
