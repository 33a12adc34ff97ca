"""The instability guard at its defaults: false alarms on healthy runs, and injected spikes caught.

Every run of the corpus (bench/corpus: generated runs with a per-step training loss and the
gradient norm before clipping; the public per-step training curves of tdlt and pythia, loss
only) is fed step by step to an ``InstabilityGuard``. A decision other than "continue" on a run
that did not diverge is a false alarm. At ``--inject`` positions per run (after the guard's
warm-up, at steps with a positive loss), a copy of the guard as it stands there is shown that
step with the loss x10, the loss x100, the gradient norm x100 (the goal's three kinds), or the
loss and gradient norm both x10 (a hard batch made worse, reported, not a goal): caught when it
does not answer "continue".

An alarm within 10 steps of a *real instability* (the loss above its untrained value after it
had fallen below half of it: the model unlearned everything on that batch, found from the loss
alone) is counted apart, not as a false alarm. A miss is *inherent* when a healthy step of the
same run, within 100 steps, dominates the injection (its loss rose over its local level at least
as much, and its gradient norm no more; see ``inherent``): no detector monotone in those rises
catches the one without alarming on the other.

``coupled_z`` and ``coupled_growth`` are chosen leave-one-family-out over a small grid (a
finer one, offline, in bench/guard_frontier.py): for each family, the setting with the fewest
runs with a false alarm on the *other* families (then the fewest false alarms, then the best
worst-kind catch rate), scored on the held-out family. The setting chosen the same way on all
families is what the class ships; the script says whether they agree.

    .venv/bin/python bench/guard_alarms.py                 # the table in bench/README.md
    .venv/bin/python bench/guard_alarms.py --max-steps 3000 --inject 5 --grid default  # quick
    .venv/bin/python bench/guard_alarms.py --grid default --before 53f6be3  # the guard then
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import load
from runcast.steer import InstabilityGuard

# the coupled residuals' bar and the growth of their scale with the other value's rise
# (z_threshold 6 and coupled_factors (3, 20) were chosen the same way in session 9)
GRID: list[dict[str, Any]] = [
    {"coupled_z": z, "coupled_growth": g}
    for z, g in ((4.5, 0.3), (4.75, 0.3), (5.0, 0.3), (4.75, 0.2), (4.75, 0.5))
]
REAL_WITHIN = 10  # an alarm this close to a real instability (see real_instability) is no false one
INJECT = (
    ("loss x10", 10.0, 1.0),
    ("loss x100", 100.0, 1.0),
    ("grad x100", 1.0, 100.0),
    ("both x10", 10.0, 10.0),
)
GOAL = ("loss x10", "loss x100", "grad x100")


def guard_at(commit: str) -> Any:
    """The ``InstabilityGuard`` class as it was at a git commit of this repository."""
    root = Path(__file__).resolve().parent.parent
    src = subprocess.run(
        ["git", "show", f"{commit}:src/runcast/steer/_guard.py"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "guard_then.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("guard_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.InstabilityGuard


def defaults() -> dict[str, Any]:
    sig = inspect.signature(InstabilityGuard)
    out: dict[str, Any] = {}
    for k in GRID[0]:
        if k in sig.parameters:  # a guard from before a setting existed has none
            v = sig.parameters[k].default
            out[k] = tuple(float(x) for x in v) if isinstance(v, tuple) else float(v)
    return out


def label(opts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in opts.items())


def real_instability(loss: np.ndarray) -> np.ndarray:
    """Steps where a run that did not diverge still broke down: its loss above its untrained
    value (the median of its first 10 losses) after some loss had fallen below half of that
    (the model unlearned everything on that batch). Found from the loss alone, not by a guard."""
    ok = np.flatnonzero(np.isfinite(loss))
    if ok.size < 20:
        return np.zeros(0, dtype=np.int64)
    lv = loss[ok]
    init = float(np.median(lv[:10]))
    learnt = np.minimum.accumulate(lv) < 0.5 * init
    return ok[(lv > init) & learnt]


def _rises(x: np.ndarray, k: int = 10) -> np.ndarray:
    """Each value's rise over the median of the ``k`` before it (the guard's local level)."""
    out = np.zeros(x.size)
    for i in range(1, x.size):
        out[i] = x[i] - np.median(x[max(0, i - k) : i])
    return out


def inherent(
    loss: np.ndarray, grad: np.ndarray | None, t: int, lf: float, gf: float, span: int = 100
) -> bool:
    """Whether an injection at step ``t`` is dominated by a healthy step within ``span`` steps:
    one whose loss rose over its local level at least as much as the injected loss, and (with a
    gradient norm) whose gradient norm rose no more (for a gradient-norm spike: the mirror).
    Any detector that calls the injection a spike, and is monotone in those rises, would call
    that healthy step a spike too: such a miss is the price of no false alarm there."""
    lo, hi = max(0, t - span), min(loss.size, t + span + 1)
    ok = np.isfinite(loss[lo:hi]) & (loss[lo:hi] > 0)
    if grad is not None:
        ok &= np.isfinite(grad[lo:hi]) & (grad[lo:hi] > 0)
    idx = np.flatnonzero(ok) + lo
    i = int(np.searchsorted(idx, t))
    if i >= idx.size or idx[i] != t:
        return False
    a = _rises(np.log(loss[idx]))
    ta = a[i] + np.log(lf)
    others = np.arange(idx.size) != i
    if grad is None:
        return bool(np.any(a[others] >= ta))
    b = _rises(np.log(grad[idx]))
    tb = b[i] + np.log(gf)
    if gf == 1.0:
        dom = (a >= ta) & (b <= tb)
    elif lf == 1.0:
        dom = (b >= tb) & (a <= a[i])
    else:
        dom = (a >= ta) & (b >= tb)
    return bool(np.any(dom & others))


def streams(max_steps: int) -> list[tuple[str, str, np.ndarray, np.ndarray | None]]:
    """(family, run id, training loss, gradient norm or None) of every healthy run."""
    out = []
    for run in load.runs(public=False):
        if run.facts.get("diverged") or "train_loss" not in run.metrics:
            continue
        _, loss = run.arrays("train_loss")
        grad = run.arrays("grad_norm")[1] if "grad_norm" in run.metrics else None
        out.append(
            (run.family, run.id, loss[:max_steps], None if grad is None else grad[:max_steps])
        )
    for fam in ("tdlt", "pythia"):
        for run in load.runs(family=fam):
            if "train_loss" not in run.metrics:
                continue
            _, loss = run.arrays("train_loss")
            out.append((fam, run.id, loss[:max_steps], None))
    return out


def replay(
    loss: np.ndarray, grad: np.ndarray | None, opts: dict[str, Any], n_inject: int, seed: int
) -> tuple[list[tuple[int, str]], dict[str, list[bool]], dict[str, list[bool]]]:
    """The alarms (step, reason) on the clean stream, and per injection kind whether each was
    caught and whether it was inherent (see :func:`inherent`)."""
    g = InstabilityGuard("skip", **opts)
    ok = np.isfinite(loss) & (np.isfinite(grad) if grad is not None else True)
    idx = np.flatnonzero(ok)
    rng = np.random.default_rng(seed)
    start = g.min_history + 10
    pool = idx[(idx >= idx[min(start, idx.size - 1)]) & (loss[idx] > 0)]
    at = set(rng.choice(pool, size=min(n_inject, pool.size), replace=False).tolist())
    alarms: list[tuple[int, str]] = []
    caught: dict[str, list[bool]] = defaultdict(list)
    dominated: dict[str, list[bool]] = defaultdict(list)
    for t in idx:
        lv = float(loss[t])
        gv = float(grad[t]) if grad is not None else None
        if t in at:
            state = g.state_dict()
            for name, lf, gf in INJECT:
                if gv is None and gf != 1.0:
                    continue
                probe = InstabilityGuard("skip", **opts)
                probe.load_state_dict(state)
                d = probe.check(int(t), loss=lv * lf, grad_norm=None if gv is None else gv * gf)
                caught[name].append(d.action != "continue")
                dominated[name].append(inherent(loss, grad, int(t), lf, gf))
        d = g.check(int(t), loss=lv, grad_norm=gv)
        if d.action != "continue":
            alarms.append((int(t), d.reason))
    return alarms, caught, dominated


def pct(v: list[bool]) -> str:
    return f"{100 * np.mean(v):.1f}% ({sum(v)}/{len(v)})" if v else "—"


def measure(data: list[Any], opts: dict[str, Any], n_inject: int) -> dict[str, dict[str, Any]]:
    """Per family: runs, steps, false alarms, runs with one, caught lists, and the alarms."""
    rows: dict[str, dict[str, Any]] = {}
    for i, (fam, rid, loss, grad) in enumerate(data):
        alarms, caught, dominated = replay(loss, grad, opts, n_inject, seed=i)
        r = rows.setdefault(
            fam,
            {"runs": 0, "steps": 0, "alarms": 0, "alarm_runs": 0, "real": 0, "where": [],
             "real_where": [], **{k: [] for k, *_ in INJECT},
             **{f"{k} inherent": [] for k, *_ in INJECT}},
        )  # fmt: skip
        bad = real_instability(loss)
        near = [a for a in alarms if bad.size and np.min(np.abs(bad - a[0])) <= REAL_WITHIN]
        false = [a for a in alarms if a not in near]
        r["runs"] += 1
        r["steps"] += int(np.isfinite(loss).sum())
        r["alarms"] += len(false)
        r["alarm_runs"] += bool(false)
        r["real"] += len(near)
        if false:
            r["where"].append((rid, false))
        if near:
            r["real_where"].append((rid, near))
        for k, v in caught.items():
            r[k] += v
            r[f"{k} inherent"] += dominated[k]
    return rows


def objective(rows: dict[str, dict[str, Any]], fams: list[str]) -> tuple[float, float, float]:
    """Fewest runs with a false alarm, then fewest false alarms, then best worst-kind catch."""
    runs = sum(rows[f]["alarm_runs"] for f in fams)
    alarms = sum(rows[f]["alarms"] for f in fams)
    rates = []
    for k in GOAL:
        v = [x for f in fams for x in rows[f][k]]
        if v:
            rates.append(float(np.mean(v)))
    return runs, alarms, -min(rates)


def line(label: str, fam: str, r: dict[str, Any]) -> str:
    return (
        f"| {label} | {fam} | {r['runs']} | {r['steps']:,} | {r['alarms']} | {r['alarm_runs']} | "
        f"{r['real']} | " + " | ".join(pct(r[k]) for k, *_ in INJECT) + " |"
    )


def total(rows: dict[str, dict[str, Any]], fams: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: 0 for k in ("runs", "steps", "alarms", "alarm_runs", "real")}
    for k, *_ in INJECT:
        out[k] = []
        out[f"{k} inherent"] = []
    for f in fams:
        for k in ("runs", "steps", "alarms", "alarm_runs", "real"):
            out[k] += rows[f][k]
        for k, *_ in INJECT:
            out[k] += rows[f][k]
            out[f"{k} inherent"] += rows[f][f"{k} inherent"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-steps", type=int, default=20_000, help="steps read from each run")
    ap.add_argument("--inject", type=int, default=10, help="injection points per run")
    ap.add_argument("--grid", choices=("lofo", "default"), default="lofo",
                    help="lofo: choose the defaults leave-one-family-out; default: as shipped")  # fmt: skip
    ap.add_argument("--before", metavar="COMMIT",
                    help="measure the guard as it was at COMMIT (at its defaults) instead")  # fmt: skip
    args = ap.parse_args()
    if args.before:
        global InstabilityGuard
        InstabilityGuard = guard_at(args.before)
    t0 = time.perf_counter()
    data = streams(args.max_steps)
    shipped = defaults()
    grid = GRID if args.grid == "lofo" else [shipped]
    if shipped not in grid:
        grid = [*grid, shipped]
    results = []
    for opts in grid:
        results.append(measure(data, opts, args.inject))
        print(f"measured {opts} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    fams = sorted({f for f, *_ in data})
    head = (
        "| setting | family | runs | steps | false alarms | runs with one | at a real instability | "
        + " | ".join(f"{k} caught" for k, *_ in INJECT)
        + " |\n|---|---|---|---|---|---|---|"
        + "---|" * len(INJECT)
    )
    if len(grid) > 1:
        print("Held out: each family scored at the setting chosen on the other families\n")
        print(head)
        held: dict[str, Any] = {}
        for fam in fams:
            others = [f for f in fams if f != fam]
            i = min(range(len(grid)), key=lambda j: objective(results[j], others))
            g = grid[i]
            held[fam] = results[i][fam]
            print(line(label(g), fam, results[i][fam]))
        print(line("(held out)", "**all**", total(held, fams)))
        i = min(range(len(grid)), key=lambda j: objective(results[j], fams))
        print(f"\nChosen on all families: {grid[i]}; the class ships {shipped}"
              f" ({'the same' if grid[i] == shipped else 'DIFFERENT'}).")  # fmt: skip
    if len(grid) > 1:
        print("\nEvery setting on all families (the trade-off the choice makes)\n")
        print(head)
        for g, rows in zip(grid, results, strict=True):
            print(line(label(g), "**all**", total(rows, fams)))
    j = grid.index(shipped)
    print("\nAt the shipped defaults\n")
    print(head)
    for fam in fams:
        print(line("defaults", fam, results[j][fam]))
    print(line("defaults", "**all**", total(results[j], fams)))
    print("\nMisses at the defaults, and how many are inherent (dominated by a healthy step)\n")
    print("| family | " + " | ".join(f"{k} missed (inherent)" for k, *_ in INJECT) + " |")
    print("|---|" + "---|" * len(INJECT))
    for fam, r in [*((f, results[j][f]) for f in fams), ("**all**", total(results[j], fams))]:
        cells = []
        for k, *_ in INJECT:
            c, d = np.asarray(r[k], bool), np.asarray(r[f"{k} inherent"], bool)
            cells.append(f"{int((~c).sum())} ({int((~c & d).sum())})" if c.size else "—")
        print(f"| {fam} | " + " | ".join(cells) + " |")
    for title, key in (("Alarms at a real instability", "real_where"),
                       ("False alarms at the defaults", "where")):  # fmt: skip
        print(f"\n{title} (run: first steps and reason)\n")
        for fam in fams:
            for rid, alarms in results[j][fam][key]:
                steps = ", ".join(str(t) for t, _ in alarms[:5])
                print(f"- {rid}: {len(alarms)} at {steps}{' ...' if len(alarms) > 5 else ''}: "
                      f"{alarms[0][1]}")  # fmt: skip
    print(f"\n{len(data)} runs, {len(grid)} settings, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
