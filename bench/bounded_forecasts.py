"""Forecasts never leave a metric's possible range, and every loss gets one.

For every run of the corpus (bench/corpus: generated runs and the public curves) and every
metric with known bounds (``val_loss``, ``train_loss`` above 0; ``val_acc`` in [0, 1]), the run
is forecast to its end from each cut-off with ``runcast.forecast`` (method ``auto``, the run's
schedule when it has one). Counted: forecasts refused (an error instead of a forecast), and
forecasts whose 95% interval at any step leaves the bounds; and, side by side on the same cuts,
the same forecasts with ``bounds=None`` (before bounds were inferred).

    .venv/bin/python bench/bounded_forecasts.py
    .venv/bin/python bench/bounded_forecasts.py --cutoffs 0.2,0.5 --max-runs 20   # quicker
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import runcast
from corpus import load
from runcast.errors import RuncastError
from runcast.forecast._bounds import infer_bounds

METRICS = ("val_loss", "train_loss", "val_acc")


def one(curve: Any, sched: Any, until: int, bounds: Any) -> tuple[str, bool]:
    """("ok" | "refused: <error>", whether its 95% band left the bounds)."""
    b = infer_bounds(curve.name, curve.finite().value)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {} if bounds == "auto" else {"bounds": None}
            f = runcast.forecast(curve, until, sched, noise=True, **kw)
    except (RuncastError, ValueError, ArithmeticError) as err:
        return f"refused: {type(err).__name__}", False
    lo, hi = f.interval(0.95)
    out = b is not None and bool((lo < b.lo).any() or (hi > b.hi).any())
    return "ok", out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cutoffs", default="0.1,0.2,0.3,0.5,0.7")
    ap.add_argument("--max-runs", type=int, default=0, help="runs per family (0: all)")
    args = ap.parse_args()
    cuts = [float(c) for c in args.cutoffs.split(",")]
    t0 = time.perf_counter()
    rows: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_family: dict[str, int] = defaultdict(int)
    for run in load.runs():
        if run.facts.get("diverged"):
            continue
        if args.max_runs and per_family[run.family] >= args.max_runs:
            continue
        per_family[run.family] += 1
        for metric in METRICS:
            if metric not in run.metrics:
                continue
            curve = run.curve(metric).finite()
            if len(curve) < 12:
                continue
            until = int(curve.last_step)
            sched = run.schedule
            if sched is not None and sched.total is not None and sched.total < until + 1:
                sched = None
            for cut in cuts:
                part = curve.until(int(cut * until))
                if len(part) < 6 or part.last_step >= until:
                    continue
                for label in ("auto", "none"):
                    status, out = one(part.with_schedule(None), sched, until, label)
                    r = rows[(label, run.family, metric)]
                    r["n"] += 1
                    r["refused"] += status != "ok"
                    r["outside"] += out
    labels = {"auto": "bounds (default)", "none": "bounds=None (before)"}
    print("| forecast | family | metric | forecasts | refused | 95% band leaves the bounds |")
    print("|---|---|---|---|---|---|")
    for label in ("auto", "none"):
        tot: dict[str, int] = defaultdict(int)
        for (lab, fam, metric), r in sorted(rows.items()):
            if lab != label:
                continue
            for k in ("n", "refused", "outside"):
                tot[k] += r[k]
            print(f"| {labels[label]} | {fam} | {metric} | {r['n']} | {r['refused']} | "
                  f"{r['outside']} |")  # fmt: skip
        print(f"| {labels[label]} | **all** | | {tot['n']} | {tot['refused']} | {tot['outside']} |")
    print(f"\n{sum(per_family.values())} runs, cut-offs {args.cutoffs}, "
          f"{time.perf_counter() - t0:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
