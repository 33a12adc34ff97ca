"""Every schedule kind against a plain per-step reference, plus shape properties and bad specs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from runcast import Schedule
from runcast.errors import ScheduleError
from runcast.schedules import DECAY_SHAPES

PEAK = 3e-4


def ref_decay(x: float, start: float, end: float, shape: str) -> float:
    x = min(max(x, 0.0), 1.0)
    if shape == "linear":
        return start + (end - start) * x
    if shape == "cosine":
        return end + (start - end) * (1 + math.cos(math.pi * x)) / 2
    if shape == "1-sqrt":
        return end + (start - end) * (1 - math.sqrt(x))
    if shape == "square":
        return end + (start - end) * (1 - x * x)
    assert shape == "exponential"
    return start ** (1 - x) * end**x


def ref_after_warmup(s: dict[str, Any], t: float) -> float:
    """The README's formulas written out one step at a time (t already clamped to total)."""
    kind, peak, w = s["kind"], s["peak"], s.get("warmup", 0)
    if kind == "constant":
        return peak
    if kind in ("linear", "cosine"):
        return ref_decay((t - w) / (s["total"] - w), peak, s.get("end", 0.0), kind)
    if kind == "wsd":
        ds = s["decay_start"]
        if t < ds:
            return peak
        return ref_decay((t - ds) / (s["total"] - ds), peak, s["end"], s["decay_shape"])
    if kind == "two_stage":
        return peak if t < s["switch"] else s["second"]
    if kind == "multistep":
        return peak * s["gamma"] ** sum(1 for m in s["milestones"] if t >= m)
    if kind == "inverse_sqrt":
        tau = s.get("timescale") or max(w, 1)
        return peak * math.sqrt(tau / max(t, tau))
    if kind == "cyclic":
        u, k, start, length = t - w, 0, 0.0, float(s["period"])
        while u >= start + length:  # walk the cycles one by one
            start, length, k = start + length, length * s.get("period_mult", 1.0), k + 1
        x = (u - start) / length
        base = s.get("base", 0.0)
        top = base + (peak - base) * s.get("decay", 1.0) ** k
        if s.get("shape", "cosine") == "cosine":
            return base + (top - base) * (1 + math.cos(math.pi * x)) / 2
        return base + (top - base) * abs(1 - 2 * x)
    if kind == "power":

        def pw(step: float) -> float:
            n = step * s.get("tokens_per_step", 1.0)
            return peak if n == 0 else min(peak, s.get("batch_size", 1.0) * s["a"] * n ** s["b"])

        ds = s.get("decay_start")
        if ds is None or t < ds:
            return pw(t)
        return ref_decay((t - ds) / (s["total"] - ds), pw(ds), s["end"], "exponential")
    raise AssertionError(kind)


def ref_lrs(s: dict[str, Any], n: int) -> list[float]:
    out = []
    w, init = s.get("warmup", 0), s.get("init", 0.0)
    for t in range(n):
        tc = min(t, s["total"]) if s.get("total") else t
        if t < w:
            target = ref_after_warmup(s, w) if s["kind"] == "power" else s["peak"]
            shape = s.get("warmup_shape", "linear")
            x = t / (w - 1)
            if shape == "linear":
                out.append(init + (target - init) * x)
            elif shape == "cosine":
                out.append(init + (target - init) * (1 - math.cos(math.pi * x)) / 2)
            else:
                out.append(init * (target / init) ** x)
        else:
            out.append(ref_after_warmup(s, tc))
    return out


