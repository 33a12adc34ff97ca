"""Schedule kinds: validation of spec dicts and vectorised evaluation.

Each kind is a function ``f(t, spec) -> lr`` over the float steps ``t >= warmup`` (numpy arrays);
warmup is applied in one place for all kinds. A kind's spec fields are declared next to it, so
validation errors can list what is allowed. The kinds with more moving parts (cyclic, sequence,
power) live in ``_phases.py`` and ``_power.py`` and register themselves here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.errors import ScheduleError

FloatArray = npt.NDArray[np.float64]
KindFn = Callable[[FloatArray, Mapping[str, Any]], FloatArray]

COMMON_DEFAULTS: dict[str, Any] = {
    "warmup": 0,
    "init": 0.0,
    "warmup_shape": "linear",
    "total": None,
}
DECAY_SHAPES = ("linear", "cosine", "1-sqrt", "square", "exponential")
WARMUP_SHAPES = ("linear", "cosine", "exponential")
Check = Callable[[dict[str, Any]], None]
Target = Callable[[Mapping[str, Any]], float]


@dataclass(frozen=True)
class Kind:
    """A schedule kind: its evaluator, required fields and optional fields with defaults."""

    fn: KindFn
    required: tuple[str, ...]
    optional: dict[str, Any] = field(default_factory=dict)
    doc: str = ""
    # kind-specific validation of the filled-in spec (mutates it into normal form)
    check: Check | None = None
    # the LR warmup climbs to; None means the spec's 'peak'
    warmup_target: Target | None = None


KINDS: dict[str, Kind] = {}


def register(
    name: str,
    required: tuple[str, ...],
    optional: dict[str, Any] | None = None,
    doc: str = "",
    check: Check | None = None,
    warmup_target: Target | None = None,
) -> Callable[[KindFn], KindFn]:
    """Register a schedule kind under ``name`` (used by the spec language)."""

    def deco(fn: KindFn) -> KindFn:
        KINDS[name] = Kind(fn, required, dict(optional or {}), doc, check, warmup_target)
        return fn

    return deco


def decay(x: FloatArray, start: float, end: float, shape: str) -> FloatArray:
    """Go from ``start`` (x=0) to ``end`` (x=1) along ``shape``; x is clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    if shape == "linear":
        return start + (end - start) * x
    if shape == "cosine":
        return end + (start - end) * (1.0 + np.cos(np.pi * x)) / 2.0
    if shape == "1-sqrt":
        return end + (start - end) * (1.0 - np.sqrt(x))
    if shape == "square":
        return end + (start - end) * (1.0 - x**2)
    if shape == "exponential":
        if start <= 0 or end <= 0:
            # geometric interpolation needs positive ends; a zero end falls back to linear
            return start + (end - start) * x
        return np.asarray(start ** (1.0 - x) * end**x, dtype=np.float64)
    raise ScheduleError(f"Unknown decay shape {shape!r}; use one of {', '.join(DECAY_SHAPES)}.")


def number(spec: Mapping[str, Any], key: str, *, positive: bool = False) -> float:
    """The spec's field ``key`` as a finite non-negative float; the error names the field."""
    val = spec[key]
    if isinstance(val, bool) or not isinstance(val, (int, float, np.integer, np.floating)):
        raise ScheduleError(f"Schedule field {key!r} must be a number, but got {val!r}.")
    val = float(val)
    if not np.isfinite(val) or val < 0 or (positive and val == 0):
        need = "positive" if positive else "non-negative"
        raise ScheduleError(f"Schedule field {key!r} must be finite and {need}, but got {val!r}.")
    return val


def step_field(spec: Mapping[str, Any], key: str, *, positive: bool = False) -> int:
    """The spec's field ``key`` as a whole number of steps (``2000.0`` is fine, ``0.5`` is not)."""
    val = number(spec, key, positive=positive)
    if val != round(val):
        raise ScheduleError(
            f"Schedule field {key!r} is a number of steps and must be whole, but got {val!r}."
        )
    return round(val)


def need_total(spec: Mapping[str, Any], why: str) -> int:
    """The spec's 'total', or an error saying that ``why`` needs it."""
    if spec.get("total") is None:
        raise ScheduleError(f"A {spec['kind']!r} schedule {why} needs 'total' (the run's steps).")
    return int(spec["total"])


