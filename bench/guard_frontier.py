"""How close can any guard come to "0 false alarms and every injected spike caught" on the corpus?

Offline, on the same healthy runs and the same injection points as bench/guard_alarms.py (the
generated runs, which log the gradient norm; the loss-only public runs are caught 100% there).
Each good step's *rises* are its log loss and log gradient norm over their local level (the
median of the 10 good steps before), exactly as ``InstabilityGuard`` sees them. An injection
moves one step's rise: loss x10 adds ln 10 to the loss rise, and so on.

1. **Oracle frontier.** A detector whose rule is a region of the (loss rise, gradient rise)
   plane, monotone (a loss spike: more loss rise, or less gradient rise, is no less a spike; the
   mirror for a gradient spike), and *the same over the W steps either side* of an injection,
   catches it with no false alarm there only if no healthy step within W dominates it. The
   share not dominated, per W, is an upper bound on any such detector's catch rate at 0 false
   alarms, whatever it is fitted on; W = the whole run bounds a rule fixed per run.
2. **Detectors**, causal, each from the last 100 healthy rises as the guard keeps them, scored
   on every healthy step (false alarms) and every injection (caught), with their bar chosen
   leave-one-family-out (the fewest runs with a false alarm on the other families, then the
   fewest alarms, then the best worst-kind catch):

   - ``shipped``: the guard's coupled residual (robust slope, MAD/q99 scale, Student-t bar);
   - ``hetero``: the same residual, its scale taken among the 30 past steps nearest in the
     other value's rise (a scale that grows with the gradient's rise);
   - ``envelope``: a monotone nonparametric rule: the loss rise must exceed, by a margin in
     units of the residual's scale, every past loss rise whose gradient rise was no smaller
     (mirror for the gradient);
   - ``runmax``: the shipped residual z against the largest z the run's healthy steps reached
     so far (a per-run conformal bar), times a factor; the Student-t bar while fewer than 200.

    .venv/bin/python bench/guard_frontier.py            # the tables in bench/README.md
"""

from __future__ import annotations

import argparse
import inspect
import math
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guard_alarms import REAL_WITHIN, real_instability, streams
from runcast.steer import InstabilityGuard
from runcast.steer._guard import _centre_scale, _gk_slope, z_needed

CACHE = Path(__file__).resolve().parent / "_cache" / "guard_frontier.pkl"
K = 10  # the guard's level_window
WINDOW = 100  # the guard's window
MIN_HISTORY = 20
N_INJECT = 10
KINDS = (("loss x10", math.log(10.0), 0.0), ("loss x100", math.log(100.0), 0.0),
         ("grad x100", 0.0, math.log(100.0)))  # fmt: skip
BOTH = "both x10"  # a hard batch made worse: reported, not a goal (coupled detectors only)
SPANS = (10, 25, 50, 100, 200, 500, 1000, None)


def rises(x: np.ndarray) -> np.ndarray:
    """x[i] over the median of the K values before it (nan at 0)."""
    out = np.full(x.size, np.nan)
    for i in range(1, min(K, x.size)):
        out[i] = x[i] - np.median(x[:i])
    if x.size > K:
        out[K:] = x[K:] - np.median(sliding_window_view(x[:-1], K), axis=1)
    return out


def positions(loss: np.ndarray, grad: np.ndarray, seed: int) -> np.ndarray:
    """The injection steps bench/guard_alarms.py draws for this run (same seed, same pool)."""
    ok = np.isfinite(loss) & np.isfinite(grad)
    idx = np.flatnonzero(ok)
    rng = np.random.default_rng(seed)
    start = MIN_HISTORY + 10
    pool = idx[(idx >= idx[min(start, idx.size - 1)]) & (loss[idx] > 0)]
    return np.sort(rng.choice(pool, size=min(N_INJECT, pool.size), replace=False))


