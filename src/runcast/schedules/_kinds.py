"""Schedule kinds: validation of spec dicts and vectorised evaluation.

Each kind is a function ``f(t, spec) -> lr`` over the float steps ``t >= warmup`` (numpy arrays);
warmup is applied in one place for all kinds. A kind's spec fields are declared next to it, so
validation errors can list what is allowed.
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

COMMON_DEFAULTS: dict[str, Any] = {"warmup": 0, "init": 0.0, "total": None}
DECAY_SHAPES = ("linear", "cosine", "1-sqrt", "square", "exponential")


@dataclass(frozen=True)
class Kind:
    """A schedule kind: its evaluator, required fields and optional fields with defaults."""

    fn: KindFn
    required: tuple[str, ...]
    optional: dict[str, Any] = field(default_factory=dict)
    doc: str = ""


KINDS: dict[str, Kind] = {}


def register(
    name: str, required: tuple[str, ...], optional: dict[str, Any] | None = None, doc: str = ""
) -> Callable[[KindFn], KindFn]:
    """Register a schedule kind under ``name`` (used by the spec language)."""

    def deco(fn: KindFn) -> KindFn:
        KINDS[name] = Kind(fn, required, dict(optional or {}), doc)
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
)
def _wsd(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    total, ds = s["total"], s["decay_start"]
    x = (t - ds) / max(total - ds, 1)
    out = decay(x, s["peak"], s["end"], s["decay_shape"])
    return np.where(t < ds, float(s["peak"]), out)


@register("two_stage", ("peak", "switch", "second"), doc="peak until switch, then second")
def _two_stage(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    return np.where(t < s["switch"], float(s["peak"]), float(s["second"]))


@register(
    "multistep",
    ("peak", "milestones"),
    {"gamma": 0.1},
    doc="peak, multiplied by gamma at each milestone step (e.g. 8-1-1: milestones at 80%, 90%)",
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
)
def _inverse_sqrt(t: FloatArray, s: Mapping[str, Any]) -> FloatArray:
    tau = float(s["timescale"] or max(s["warmup"], 1))
    return float(s["peak"]) * np.sqrt(tau / np.maximum(t, tau))


def _number(spec: Mapping[str, Any], key: str, *, positive: bool = False) -> float:
    val = spec[key]
    if isinstance(val, bool) or not isinstance(val, (int, float, np.integer, np.floating)):
        raise ScheduleError(f"Schedule field {key!r} must be a number, but got {val!r}.")
    val = float(val)
    if not np.isfinite(val) or val < 0 or (positive and val == 0):
        need = "positive" if positive else "non-negative"
        raise ScheduleError(f"Schedule field {key!r} must be finite and {need}, but got {val!r}.")
    return val


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
    out: dict[str, Any] = {**COMMON_DEFAULTS, **k.optional, **spec}
    out.pop("note", None)
    for key in ("peak", "end", "second", "init", "gamma"):
        if out.get(key) is not None:
            out[key] = _number(out, key)
    out["warmup"] = int(_number(out, "warmup"))
    if out.get("total") is not None:
        out["total"] = int(_number(out, "total", positive=True))
        if out["warmup"] > out["total"]:
            raise ScheduleError(
                f"warmup ({out['warmup']}) is longer than the schedule's total ({out['total']})."
            )
    if kind == "wsd":
        _validate_wsd(out)
    if kind == "multistep":
        ms = out["milestones"]
        if not isinstance(ms, (list, tuple)) or any(
            not isinstance(m, (int, float)) or m < 0 for m in ms
        ):
            raise ScheduleError(
                f"'milestones' must be a list of non-negative steps, but got {ms!r}."
            )
        out["milestones"] = sorted(int(m) for m in ms)
    if kind == "two_stage":
        out["switch"] = int(_number(out, "switch"))
    return out


def _validate_wsd(out: dict[str, Any]) -> None:
    total = out["total"]
    if out["decay_start"] is None and out["decay_fraction"] is None:
        raise ScheduleError(
            "A 'wsd' schedule needs 'decay_start' (a step) or 'decay_fraction' (the share of "
            "'total' spent decaying, e.g. 0.2)."
        )
    if out["decay_start"] is None:
        frac = _number(out, "decay_fraction")
        if not 0 <= frac <= 1:
            raise ScheduleError(f"'decay_fraction' must be in [0, 1], but got {frac!r}.")
        out["decay_start"] = round(total * (1.0 - frac))
    out.pop("decay_fraction", None)
    out["decay_start"] = int(_number(out, "decay_start"))
    if not out["warmup"] <= out["decay_start"] <= total:
        raise ScheduleError(
            f"'decay_start' ({out['decay_start']}) must lie between warmup ({out['warmup']}) "
            f"and total ({total})."
        )
    if out["decay_shape"] not in DECAY_SHAPES:
        raise ScheduleError(
            f"Unknown decay_shape {out['decay_shape']!r}; use one of {', '.join(DECAY_SHAPES)}."
        )


def evaluate(spec: Mapping[str, Any], total: int) -> FloatArray:
    """The LR of steps ``0 … total-1`` for a validated spec (past the spec's end: held)."""
    t = np.arange(total, dtype=np.float64)
    end = spec.get("total")
    if end is not None:
        t = np.minimum(t, float(end))
    w = int(spec["warmup"])
    lrs = np.asarray(KINDS[spec["kind"]].fn(t, spec), dtype=np.float64)
    if w > 0 and total > 0:
        n = min(w, total)
        peak = float(spec["peak"])
        # warmup follows numpy.linspace(init, peak, warmup): LR reaches peak at step warmup-1
        lrs[:n] = np.linspace(float(spec["init"]), peak, w)[:n]
    return lrs