def decay_start_from(out: dict[str, Any], *, optional: bool = False) -> None:
    """Resolve 'decay_start' / 'decay_fraction' into 'decay_start' (a step, or None)."""
    if out.get("decay_start") is None and out.get("decay_fraction") is None:
        if optional:
            out.pop("decay_fraction", None)
            return
        raise ScheduleError(
            f"A {out['kind']!r} schedule needs 'decay_start' (a step) or 'decay_fraction' (the "
            "share of 'total' spent decaying, e.g. 0.2)."
        )
    total = need_total(out, "that decays")
    if out.get("decay_start") is None:
        frac = number(out, "decay_fraction")
        if not 0 <= frac <= 1:
            raise ScheduleError(f"'decay_fraction' must be in [0, 1], but got {frac!r}.")
        out["decay_start"] = round(total * (1.0 - frac))
    elif out.get("decay_fraction") is not None:
        raise ScheduleError("Give either 'decay_start' or 'decay_fraction', not both.")
    out.pop("decay_fraction", None)
    out["decay_start"] = step_field(out, "decay_start")
    if not out["warmup"] <= out["decay_start"] <= total:
        raise ScheduleError(
            f"'decay_start' ({out['decay_start']}) must lie between warmup ({out['warmup']}) "
            f"and total ({total})."
        )
    if out["decay_shape"] not in DECAY_SHAPES:
        raise ScheduleError(
            f"Unknown decay_shape {out['decay_shape']!r}; use one of {', '.join(DECAY_SHAPES)}."
        )


def _check_wsd(out: dict[str, Any]) -> None:
    decay_start_from(out)


def _check_two_stage(out: dict[str, Any]) -> None:
    out["switch"] = step_field(out, "switch")


def _check_multistep(out: dict[str, Any]) -> None:
    ms, fr = out.get("milestones"), out.get("milestone_fractions")
    if (ms is None) == (fr is None):
        raise ScheduleError(
            "A 'multistep' schedule needs exactly one of 'milestones' (steps, e.g. [8000, 9000]) "
            "or 'milestone_fractions' (shares of 'total', e.g. [0.8, 0.9] for the 8-1-1 schedule)."
        )
    if fr is not None:
        total = need_total(out, "with 'milestone_fractions'")
        if not isinstance(fr, (list, tuple)) or any(
            isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1 for f in fr
        ):
            raise ScheduleError(
                f"'milestone_fractions' must be a list of shares of 'total' in [0, 1], but got "
                f"{fr!r}."
            )
        ms = [round(total * float(f)) for f in fr]
    if not isinstance(ms, (list, tuple)) or any(
        isinstance(m, bool) or not isinstance(m, (int, float)) or m < 0 or m != round(m) for m in ms
    ):
        raise ScheduleError(f"'milestones' must be a list of non-negative steps, but got {ms!r}.")
    out["milestones"] = sorted(round(m) for m in ms)
    out.pop("milestone_fractions", None)
    if out["gamma"] > 1:
        raise ScheduleError(
            f"'gamma' multiplies the LR at each milestone and must be in [0, 1], but got "
            f"{out['gamma']!r}; for 8-1-1 use gamma=0.316 (two drops to 0.1x)."
        )


def _check_inverse_sqrt(out: dict[str, Any]) -> None:
    if out.get("timescale") is not None:
        out["timescale"] = number(out, "timescale", positive=True)


