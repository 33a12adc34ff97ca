"""Are the forecast pruner's forecasts honest where it decides? Per corpus sweep, the defaults.

Each sweep of bench/corpus is replayed through real Optuna with ``ForecastPruner()`` (the
budget inferred; with ``--specs`` each trial's schedule given) in the first ``--orders`` trial
orders of ``bench/sweep_pruning.py``. At every decision the pruner forecasts the trial's final
value; the corpus knows it (a pruned trial's curve was recorded to its end). Two checks:

- the 80% band: the share of decisions whose trial ended inside ``[final_lo80, final_hi80]``
  (80% if the forecast is calibrated; more: too wide, fewer: too narrow);
- the decision's own number: among decisions that gave a trial ``p_beat`` in a range, the share
  whose trial did end beyond the value it was compared with (the bar of that moment). Pruning
  at ``p_beat < threshold`` is only as safe as this share is small.

If the forecasts were too wide, narrowing them would prune more at the same risk; if the tails
are too thin, the threshold that leave-one-sweep-out chooses already pays for it.

    .venv/bin/python bench/sweep_calibration.py [--orders 2] [--specs] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sweep_pruning as sp

BINS = ((0.0, 0.002), (0.002, 0.01), (0.01, 0.05), (0.05, 0.2), (0.2, 0.5), (0.5, 1.0))


Row = tuple[float, bool, int]  # p_beat, ended beyond the bar, -1/0/1: below/in/above the band


def decisions(sw: sp.CSweep, order: list[int], specs: bool) -> list[Row]:
    """One row per forecast decision of one replay (see ``Row``)."""
    from runcast.integrations.optuna import ForecastPruner

    out: list[Row] = []
    last: dict[int, Any] = {}  # each trial's decision already counted (held: ids are reused)

    def observe(i: int, trial: Any, pruner: Any) -> None:
        d = pruner.decisions.get(trial.number)
        truth = float(sw.values[i, -1])
        # a forecast decision made at this report (pruner.decisions keeps a trial's latest;
        # with interval_steps it may be an earlier one), of a trial with a finite end
        if d is None or d is last.get(trial.number):
            return
        last[trial.number] = d
        if "p_beat" not in d.numbers or not math.isfinite(truth):
            return
        n = d.numbers
        beyond = truth > n["bar"] if sw.maximize else truth < n["bar"]
        where = -1 if truth < n["final_lo80"] else (1 if truth > n["final_hi80"] else 0)
        out.append((n["p_beat"], beyond, where))

    sp.optuna_trained(lambda sw: ForecastPruner(), sw, order, specs, observe)
    return out


def main() -> None:
    import optuna

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=2, help="trial orders per sweep")
    ap.add_argument("--specs", action="store_true", help="give each trial its LR schedule")
    ap.add_argument("--only", nargs="*", help="replay only these sweeps")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", message="All-NaN slice")
    every = sp.load_corpus(None)
    orders = sp.trial_orders(every, args.orders, 2026)
    rows: dict[str, list[Row]] = {}
    for sw in every:
        if args.only and sw.name not in args.only:
            continue
        rows[sw.name] = [r for o in orders[sw.name] for r in decisions(sw, o, args.specs)]
        print(f"  {sw.name}: {len(rows[sw.name])} decisions", file=sys.stderr, flush=True)
    given = "each trial's schedule given" if args.specs else "nothing given"
    print(f"\n### At the pruner's decisions ({given}; {args.orders} orders per sweep)\n")
    print("| sweep | decisions | inside the 80% band | below it | above it |")
    print("|---|---|---|---|---|")
    pooled = [r for rs in rows.values() for r in rs]
    for name, rs in [*rows.items(), ("pooled", pooled)]:
        w = np.array([r[2] for r in rs])
        print(
            f"| {name} | {w.size} | {np.mean(w == 0):.1%} | {np.mean(w < 0):.1%} | "
            f"{np.mean(w > 0):.1%} |"
        )
    print("\n| p_beat at the decision | decisions | mean p_beat | ended beyond the bar |")
    print("|---|---|---|---|")
    for lo, hi in BINS:
        sel = [r for r in pooled if lo <= r[0] < hi or (hi == 1.0 and r[0] == 1.0)]
        if sel:
            print(
                f"| [{lo:g}, {hi:g}) | {len(sel)} | {np.mean([r[0] for r in sel]):.4f} | "
                f"{np.mean([r[1] for r in sel]):.4f} |"
            )


if __name__ == "__main__":
    main()
