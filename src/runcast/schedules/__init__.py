"""Learning-rate schedules: specs to per-step arrays.

Example:
    >>> from runcast.schedules import Schedule
    >>> Schedule.from_spec({"kind": "wsd", "peak": 1.0, "end": 0.0, "total": 10,
    ...                     "decay_start": 8}).array().tolist()[-3:]
    [1.0, 1.0, 0.5]
"""

from runcast.schedules._base import Schedule
from runcast.schedules._kinds import DECAY_SHAPES, KINDS

__all__ = ["DECAY_SHAPES", "KINDS", "Schedule"]