def run_features(loss: np.ndarray, grad: np.ndarray, seed: int) -> dict[str, Any]:
    """Per good step j (positive finite loss and gradient norm): the rises a, b and, from the
    100 rises before j, the coupled statistics (``stats``: slope, centre, scale of a given b,
    the same of b given a, with the slope as the guard found it before; ``clamp``: the slope
    >= 0 as the guard has it now; ``mad``: the clamped residuals' MAD scale alone; ``med``: the
    median a and b rises, ``rmax`` the largest; ``alone``: centre and scale of the a rises), and the injected steps."""
    at = positions(loss, grad, seed)
    good = np.flatnonzero(np.isfinite(loss) & np.isfinite(grad) & (loss > 0) & (grad > 0))
    a, b = rises(np.log(loss[good])), rises(np.log(grad[good]))
    n = good.size
    stats, clamp = np.full((n, 6), np.nan), np.full((n, 6), np.nan)
    mad, med = np.full((n, 2), np.nan), np.full((n, 2), np.nan)
    alone, rmax = np.full((n, 2), np.nan), np.full((n, 2), np.nan)
    for j in range(MIN_HISTORY, n):
        lo = max(1, j - WINDOW)
        ra, rb = a[lo:j], b[lo:j]
        med[j] = np.median(ra), np.median(rb)
        rmax[j] = np.max(ra), np.max(rb)
        alone[j] = _centre_scale(ra, 1e-6)  # the loss judged alone (no gradient norm)
        for k, (own, other) in enumerate(((ra, rb), (rb, ra))):
            beta = _gk_slope(own, other)
            stats[j, 3 * k : 3 * k + 3] = beta, *_centre_scale(own - beta * other, 1e-6)
            if beta < 0:
                beta = 0.0
                clamp[j, 3 * k : 3 * k + 3] = beta, *_centre_scale(own, 1e-6)
            else:
                clamp[j, 3 * k : 3 * k + 3] = stats[j, 3 * k : 3 * k + 3]
            res = own - beta * other
            dev = np.abs(res - np.median(res))
            m = float(np.median(dev))
            mad[j, k] = max(1.4826 * m if m > 0 else 1.2533 * float(np.mean(dev)), 1e-6)
    return {"a": a, "b": b, "stats": stats, "clamp": clamp, "mad": mad, "med": med,
            "alone": alone, "rmax": rmax, "inj": np.searchsorted(good, at), "steps": good}  # fmt: skip


