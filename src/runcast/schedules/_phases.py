"""Schedule kinds made of repeated or chained pieces: cyclic schedules and phase sequences.

``cyclic`` repeats a cosine (SGDR, Loshchilov & Hutter 2017) or triangular (Smith 2017) cycle,
optionally lengthening each cycle and shrinking its peak. ``sequence`` chains sub-schedules, each
for a given number of steps: the spec for continual pre-training, where a run resumes from a
checkpoint with a re-warmup and a new decay.

Example:
    >>> from runcast.schedules import Schedule
    >>> s = Schedule.from_spec({"kind": "sequence", "phases": [
    ...     {"kind": "constant", "peak": 1.0, "steps": 3},
    ...     {"kind": "linear", "peak": 0.5, "end": 0.0, "warmup": 2, "init": 0.25, "steps": 4}]})
    >>> s.array().tolist()
    [1.0, 1.0, 1.0, 0.25, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from runcast.errors import ScheduleError
from runcast.schedules._kinds import (
    FloatArray,
    evaluate,
    number,
    register,
    step_field,
    validate,
)

CYCLE_SHAPES = ("cosine", "triangular")


def _check_cyclic(out: dict[str, Any]) -> None:
    out["period"] = step_field(out, "period", positive=True)
    out["period_mult"] = number(out, "period_mult")
    out["decay"] = number(out, "decay")
    if out["period_mult"] < 1:
        raise ScheduleError(
            f"'period_mult' stretches each cycle and must be >= 1, but got {out['period_mult']!r}."
        )
    if out["decay"] > 1:
        raise ScheduleError(
            f"'decay' multiplies the peak of each new cycle and must be in [0, 1], but got "
            f"{out['decay']!r}."
        )
    if out["shape"] not in CYCLE_SHAPES:
        raise ScheduleError(
            f"Unknown cyclic shape {out['shape']!r}; use one of {', '.join(CYCLE_SHAPES)}."
        )
    if out["base"] > out["peak"]:
        raise ScheduleError(f"'base' ({out['base']}) must not exceed 'peak' ({out['peak']}).")


def cycle_position(u: FloatArray, period: float, mult: float) -> tuple[FloatArray, FloatArray]:
    """For steps ``u`` since the first cycle began: (cycle index k, position x in [0, 1))."""
    if mult == 1.0:
        k = np.floor(u / period)
        return k, u / period - k
    # cycle k starts at period * (mult**k - 1) / (mult - 1): invert that geometric sum
    k = np.floor(np.log1p(u * (mult - 1.0) / period) / np.log(mult) + 1e-12)
    start = period * (mult**k - 1.0) / (mult - 1.0)
    # float rounding at a boundary can leave u a hair below the computed start: step back
    back = u < start
    k = np.where(back, k - 1.0, k)
    start = period * (mult**k - 1.0) / (mult - 1.0)
    return k, (u - start) / (period * mult**k)


@register(
    "cyclic",
    ("peak", "period"),
    {"base": 0.0, "shape": "cosine", "period_mult": 1.0, "decay": 1.0},
    doc="repeated cycles from peak down to base (cosine restarts) or peak-base-peak (triangular)",
    check=_check_cyclic,
)
def _cyclic(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    u = np.maximum(t - s["warmup"], 0.0)
    k, x = cycle_position(u, float(s["period"]), float(s["period_mult"]))
    base = float(s["base"])
    top = base + (float(s["peak"]) - base) * np.power(float(s["decay"]), k)
    if s["shape"] == "cosine":
        return np.asarray(base + (top - base) * (1.0 + np.cos(np.pi * x)) / 2.0)
    # triangular starts at the peak (continuous after warmup), reaches base mid-cycle
    return np.asarray(base + (top - base) * np.abs(1.0 - 2.0 * x))


def _check_sequence(out: dict[str, Any]) -> None:
    phases = out["phases"]
    if not isinstance(phases, (list, tuple)) or not phases:
        raise ScheduleError(
            "A 'sequence' schedule needs 'phases': a non-empty list of schedule specs, each with "
            "'steps' (how many steps it runs), e.g. [{'kind': 'cosine', 'peak': 1e-3, "
            "'steps': 1000}, ...]."
        )
    if out["warmup"]:
        raise ScheduleError(
            "A 'sequence' schedule takes no 'warmup' of its own; give the first phase its warmup "
            "(and later phases a re-warmup) instead."
        )
    normal: list[dict[str, Any]] = []
    for i, phase in enumerate(phases):
        if not isinstance(phase, Mapping) or "steps" not in phase:
            raise ScheduleError(
                f"Phase {i} of the sequence must be a schedule spec with 'steps', but got "
                f"{phase!r}."
            )
        if phase.get("kind") == "recorded":
            raise ScheduleError(
                f"Phase {i}: a 'recorded' phase cannot be part of a sequence spec; build the whole "
                "schedule with Schedule.from_array(lrs) instead."
            )
        steps = step_field(phase, "steps", positive=True)
        sub = {k: v for k, v in phase.items() if k != "steps"}
        sub.setdefault("total", steps)
        try:
            spec = validate(sub)
        except ScheduleError as err:
            raise ScheduleError(f"Phase {i} of the sequence: {err}") from err
        spec["steps"] = steps
        normal.append(spec)
    total = sum(p["steps"] for p in normal)
    if out.get("total") is not None and out["total"] != total:
        raise ScheduleError(
            f"The sequence's 'total' ({out['total']}) differs from the sum of its phases' steps "
            f"({total}); drop 'total' or fix the phases."
        )
    out["phases"] = normal
    out["total"] = total
    out["peak"] = max(float(np.max(evaluate(p, p["steps"]))) if p["steps"] else 0.0 for p in normal)


def sequence_array(s: Mapping[str, Any]) -> FloatArray:
    """The LRs of every step of a validated sequence, plus one held step past its end."""
    parts = [evaluate(p, int(p["steps"])) for p in s["phases"]]
    last = s["phases"][-1]
    # past the end the last phase holds what it would give one step later (its own held value)
    parts.append(evaluate(last, int(last["steps"]) + 1)[-1:])
    return np.concatenate(parts)


@register(
    "sequence",
    ("phases",),
    {"peak": None},
    doc="sub-schedules one after another, each for its 'steps' (continual pre-training)",
    check=_check_sequence,
)
def _sequence(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    full = sequence_array(s)
    return np.asarray(full[np.minimum(t.astype(np.int64), full.size - 1)])
