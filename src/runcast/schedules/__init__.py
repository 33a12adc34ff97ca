"""Learning-rate schedules: specs to per-step arrays, the torch adapter, refinement, the planner.

Kinds: ``constant``, ``linear``, ``cosine``, ``wsd`` (cooldown shapes linear, cosine, 1-sqrt,
square, exponential), ``multistep`` (e.g. 8-1-1), ``two_stage``, ``cyclic``, ``sequence``
(continual pre-training with re-warmup), ``inverse_sqrt`` and ``power`` (Shen et al. 2024); each
with a linear, cosine or exponential warmup.

Example:
    >>> from runcast.schedules import Schedule
    >>> Schedule.from_spec({"kind": "wsd", "peak": 1.0, "end": 0.0, "total": 10,
    ...                     "decay_start": 8}).array().tolist()[-3:]
    [1.0, 1.0, 0.5]
"""

from typing import TYPE_CHECKING, Any

# the kind modules register themselves in _kinds.KINDS when imported
from runcast.schedules import _phases, _power  # noqa: F401
from runcast.schedules._base import Schedule
from runcast.schedules._kinds import DECAY_SHAPES, KINDS, WARMUP_SHAPES

if TYPE_CHECKING:
    from runcast.schedules._plan import Plan, plan_schedule

__all__ = ["DECAY_SHAPES", "KINDS", "WARMUP_SHAPES", "Plan", "Schedule", "plan_schedule"]


def __getattr__(name: str) -> Any:
    # the planner pulls in scipy.optimize and the Forecast types: import it on first use
    if name in ("Plan", "plan_schedule"):
        from runcast.schedules import _plan

        return getattr(_plan, name)
    raise AttributeError(f"module 'runcast.schedules' has no attribute {name!r}")
