"""How much does a trial's configuration say about where it ends, beside its early curve?

The forecast pruner reads a trial's curve and its LR schedule, not its other hyperparameters
(width, optimizer, weight decay, ...). This asks, per corpus sweep, whether those would add
anything: the Spearman rank correlation of every trial's final value with

- its own value at 10% and at 25% of the budget (what the curve says early), and
- the mean final of its 3 nearest trials by configuration (numbers standardised, on a log scale
  where they span more than 10x; strings one-hot; seed and schedule spec left out), every other
  trial of the sweep finished: an upper bound on what the configuration can tell a pruner.

A sweep where the configuration ranks the finals better than the early curve is one where a
pruner that also compared configurations could keep a late bloomer that its curve hides.

    .venv/bin/python bench/sweep_config_signal.py
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import load

LEFT_OUT = ("seed", "schedule", "total")  # not a choice of the sweep, or the schedule itself


def features(configs: list[dict[str, Any]]) -> np.ndarray:
    """One standardised row per trial (see the module docstring)."""
    keys = sorted({k for c in configs for k in c if k not in LEFT_OUT})
    cols = []
    for k in keys:
        vals = [c.get(k) for c in configs]
        if all(isinstance(v, int | float) or v is None for v in vals):
            x = np.array([np.nan if v is None else float(v) for v in vals])
            if np.nanmin(x) > 0 and np.nanmax(x) > 10 * np.nanmin(x):
                x = np.log(x)
            sd = float(np.nanstd(x))
            if sd > 0:
                cols.append(np.nan_to_num((x - np.nanmean(x)) / sd))
        else:
            for u in sorted({str(v) for v in vals}):
                cols.append(np.array([1.0 if str(v) == u else 0.0 for v in vals]))
    return np.stack(cols, axis=1)


def main() -> None:
    warnings.filterwarnings("ignore", message="All-NaN slice")
    print("| sweep | early at 10% | early at 25% | 3 nearest by configuration |")
    print("|---|---|---|---|")
    rows = []
    for sw in load.sweeps():
        values = sw.values()
        sign = -1.0 if sw.direction == "maximize" else 1.0  # lower is better below
        final = sign * values[:, -1]
        ok = np.isfinite(final)
        x = features([t.config for t in sw.trials])
        near = np.full(final.size, np.nan)
        for i in range(final.size):
            d = np.sum((x - x[i]) ** 2, axis=1)
            d[i] = np.inf
            d[~ok] = np.inf
            near[i] = final[np.argsort(d)[:3]].mean()
        rho = []
        for share in (0.1, 0.25):
            early = sign * values[:, max(1, int(share * values.shape[1])) - 1]
            m = ok & np.isfinite(early)
            rho.append(float(spearmanr(early[m], final[m]).statistic))
        rho.append(float(spearmanr(near[ok], final[ok]).statistic))
        rows.append(rho)
        print(f"| {sw.name} | {rho[0]:.2f} | {rho[1]:.2f} | {rho[2]:.2f} |")
    r = np.array(rows)
    print(
        f"| median | {np.median(r[:, 0]):.2f} | {np.median(r[:, 1]):.2f} | {np.median(r[:, 2]):.2f} |"
    )
    better = int((r[:, 2] > r[:, 0]).sum())
    print(
        f"\nThe configuration ranks the finals better than the curve at 10%: {better} of {len(r)}."
    )


if __name__ == "__main__":
    main()