@register("constant", ("peak",), doc="peak after warmup")
def _constant(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    return np.full_like(t, float(s["peak"]))


@register("linear", ("peak", "total"), {"end": 0.0}, doc="straight line from peak to end")
def _linear(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    w, total = s["warmup"], s["total"]
    return decay((t - w) / max(total - w, 1), s["peak"], s["end"], "linear")


@register("cosine", ("peak", "total"), {"end": 0.0}, doc="half cosine from peak to end")
def _cosine(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    w, total = s["warmup"], s["total"]
    return decay((t - w) / max(total - w, 1), s["peak"], s["end"], "cosine")


@register(
    "wsd",
    ("peak", "total"),
    {"end": 0.0, "decay_start": None, "decay_fraction": None, "decay_shape": "linear"},
    doc="warmup-stable-decay: peak until decay_start, then down to end at total",
    check=_check_wsd,
)
def _wsd(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    total, ds = s["total"], s["decay_start"]
    x = (t - ds) / max(total - ds, 1)
    out = decay(x, s["peak"], s["end"], s["decay_shape"])
    return np.where(t < ds, float(s["peak"]), out)


@register(
    "two_stage",
    ("peak", "switch", "second"),
    doc="peak until switch, then second",
    check=_check_two_stage,
)
def _two_stage(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    return np.where(t < s["switch"], float(s["peak"]), float(s["second"]))


@register(
    "multistep",
    ("peak",),
    {"milestones": None, "milestone_fractions": None, "gamma": 0.1},
    doc="peak, multiplied by gamma at each milestone step (8-1-1: fractions [0.8, 0.9])",
    check=_check_multistep,
)
def _multistep(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    ms = np.asarray(s["milestones"], dtype=np.float64)
    n = np.searchsorted(ms, t, side="right")
    return float(s["peak"]) * np.power(float(s["gamma"]), n)


@register(
    "inverse_sqrt",
    ("peak",),
    {"timescale": None},
    doc="peak * sqrt(timescale / t) after warmup (timescale defaults to warmup)",
    check=_check_inverse_sqrt,
)
def _inverse_sqrt(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    tau = float(s["timescale"] or max(s["warmup"], 1))
    return float(s["peak"]) * np.sqrt(tau / np.maximum(t, tau))


def validate(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a spec and fill defaults; every error names the field and the allowed values."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ScheduleError(
            f"Unknown schedule kind {kind!r}; use one of {', '.join(sorted(KINDS))} "
            "(or 'recorded' with per-step 'lrs')."
        )
    k = KINDS[kind]
    allowed = {"kind", "note", *COMMON_DEFAULTS, *k.required, *k.optional}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ScheduleError(
            f"Schedule kind {kind!r} does not take {', '.join(map(repr, extra))}; "
            f"its fields are {', '.join(sorted(allowed - {'kind', 'note'}))}."
        )
    missing = [r for r in k.required if spec.get(r) is None]
    if missing:
        raise ScheduleError(
            f"Schedule kind {kind!r} needs {', '.join(map(repr, missing))}; got {dict(spec)!r}."
        )
    out: dict[str, Any] = {"kind": kind, **COMMON_DEFAULTS, **k.optional, **spec}
    out.pop("note", None)
    for key in ("peak", "end", "second", "init", "gamma", "base"):
        if out.get(key) is not None:
            out[key] = number(out, key)
    out["warmup"] = step_field(out, "warmup")
    if out["warmup_shape"] not in WARMUP_SHAPES:
        raise ScheduleError(
            f"Unknown warmup_shape {out['warmup_shape']!r}; use one of {', '.join(WARMUP_SHAPES)}."
        )
    if out["warmup_shape"] == "exponential" and out["warmup"] > 1 and out["init"] <= 0:
        raise ScheduleError(
            "An 'exponential' warmup grows geometrically and needs a positive 'init', e.g. "
            "init = peak / 100; or use warmup_shape 'linear' or 'cosine'."
        )
    if out.get("total") is not None:
        out["total"] = step_field(out, "total", positive=True)
        if out["warmup"] > out["total"]:
            raise ScheduleError(
                f"warmup ({out['warmup']}) is longer than the schedule's total ({out['total']})."
            )
    if k.check is not None:
        k.check(out)
    return out


def warmup_ramp(shape: str, init: float, target: float, n: int) -> FloatArray:
    """The ``n`` warmup LRs from ``init`` (step 0) to ``target`` (step n-1).

    ``linear`` is exactly ``numpy.linspace(init, target, n)`` (the README's spec semantics);
    ``cosine`` eases in and out along a half cosine; ``exponential`` is ``numpy.geomspace``.
    """
    if shape == "linear" or n <= 1:
        return np.linspace(init, target, n)
    if shape == "cosine":
        x = np.arange(n, dtype=np.float64) / (n - 1)
        return np.asarray(init + (target - init) * (1.0 - np.cos(np.pi * x)) / 2.0)
    if shape == "exponential":
        return np.geomspace(init, target, n) if target > 0 else np.linspace(init, target, n)
    raise ScheduleError(f"Unknown warmup_shape {shape!r}; use one of {', '.join(WARMUP_SHAPES)}.")


def evaluate(spec: Mapping[str, Any], total: int) -> FloatArray:
    """The LR of steps ``0 … total-1`` for a validated spec (past the spec's end: held)."""
    t = np.arange(total, dtype=np.float64)
    end = spec.get("total")
    if end is not None:
        t = np.minimum(t, float(end))
    w = int(spec["warmup"])
    kind = KINDS[spec["kind"]]
    lrs = np.asarray(kind.fn(t, spec), dtype=np.float64)
    if w > 0 and total > 0:
        n = min(w, total)
        target = float(spec["peak"]) if kind.warmup_target is None else kind.warmup_target(spec)
        # linear warmup follows numpy.linspace(init, peak, warmup): LR reaches peak at step w-1
        lrs[:n] = warmup_ramp(spec["warmup_shape"], float(spec["init"]), target, w)[:n]
    return lrs