def near(steps: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Which steps lie within REAL_WITHIN of a step in ``bad`` (sorted)."""
    if not bad.size:
        return np.zeros(steps.size, bool)
    i = np.clip(np.searchsorted(bad, steps), 1, bad.size - 1) if bad.size > 1 else 0
    d = np.minimum(np.abs(steps - bad[i - 1 if bad.size > 1 else 0]), np.abs(steps - bad[i]))
    return d <= REAL_WITHIN


def features(max_steps: int) -> list[dict[str, Any]]:
    if CACHE.exists():
        with CACHE.open("rb") as f:
            cached: list[dict[str, Any]] = pickle.load(f)
        return cached
    out = []
    t0 = time.perf_counter()
    for i, (fam, rid, loss, grad) in enumerate(streams(max_steps)):
        if grad is None:
            continue
        r = run_features(loss, grad, seed=i)
        # alarms this close to a real instability are no false alarms (as in guard_alarms)
        r["near_real"] = near(r["steps"], real_instability(loss))
        out.append({"family": fam, "id": rid, **r})
        if len(out) % 20 == 0:
            print(f"{len(out)} runs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    CACHE.parent.mkdir(exist_ok=True)
    with CACHE.open("wb") as f:
        pickle.dump(out, f)
    return out


# --- the oracle frontier -------------------------------------------------------------------------
def dominated(a: np.ndarray, b: np.ndarray, j: int, da: float, db: float, span: int | None) -> bool:
    """Whether a healthy step within ``span`` good steps of j (None: the whole run) dominates
    step j's rises moved by (da, db)."""
    lo = 1 if span is None else max(1, j - span)
    hi = a.size if span is None else min(a.size, j + span + 1)
    sa, sb = a[lo:hi], b[lo:hi]
    ta, tb = a[j] + da, b[j] + db
    hit = (sa >= ta) & (sb <= tb) if db == 0.0 else (sb >= tb) & (sa <= ta)
    hit[j - lo] = False
    return bool(hit.any())


# --- detectors --------------------------------------------------------------------------------
# Each is (name, settings, alarms): alarms(r, setting) gives, on run r, which good steps from
# MIN_HISTORY on alarm (healthy) and, per injection kind, which injections are caught.
Alarms = tuple[np.ndarray, dict[str, np.ndarray]]
Scores = Alarms  # the same arrays as ratios to the bar
LN3, LN5, LN20 = math.log(3.0), math.log(5.0), math.log(20.0)
_NEED: dict[float, np.ndarray] = {}


def need(z: float, n: np.ndarray) -> np.ndarray:
    """The guard's Student-t bar (z_needed) for z and n rises."""
    if z not in _NEED:
        _NEED[z] = np.array([z_needed(z, k) if k else np.inf for k in range(WINDOW + 1)])
    return _NEED[z][n]


def _at(r: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The scored steps and the injections' positions among them."""
    n = r["a"].size
    j = np.arange(MIN_HISTORY, n)
    inj = np.array([i for i in r["inj"] if MIN_HISTORY <= i < n], dtype=np.int64) - MIN_HISTORY
    return j, inj


def coupled_ratios(stats: str, scale: str, one_sided: bool, cap: bool = True
                   ) -> Callable[[dict[str, Any], tuple[float, float]], Scores]:  # fmt: skip
    """The guard's coupled test as ratios to its bar (a spike over 1): each rise's residual
    given the other's, over its scale (grown by ``growth`` per unit the other rose above its
    median rise, up to the largest rise of it in the window with ``cap``), over z_needed(z);
    -inf under the least factors (3x loss, 20x gradient)."""

    def ratios(r: dict[str, Any], setting: tuple[float, float]) -> Scores:
        growth, z = setting
        j, inj = _at(r)
        st, md = r[stats][j], r["med"][j]
        sa, sb = (st[:, 2], st[:, 5]) if scale == "q99" else (r["mad"][j, 0], r["mad"][j, 1])
        bar = need(z, np.minimum(j - 1, WINDOW))

        def ratio(da: float, db: float) -> tuple[np.ndarray, np.ndarray]:
            xa, xb = r["a"][j] + da, r["b"][j] + db
            ra, rb = xa - st[:, 0] * xb - st[:, 1], xb - st[:, 3] * xa - st[:, 4]
            ea, eb = xb - md[:, 1], xa - md[:, 0]
            if one_sided:
                ea, eb = np.maximum(ea, 0.0), np.maximum(eb, 0.0)
            if cap:
                top = r["rmax"][j]
                ea = np.minimum(ea, np.maximum(top[:, 1] - md[:, 1], 0.0))
                eb = np.minimum(eb, np.maximum(top[:, 0] - md[:, 0], 0.0))
            ua = np.where(ra >= LN3, ra / np.hypot(sa, growth * ea) / bar, -np.inf)
            ub = np.where(rb >= LN20, rb / np.hypot(sb, growth * eb) / bar, -np.inf)
            return ua, ub

        ua, ub = ratio(0.0, 0.0)
        healthy = np.where(r["near_real"][j], -np.inf, np.maximum(ua, ub))
        out = {k: ratio(da, db)[0 if db == 0 else 1][inj] for k, da, db in KINDS}
        out[BOTH] = np.maximum(*ratio(math.log(10.0), math.log(10.0)))[inj]
        return healthy, out

    return ratios


def coupled(stats: str, scale: str, one_sided: bool, cap: bool = True
            ) -> Callable[[dict[str, Any], Any], Alarms]:  # fmt: skip
    """:func:`coupled_ratios` held to its bar."""
    ratios = coupled_ratios(stats, scale, one_sided, cap)

    def alarms(r: dict[str, Any], setting: tuple[float, float]) -> Alarms:
        healthy, inj = ratios(r, setting)
        return healthy > 1.0, {k: v > 1.0 for k, v in inj.items()}

    return alarms


def alone(r: dict[str, Any], z: float) -> Alarms:
    """The loss judged alone, as without a gradient norm (z_threshold, min_factor 5)."""
    j, inj = _at(r)
    c, s = r["alone"][j, 0], r["alone"][j, 1]
    bar = need(z, np.minimum(j - 1, WINDOW))

    def hit(da: float) -> np.ndarray:
        x = r["a"][j] + da
        return ((x - c) / s > bar) & (x >= LN5)

    caught = {k: hit(da)[inj] for k, da, db in KINDS if db == 0}
    return hit(0.0) & ~r["near_real"][j], caught


def _slow(name: str, score: Callable[[dict[str, Any], int, float, float], tuple[float, float]]
          ) -> Callable[[dict[str, Any], Any], Alarms]:  # fmt: skip
    """A detector scored step by step once (kept in the run's dict), then held to a bar."""

    def alarms(r: dict[str, Any], bar: float) -> Alarms:
        j, inj = _at(r)
        if name not in r:
            h = np.array([max(score(r, int(i), 0.0, 0.0)) for i in j])
            r[name] = (h, {k: np.array([score(r, int(i) + MIN_HISTORY, da, db)[db != 0]
                                        for i in inj]) for k, da, db in KINDS})  # fmt: skip
        h, inj_scores = r[name]
        return (h > bar) & ~r["near_real"][j], {k: v > bar for k, v in inj_scores.items()}

    return alarms


def local_scale(r: dict[str, Any], j: int, da: float, db: float) -> tuple[float, float]:
    """The residual over its scale among the 30 past steps nearest in the other rise, in units
    of z_needed(6) for 30 values."""
    st, lo = r["clamp"][j], max(1, j - WINDOW)
    pa, pb = r["a"][lo:j], r["b"][lo:j]
    xa, xb = r["a"][j] + da, r["b"][j] + db
    out = []
    for x, y, px, py, beta, c, gate in ((xa, xb, pa, pb, st[0], st[1], LN3),
                                        (xb, xa, pb, pa, st[3], st[4], LN20)):  # fmt: skip
        near_ = np.argsort(np.abs(py - y), kind="stable")[:30]
        local = _centre_scale((px - beta * py - c)[near_], 1e-6)[1]
        rx = x - beta * y - c
        out.append(rx / local / z_needed(6.0, near_.size) if rx >= gate else -np.inf)
    return out[0], out[1]


def _spread(x: np.ndarray) -> float:
    return max(1.4826 * float(np.median(np.abs(x - np.median(x)))), 1e-6)


def envelope(r: dict[str, Any], j: int, da: float, db: float) -> tuple[float, float]:
    """The margin by which the point lies beyond the past cloud's dominance envelope: the least
    d (in robust spreads) such that a past step's loss rise was >= this one's - d and its
    gradient rise <= this one's + d (a loss spike; the mirror for the gradient). No model."""
    lo = max(1, j - WINDOW)
    pa, pb = r["a"][lo:j], r["b"][lo:j]
    xa, xb = r["a"][j] + da, r["b"][j] + db
    s_a, s_b = _spread(pa), _spread(pb)
    loss = float(np.min(np.maximum((xa - pa) / s_a, (pb - xb) / s_b)))
    grad = float(np.min(np.maximum((xb - pb) / s_b, (pa - xa) / s_a)))
    ga = xa - float(np.median(pa)) >= LN3
    gb = xb - float(np.median(pb)) >= LN20
    return (loss if ga else -np.inf), (grad if gb else -np.inf)


SHIPPED = "**slope >= 0, growth up to the largest rise seen (shipped)**"
Z = (4.5, 4.75, 5.0, 5.25, 5.5, 6.0)
GROWTH = (0.1, 0.2, 0.3, 0.5)
DETECTORS: list[tuple[str, list[Any], Callable[[dict[str, Any], Any], Alarms]]] = [
    ("session 9 (slope as found, no growth)", [(0.0, z) for z in (*Z, 6.5)],
     coupled("stats", "q99", True)),
    ("slope >= 0, no growth", [(0.0, z) for z in Z], coupled("clamp", "q99", True)),
    (SHIPPED, [(g, z) for g in GROWTH for z in Z], coupled("clamp", "q99", True)),
    ("slope >= 0, growth without bound", [(g, z) for g in GROWTH for z in Z],
     coupled("clamp", "q99", True, cap=False)),
    ("slope >= 0, growth either way", [(g, z) for g in GROWTH for z in Z],
     coupled("clamp", "q99", False)),
    ("slope >= 0, growth, MAD scale only", [(g, z) for g in GROWTH for z in Z],
     coupled("clamp", "mad", True)),
    ("scale among the 30 nearest in the other rise", [0.6, 0.8, 1.0, 1.2, 1.5],
     _slow("local", local_scale)),
    ("dominance envelope (no model)", [2.0, 3.0, 4.0, 5.0, 6.0, 7.0], _slow("env", envelope)),
]  # fmt: skip


def tally(data: list[dict[str, Any]], fn: Callable[[dict[str, Any], Any], Alarms], setting: Any
          ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per family: runs, runs with a false alarm, false alarms, and per kind the caught list."""
    rows: dict[str, dict[str, Any]] = {}
    for r in data:
        fa, caught = fn(r, setting)
        row = rows.setdefault(r["family"], {"runs": 0, "alarm_runs": 0, "alarms": 0, BOTH: [],
                                            **{k: [] for k, *_ in KINDS}})  # fmt: skip
        row["runs"] += 1
        row["alarms"] += int(fa.sum())
        row["alarm_runs"] += bool(fa.any())
        for k, v in caught.items():
            row[k] += v.tolist()
    return rows


def objective(rows: dict[str, dict[str, Any]], fams: list[str]) -> tuple[float, float, float]:
    """Fewest runs with a false alarm, then fewest false alarms, then best worst-kind catch."""
    rates = [np.mean([x for f in fams for x in rows[f][k]]) for k, *_ in KINDS
             if any(rows[f][k] for f in fams)]  # fmt: skip
    return (sum(rows[f]["alarm_runs"] for f in fams), sum(rows[f]["alarms"] for f in fams),
            -float(min(rates)))  # fmt: skip


def pooled(rows: dict[str, dict[str, Any]], fams: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: sum(rows[f][k] for f in fams) for k in ("runs", "alarm_runs",
                                                                          "alarms")}  # fmt: skip
    for k in [*(k for k, *_ in KINDS), BOTH]:
        out[k] = [x for f in fams for x in rows[f][k]]
    return out


def pct(v: list[bool]) -> str:
    return f"{100 * np.mean(v):.1f}%" if v else "—"


def show(setting: Any) -> str:
    return f"growth {setting[0]:g}, z {setting[1]:g}" if isinstance(setting, tuple) else (
        f"bar {setting:g}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-steps", type=int, default=20_000)
    ap.add_argument("--fast", action="store_true", help="skip the two step-by-step detectors")
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = features(args.max_steps)
    fams = sorted({r["family"] for r in data})
    kinds = [k for k, *_ in KINDS]
    print(f"{len(data)} runs with a gradient norm, {sum(r['a'].size for r in data):,} steps\n")

    print("Oracle frontier: injections no healthy step within W steps dominates\n")
    print("| W (steps either side) | " + " | ".join(f"{k} catchable" for k in kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    frontier: dict[Any, dict[str, dict[str, list[bool]]]] = {}
    for span in SPANS:
        per: dict[str, dict[str, list[bool]]] = {f: {k: [] for k in kinds} for f in fams}
        for r in data:
            for i in r["inj"]:
                if MIN_HISTORY <= i < r["a"].size:
                    for k, da, db in KINDS:
                        per[r["family"]][k].append(
                            not dominated(r["a"], r["b"], int(i), da, db, span)
                        )
        frontier[span] = per
        cells = [f"{pct([x for f in fams for x in per[f][k]])} "
                 f"({sum(not x for f in fams for x in per[f][k])} not)" for k in kinds]  # fmt: skip
        print(f"| {span or 'whole run'} | " + " | ".join(cells) + " |")

    print("\nDetectors, each setting chosen leave-one-family-out (held out) and on all families\n")
    print("| detector | held out: false alarms (runs) | " + " | ".join(kinds)
          + " | chosen on all | false alarms (runs) | " + " | ".join([*kinds, BOTH])
          + " |")  # fmt: skip
    print("|---|---|" + "---|" * len(kinds) + "---|---|" + "---|" * (len(kinds) + 1))
    chosen: dict[str, tuple[Any, dict[str, dict[str, Any]]]] = {}
    notes: list[str] = []
    for name, settings, fn in DETECTORS:
        if args.fast and fn.__qualname__.startswith("_slow"):
            continue
        results = [tally(data, fn, s) for s in settings]
        held, picks = {}, {}
        for fam in fams:
            others = [f for f in fams if f != fam]
            i = min(range(len(settings)), key=lambda j: objective(results[j], others))
            held[fam], picks[fam] = results[i][fam], settings[i]
        h = pooled(held, fams)
        i = min(range(len(settings)), key=lambda j: objective(results[j], fams))
        folds = [f"{f}: {show(picks[f])}, {held[f]['alarms']} false alarms, loss x10 "
                 f"{pct(held[f]['loss x10'])}" for f in fams if picks[f] != settings[i]]  # fmt: skip
        notes.append(f"- {name}: held-out folds choosing otherwise: {'; '.join(folds) or 'none'}")
        a = pooled(results[i], fams)
        chosen[name] = (settings[i], results[i])
        print(f"| {name} | {h['alarms']} ({h['alarm_runs']}) | "
              + " | ".join(pct(h[k]) for k in kinds)
              + f" | {show(settings[i])} | {a['alarms']} ({a['alarm_runs']}) | "
              + " | ".join(pct(a[k]) for k in [*kinds, BOTH]) + " |")  # fmt: skip
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    print("", *notes, sep="\n")
    if any(k in data[0] for k in ("local", "env")):
        with CACHE.open("wb") as f:
            pickle.dump(data, f)  # the step-by-step detectors' scores, for the next run

    print("\nLoss judged alone (no gradient norm; z_threshold, min_factor 5), on the same runs\n")
    print("| z_threshold | false alarms (runs) | loss x10 | loss x100 |\n|---|---|---|---|")
    for z in (4.75, 5.0, 5.5, 6.0):
        a = pooled(tally(data, alone, z), fams)
        print(f"| {z:g} | {a['alarms']} ({a['alarm_runs']}) | {pct(a['loss x10'])} | "
              f"{pct(a['loss x100'])} |")  # fmt: skip

    print("\nThe shipped score with each run's own bar (its largest healthy ratio: per-run "
          "calibration by an oracle), against the one bar (1) the class ships\n")  # fmt: skip
    print("| setting | " + " | ".join(f"{k}: one bar / per-run oracle bar" for k in kinds)
          + " |\n|---|" + "---|" * len(kinds))  # fmt: skip
    ratios = coupled_ratios("clamp", "q99", True)
    sig = inspect.signature(InstabilityGuard).parameters
    shipped = (sig["coupled_growth"].default, sig["coupled_z"].default)
    for setting in ((0.0, 6.0), shipped):
        one: dict[str, list[bool]] = {k: [] for k in kinds}
        own: dict[str, list[bool]] = {k: [] for k in kinds}
        for r in data:
            healthy, inj = ratios(r, setting)
            top = max(float(np.max(healthy, initial=-np.inf)), 0.0)
            for k in kinds:
                one[k] += (inj[k] > 1.0).tolist()
                own[k] += (inj[k] > top).tolist()
        print(f"| slope >= 0, growth capped, {show(setting)} | "
              + " | ".join(f"{pct(one[k])} / {pct(own[k])}" for k in kinds) + " |")  # fmt: skip

    best = chosen[SHIPPED][0]
    print(f"\nThe class ships {show(shipped)}; chosen on all families: {show(best)} "
          f"({'the same' if best == shipped else 'DIFFERENT'}).")  # fmt: skip
    new = (shipped, tally(data, coupled("clamp", "q99", True), shipped))
    print(
        f"\nPer family: session 9's guard (z 6) and the shipped one ({show(new[0])}), chosen on"
        " all families, against the oracle frontier (W = 100 steps either side / whole run)\n"
    )
    print("| family | runs | false alarms old/new | " + " | ".join(
        f"{k}: old / new / frontier 100 / run" for k in kinds) + " |")  # fmt: skip
    print("|---|---|---|" + "---|" * len(kinds))
    s9 = tally(data, coupled("stats", "q99", True), (0.0, 6.0))
    for fam in [*fams, "**all**"]:
        fs = fams if fam == "**all**" else [fam]
        o, n_ = pooled(s9, fs), pooled(new[1], fs)
        cells = []
        for k in kinds:
            f100 = [x for f in fs for x in frontier[100][f][k]]
            frun = [x for f in fs for x in frontier[None][f][k]]
            cells.append(f"{pct(o[k])} / {pct(n_[k])} / {pct(f100)} / {pct(frun)}")
        print(f"| {fam} | {o['runs']} | {o['alarms']} / {n_['alarms']} | " + " | ".join(cells)
              + " |")  # fmt: skip
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
