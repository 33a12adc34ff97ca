"""The instability guard at its defaults: false alarms on healthy runs, and injected spikes caught.

Every run of the corpus (bench/corpus: generated runs with a per-step training loss and the
gradient norm before clipping; the public per-step training curves of tdlt and pythia, loss
only) is fed step by step to an ``InstabilityGuard``. A decision other than "continue" on a run
that did not diverge is a false alarm. At ``--inject`` positions per run (after the guard's
warm-up, at steps with a positive loss), a copy of the guard as it stands there is shown that
step with the loss x10, the loss x100, the gradient norm x100 (the goal's three kinds), or the
loss and gradient norm both x10 (a hard batch made worse, reported, not a goal): caught when it
does not answer "continue".

The defaults are chosen leave-one-family-out over a small grid of ``z_threshold`` and
``min_factor``: for each family, the setting with the fewest runs with a false alarm on the
*other* families (then the fewest false alarms, then the best worst-kind catch rate), scored on
the held-out family. The setting chosen the same way on all families is what the class ships;
the script says whether they agree.

    .venv/bin/python bench/guard_alarms.py                 # the table in bench/README.md
    .venv/bin/python bench/guard_alarms.py --max-steps 3000 --inject 5 --grid default  # quick
    .venv/bin/python bench/guard_alarms.py --grid default --before e59a620  # the guard then
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

GRID = [{"z_threshold": z, "min_factor": m} for z in (5.0, 6.0, 8.0) for m in (3.0, 5.0)]
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


def defaults() -> dict[str, float]:
    sig = inspect.signature(InstabilityGuard)
    return {k: float(sig.parameters[k].default) for k in ("z_threshold", "min_factor")}


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
) -> tuple[list[tuple[int, str]], dict[str, list[bool]]]:
    """The false alarms (step, reason) on the clean stream, and per injection kind whether each
    was caught."""
    g = InstabilityGuard("skip", **opts)
    ok = np.isfinite(loss) & (np.isfinite(grad) if grad is not None else True)
    idx = np.flatnonzero(ok)
    rng = np.random.default_rng(seed)
    start = g.min_history + 10
    pool = idx[(idx >= idx[min(start, idx.size - 1)]) & (loss[idx] > 0)]
    at = set(rng.choice(pool, size=min(n_inject, pool.size), replace=False).tolist())
    alarms: list[tuple[int, str]] = []
    caught: dict[str, list[bool]] = defaultdict(list)
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
        d = g.check(int(t), loss=lv, grad_norm=gv)
        if d.action != "continue":
            alarms.append((int(t), d.reason))
    return alarms, caught


def pct(v: list[bool]) -> str:
    return f"{100 * np.mean(v):.1f}% ({sum(v)}/{len(v)})" if v else "—"


def measure(data: list[Any], opts: dict[str, Any], n_inject: int) -> dict[str, dict[str, Any]]:
    """Per family: runs, steps, false alarms, runs with one, caught lists, and the alarms."""
    rows: dict[str, dict[str, Any]] = {}
    for i, (fam, rid, loss, grad) in enumerate(data):
        alarms, caught = replay(loss, grad, opts, n_inject, seed=i)
        r = rows.setdefault(
            fam,
            {"runs": 0, "steps": 0, "alarms": 0, "alarm_runs": 0, "where": [],
             **{k: [] for k, *_ in INJECT}},
        )  # fmt: skip
        r["runs"] += 1
        r["steps"] += int(np.isfinite(loss).sum())
        r["alarms"] += len(alarms)
        r["alarm_runs"] += bool(alarms)
        if alarms:
            r["where"].append((rid, alarms))
        for k, v in caught.items():
            r[k] += v
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
        + " | ".join(pct(r[k]) for k, *_ in INJECT)
        + " |"
    )


def total(rows: dict[str, dict[str, Any]], fams: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: 0 for k in ("runs", "steps", "alarms", "alarm_runs")}
    for k, *_ in INJECT:
        out[k] = []
    for f in fams:
        for k in ("runs", "steps", "alarms", "alarm_runs"):
            out[k] += rows[f][k]
        for k, *_ in INJECT:
            out[k] += rows[f][k]
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
        "| setting | family | runs | steps | false alarms | runs with one | "
        + " | ".join(f"{k} caught" for k, *_ in INJECT)
        + " |\n|---|---|---|---|---|---|"
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
            label = f"z {g['z_threshold']:g}, x{g['min_factor']:g}"
            print(line(label, fam, results[i][fam]))
        print(line("(held out)", "**all**", total(held, fams)))
        i = min(range(len(grid)), key=lambda j: objective(results[j], fams))
        print(f"\nChosen on all families: {grid[i]}; the class ships {shipped}"
              f" ({'the same' if grid[i] == shipped else 'DIFFERENT'}).")  # fmt: skip
    if len(grid) > 1:
        print("\nEvery setting on all families (the trade-off the choice makes)\n")
        print(head)
        for g, rows in zip(grid, results, strict=True):
            print(
                line(f"z {g['z_threshold']:g}, x{g['min_factor']:g}", "**all**", total(rows, fams))
            )
    j = grid.index(shipped)
    print("\nAt the shipped defaults\n")
    print(head)
    for fam in fams:
        print(line("defaults", fam, results[j][fam]))
    print(line("defaults", "**all**", total(results[j], fams)))
    print("\nFalse alarms at the defaults (run: first steps and reason)\n")
    for fam in fams:
        for rid, alarms in results[j][fam]["where"]:
            steps = ", ".join(str(t) for t, _ in alarms[:5])
            print(f"- {rid}: {len(alarms)} at {steps}{' ...' if len(alarms) > 5 else ''}: "
                  f"{alarms[0][1]}")  # fmt: skip
    print(f"\n{len(data)} runs, {len(grid)} settings, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
