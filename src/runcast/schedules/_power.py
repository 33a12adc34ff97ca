"""The Power scheduler (Shen et al. 2024): a learning rate that falls as a power of tokens seen.

Shen et al. found that the best constant LR of a WSD run falls as a power law of the tokens it
trains on, ``lr* ≈ batch_size * a * n^b``, and turned that into a schedule that needs no planned
length: ``lr(n) = min(peak, batch_size * a * n^b)`` after a linear warmup to ``lr(n_warmup)``,
then (optionally) a decay over the last steps. The paper's coefficients are ``a = 4``,
``b = -0.51`` (with μP); other set-ups should refit them.

Here ``n = t * tokens_per_step`` (``tokens_per_step`` defaults to 1, i.e. n counts steps), and the
decay is geometric ("exponential", the paper's choice) to ``end`` — by default 1% of the LR at the
start of the decay, since a geometric path cannot reach zero.

Example:
    >>> from runcast.schedules import Schedule
    >>> s = Schedule.from_spec({"kind": "power", "peak": 0.02, "a": 4.0, "b": -0.51,
    ...                         "tokens_per_step": 1e6, "warmup": 100, "total": 1000,
    ...                         "decay_fraction": 0.1})
    >>> lrs = s.array()
    >>> round(float(lrs[500]), 6), round(s(1000) / float(lrs[900]), 3)
    (0.000146, 0.01)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from runcast.errors import ScheduleError
from runcast.schedules._kinds import FloatArray, decay, decay_start_from, number, register


def power_lr(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    """``min(peak, batch_size * a * n^b)`` with ``n = t * tokens_per_step`` (n = 0 gives peak)."""
    n = np.asarray(t, dtype=np.float64) * float(s["tokens_per_step"])
    with np.errstate(divide="ignore"):  # n = 0 gives inf, which the min with peak turns to peak
        raw = float(s["batch_size"]) * float(s["a"]) * np.power(n, float(s["b"]))
    return np.minimum(float(s["peak"]), raw)


def _at(step: float, s: Mapping[str, Any]) -> float:
    return float(power_lr(np.array([float(step)]), s)[0])


def _check_power(out: dict[str, Any]) -> None:
    out["a"] = number(out, "a", positive=True)
    out["batch_size"] = number(out, "batch_size", positive=True)
    out["tokens_per_step"] = number(out, "tokens_per_step", positive=True)
    b = out["b"]
    if isinstance(b, bool) or not isinstance(b, (int, float)) or not -1 < float(b) < 0:
        raise ScheduleError(
            f"The power scheduler's exponent 'b' must be in (-1, 0) (the paper fits -0.51), "
            f"but got {b!r}."
        )
    out["b"] = float(b)
    decay_start_from(out, optional=True)
    if out.get("decay_start") is None:
        out["decay_start"] = None
        out["end"] = None
        return
    if out.get("end") is None:
        out["end"] = 0.01 * _at(out["decay_start"], out)
    out["end"] = number(out, "end")


def _warmup_target(s: Mapping[str, Any]) -> float:
    # the paper warms up to the power law's own value at the end of warmup, not to 'peak'
    return _at(s["warmup"], s)


@register(
    "power",
    ("peak",),
    {
        "a": 4.0,
        "b": -0.51,
        "batch_size": 1.0,
        "tokens_per_step": 1.0,
        "decay_start": None,
        "decay_fraction": None,
        "decay_shape": "exponential",
        "end": None,
    },
    doc="min(peak, batch_size * a * n^b) with n = t * tokens_per_step; optional final decay",
    check=_check_power,
    warmup_target=_warmup_target,
)
def _power(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    lrs = power_lr(t, s)
    ds = s["decay_start"]
    if ds is None:
        return lrs
    total = int(s["total"])
    x = (t - ds) / max(total - ds, 1)
    tail = decay(x, _at(ds, s), float(s["end"]), s["decay_shape"])
    return np.where(t < ds, lrs, tail)