BASE = {"peak": PEAK, "warmup": 10, "total": 200}
SPECS: dict[str, dict[str, Any]] = {
    "constant": {"kind": "constant", **BASE},
    "linear": {"kind": "linear", **BASE, "end": 3e-5},
    "cosine": {"kind": "cosine", **BASE, "end": 3e-5},
    "cosine-to-0": {"kind": "cosine", **BASE},
    **{
        f"wsd-{shape}": {
            "kind": "wsd",
            **BASE,
            "decay_start": 150,
            "end": 3e-6,
            "decay_shape": shape,
        }
        for shape in DECAY_SHAPES
    },
    "two_stage": {"kind": "two_stage", **BASE, "switch": 120, "second": 9e-5},
    "multistep": {"kind": "multistep", **BASE, "milestones": [160, 180], "gamma": 0.316},
    "inverse_sqrt": {"kind": "inverse_sqrt", **BASE},
    "inverse_sqrt-tau": {"kind": "inverse_sqrt", **BASE, "timescale": 40},
    "cyclic-cosine": {"kind": "cyclic", **BASE, "period": 50, "base": 1e-5},
    "cyclic-triangular": {"kind": "cyclic", **BASE, "period": 40, "shape": "triangular"},
    "cyclic-mult-decay": {
        "kind": "cyclic",
        **BASE,
        "period": 20,
        "period_mult": 2.0,
        "decay": 0.5,
    },
    "power": {"kind": "power", **BASE, "a": 0.5, "b": -0.51, "tokens_per_step": 4e5},
    "power-decay": {
        "kind": "power",
        **BASE,
        "a": 0.5,
        "b": -0.51,
        "tokens_per_step": 4e5,
        "decay_start": 180,
        "end": 1e-7,
    },
    "cosine-warmup-cosine": {"kind": "cosine", **BASE, "warmup_shape": "cosine", "init": 1e-5},
    "wsd-warmup-exponential": {
        "kind": "wsd",
        **BASE,
        "warmup_shape": "exponential",
        "init": 3e-6,
        "decay_fraction": 0.2,
    },
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_vectorised_matches_reference(name: str) -> None:
    spec = SPECS[name]
    s = Schedule.from_spec(spec)
    ref_spec = s.to_spec()  # normalised: fractions resolved to steps, defaults filled in
    # 240 > total: also checks that the LR is held past the planned end
    np.testing.assert_allclose(s.array(240), ref_lrs(ref_spec, 240), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "name", [n for n in sorted(SPECS) if "warmup" not in n and "power" not in n]
)
def test_warmup_is_exactly_linspace(name: str) -> None:
    lrs = Schedule.from_spec(SPECS[name]).array()
    # the README's spec semantics, bit for bit: numpy.linspace(0, peak, warmup)
    np.testing.assert_array_equal(lrs[:10], np.linspace(0.0, PEAK, 10))


@pytest.mark.parametrize("name", [n for n in sorted(SPECS) if "power" not in n])
def test_peak_is_reached_and_never_exceeded(name: str) -> None:
    lrs = Schedule.from_spec(SPECS[name]).array()
    assert lrs.max() == pytest.approx(PEAK, rel=1e-12)  # the schedule's scale is its peak
    assert lrs.min() >= 0.0


DECAYING = ["linear", "cosine", "cosine-to-0", "multistep", "inverse_sqrt", "power", "two_stage"]
DECAYING += [f"wsd-{shape}" for shape in DECAY_SHAPES] + ["power-decay"]


@pytest.mark.parametrize("name", DECAYING)
def test_monotone_after_warmup(name: str) -> None:
    lrs = Schedule.from_spec(SPECS[name]).array()
    assert (np.diff(lrs[10:]) <= 1e-18).all()  # a decay schedule never rises after warmup


@pytest.mark.parametrize(
    "name", ["linear", "cosine", "cosine-to-0", *[f"wsd-{s}" for s in DECAY_SHAPES]]
)
def test_end_reached_at_total(name: str) -> None:
    s = Schedule.from_spec(SPECS[name])
    end = SPECS[name].get("end", 0.0)
    assert s(200) == pytest.approx(end, rel=1e-12, abs=1e-18)  # `end` is the LR at step total
    assert s(10_000) == s(200)  # and it is held afterwards


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_round_trips(name: str) -> None:
    s = Schedule.from_spec(SPECS[name])
    again = Schedule.from_spec(s.to_spec())
    assert again == s and hash(again) == hash(s)  # normalised specs validate to themselves
    np.testing.assert_array_equal(again.array(), s.array())


def test_811_from_fractions_matches_steps() -> None:
    a = Schedule.from_spec(
        {
            "kind": "multistep",
            "peak": 1.0,
            "total": 1000,
            "milestone_fractions": [0.8, 0.9],
            "gamma": 0.316,
        }
    )
    b = Schedule.from_spec(
        {"kind": "multistep", "peak": 1.0, "total": 1000, "milestones": [800, 900], "gamma": 0.316}
    )
    assert a == b  # fractions resolve to steps of total
    assert a(799) == 1.0 and a(800) == 0.316 and a(999) == pytest.approx(0.316**2)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"kind": "cosin", "peak": 1.0, "total": 10}, "Unknown schedule kind 'cosin'"),
    ({"kind": "cosine", "peak": 1.0, "total": 10, "ende": 0.1}, "does not take 'ende'"),
    ({"kind": "cosine", "total": 10}, "needs 'peak'"),
    ({"kind": "cosine", "peak": -1.0, "total": 10}, "'peak' must be finite and non-negative"),
    ({"kind": "cosine", "peak": float("nan"), "total": 10}, "'peak' must be finite"),
    ({"kind": "cosine", "peak": float("inf"), "total": 10}, "'peak' must be finite"),
    ({"kind": "cosine", "peak": "big", "total": 10}, "'peak' must be a number"),
    ({"kind": "cosine", "peak": 1.0, "total": 10, "warmup": 20}, "longer than"),
    ({"kind": "cosine", "peak": 1.0, "total": 10.5}, "must be whole"),
    ({"kind": "cosine", "peak": 1.0, "total": 10, "warmup_shape": "step"}, "warmup_shape"),
    (
        {"kind": "cosine", "peak": 1.0, "total": 10, "warmup": 5, "warmup_shape": "exponential"},
        "positive 'init'",
    ),
    ({"kind": "wsd", "peak": 1.0, "total": 10}, "needs 'decay_start'"),
    ({"kind": "wsd", "peak": 1.0, "total": 10, "decay_start": 11}, "must lie between"),
    ({"kind": "wsd", "peak": 1.0, "total": 10, "decay_fraction": 1.5}, r"in \[0, 1\]"),
    (
        {"kind": "wsd", "peak": 1.0, "total": 10, "decay_start": 8, "decay_fraction": 0.2},
        "not both",
    ),
    (
        {"kind": "wsd", "peak": 1.0, "total": 10, "decay_start": 8, "decay_shape": "sqrt"},
        "Unknown decay_shape 'sqrt'",
    ),
    ({"kind": "multistep", "peak": 1.0}, "exactly one of 'milestones'"),
    ({"kind": "multistep", "peak": 1.0, "milestones": [5, -1]}, "non-negative steps"),
    ({"kind": "multistep", "peak": 1.0, "milestone_fractions": [0.8]}, "needs 'total'"),
    ({"kind": "multistep", "peak": 1.0, "milestones": [5], "gamma": 3.0}, "gamma"),
    ({"kind": "cyclic", "peak": 1.0, "period": 0}, "'period' must be finite and positive"),
    ({"kind": "cyclic", "peak": 1.0, "period": 10, "period_mult": 0.5}, "period_mult"),
    ({"kind": "cyclic", "peak": 1.0, "period": 10, "shape": "saw"}, "Unknown cyclic shape"),
    ({"kind": "cyclic", "peak": 1.0, "period": 10, "base": 2.0}, "must not exceed"),
    ({"kind": "power", "peak": 1.0, "b": 0.5}, r"'b' must be in \(-1, 0\)"),
    ({"kind": "power", "peak": 1.0, "decay_start": 5}, "needs 'total'"),
    ({"kind": "sequence", "phases": []}, "non-empty list"),
    ({"kind": "sequence", "phases": [{"kind": "constant", "peak": 1.0}]}, "with 'steps'"),
    (
        {"kind": "sequence", "phases": [{"kind": "constant", "peak": -1.0, "steps": 5}]},
        "Phase 0 of the sequence: Schedule field 'peak'",
    ),
    (
        {"kind": "sequence", "total": 9, "phases": [{"kind": "constant", "peak": 1.0, "steps": 5}]},
        "differs from the sum",
    ),
    (
        {
            "kind": "sequence",
            "warmup": 3,
            "phases": [{"kind": "constant", "peak": 1.0, "steps": 5}],
        },
        "no 'warmup' of its own",
    ),
]


@pytest.mark.parametrize(("spec", "match"), BAD, ids=[m[:30] for _, m in BAD])
def test_bad_specs_name_the_problem(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(ScheduleError, match=match):
        Schedule.from_spec(spec)
