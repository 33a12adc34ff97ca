"""Where does the forecast pruner's compute go? Per corpus sweep, with the shipped defaults.

Each sweep of bench/corpus is replayed through real Optuna with ``ForecastPruner()`` (no
arguments: the budget inferred, nothing given per trial) in the first ``--orders`` trial orders
of ``bench/sweep_pruning.py``. The trials are grouped by where their own final value ranks in
the sweep (0 = best; NaN last), and the table prints the share of the sweep's steps each group
trained and the mean share of its own budget a trial of the group trained before it was pruned
or ended. A pruner that only spent compute where it pays would train the worse half little.
``--by order`` groups the trials by their place in the trial order instead (1 = the first
trial run): a pruner that needs completed trials to compare with spends more on the first.

    .venv/bin/python bench/sweep_compute.py [--orders 4] [--by rank|order] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sweep_pruning as sp

GROUPS = ((0, 3), (3, 10), (10, 20), (20, 40))  # final ranks (0 = best) or places, 40 trials


def trained(sw: sp.CSweep, order: list[int]) -> dict[int, float]:
    """Each trial's share of its budget trained, one Optuna replay of ``order``."""
    from runcast.integrations.optuna import ForecastPruner

    steps, _ = sp.optuna_trained(lambda sw: ForecastPruner(), sw, order, False)
    return {i: n / sw.total for i, n in steps.items()}


def main() -> None:
    import optuna

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=4, help="trial orders per sweep")
    ap.add_argument("--seed", type=int, default=2026, help="as bench/sweep_pruning.py's")
    ap.add_argument("--only", nargs="*", help="only these sweeps")
    ap.add_argument(
        "--by", choices=("rank", "order"), default="rank", help="group by final rank or place"
    )
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", message="All-NaN slice")
    every = sp.load_corpus(None)
    orders = sp.trial_orders(every, max(args.orders, 8), args.seed)
    names = [f"{a + 1}-{b}" for a, b in GROUPS]
    what = "ranks" if args.by == "rank" else "places"
    print(
        "| sweep | compute | "
        + " | ".join(f"steps on {what} {n}" for n in names)
        + " | "
        + " | ".join(f"budget trained, {what} {n}" for n in names)
        + " |"
    )
    print("|---" * (2 + 2 * len(GROUPS)) + "|")
    pooled = []
    for sw in every:
        if args.only and sw.name not in args.only:
            continue
        sign = -1.0 if sw.maximize else 1.0
        finals = np.where(np.isfinite(sw.values[:, -1]), sign * sw.values[:, -1], np.inf)
        rank = np.argsort(np.argsort(finals, kind="stable"), kind="stable")
        frac = np.zeros(len(finals))  # by trial, or by place in the order
        for order in orders[sw.name][: args.orders]:
            place = {i: k for k, i in enumerate(order)}
            for i, f in trained(sw, order).items():
                frac[i if args.by == "rank" else place[i]] += f / args.orders
        key = rank if args.by == "rank" else np.arange(len(finals))
        groups = [(key >= a) & (key < b) for a, b in GROUPS]
        steps = [float(frac[g].sum() / len(frac)) for g in groups]
        mean = [float(frac[g].mean()) for g in groups]
        pooled.append([float(frac.mean()), *steps, *mean])
        cells = [f"{frac.mean():.1%}", *(f"{x:.1%}" for x in steps), *(f"{x:.2f}" for x in mean)]
        print(f"| {sw.name} | " + " | ".join(cells) + " |", flush=True)
    p = np.mean(pooled, axis=0)
    k = len(GROUPS)
    cells = [f"{p[0]:.1%}", *(f"{x:.1%}" for x in p[1 : 1 + k]), *(f"{x:.2f}" for x in p[1 + k :])]
    print("| pooled (each sweep weighs the same) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
