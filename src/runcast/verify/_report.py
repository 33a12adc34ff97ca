"""The verifier's answer: pass or fail per check, with the numbers behind it.

Example:
    >>> r = VerifyReport([Check("chain", True, "400 steps chained", {"steps": 400})],
    ...                  verify_seconds=1.0, training_seconds=20.0)
    >>> r.passed, r.cost_share
    (True, 0.05)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed, one line of why, and its numbers."""

    name: str
    passed: bool
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifyReport:
    """All checks of one proof. ``passed`` only if every check passed."""

    checks: list[Check]
    verify_seconds: float = 0.0
    training_seconds: float = 0.0
    work_share: float = math.nan  # verification work in training steps, per step trained

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[str]:
        """The names of the checks that failed."""
        return [c.name for c in self.checks if not c.passed]

    @property
    def cost_share(self) -> float:
        """Verification time as a share of the recorded training time (NaN if unknown)."""
        if self.training_seconds <= 0:
            return math.nan
        return self.verify_seconds / self.training_seconds

    def check(self, name: str) -> Check:
        """The check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; the checks are {[c.name for c in self.checks]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [asdict(c) for c in self.checks],
            "verify_seconds": self.verify_seconds,
            "training_seconds": self.training_seconds,
            "cost_share": None if math.isnan(self.cost_share) else self.cost_share,
            "work_share": None if math.isnan(self.work_share) else self.work_share,
        }

    def __str__(self) -> str:
        lines = [f"proof {'PASSED' if self.passed else 'FAILED'}"]
        for c in self.checks:
            lines.append(f"  [{'pass' if c.passed else 'FAIL'}] {c.name}: {c.summary}")
        if not math.isnan(self.cost_share):
            lines.append(
                f"  verification took {self.verify_seconds:.2f} s, "
                f"{100 * self.cost_share:.1f}% of the {self.training_seconds:.2f} s of training"
                + (
                    f" (work: {100 * self.work_share:.1f}% of the training steps)"
                    if not math.isnan(self.work_share)
                    else ""
                )
            )
        return "\n".join(lines)
