"""The demo's run, forecast from 10-50% of it: issue 13's demo goal, per method.

Goal: from 20% of the run, the median within 3% of the loss the run reaches, and the 80% band
within +-15% of the median. The forecast is the demo's own (``trend_forecast``: the trend,
seeded, with the run's planned WSD schedule); the truth is ``reached`` (the demo's definition).
The demo run is not in the corpus, so nothing was fitted or chosen on it.

    .venv/bin/runcast demo --out /tmp/demo                        # once (a few minutes)
    .venv/bin/python bench/demo_forecast.py /tmp/demo/runcast.db
    .venv/bin/python bench/demo_forecast.py /tmp/demo/runcast.db --pfn-weights W.npz
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import runcast
from runcast.integrations._plan import run_forecast_input
from runcast.report._data import reached

METHODS = ("auto", "law", "law+pfn", "pfn", "pfn+ensemble")
CUTS = (0.1, 0.2, 0.3, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", help="the store of a `runcast demo --out DIR` run (DIR/runcast.db)")
    ap.add_argument("--pfn-weights", type=Path, default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.pfn_weights is not None:
        from runcast.forecast.pfn._infer import use_weights

        use_weights(args.pfn_weights)
    store = runcast.open_store(args.db)
    run = store.runs()[0]
    curve = store.curve(run.id, "loss")
    # the planned WSD and its end, as `runcast forecast RUN --from` reads them
    planned, until = run_forecast_input(store, run.id, "loss", from_step=1)
    sched = planned.schedule
    truth = reached(curve)
    print(f"run {run.id} ({run.name}): reached {truth:.4f} at step {curve.last_step}\n")
    print("| method | from | median | error | 80% band | band / median |")
    print("|---|---|---|---|---|---|")
    for frac in CUTS:
        cut = int(frac * until)
        seen = curve.until(cut)
        for m in METHODS:
            try:
                f = runcast.forecast(seen, until=until, schedule=sched, method=m, noise=False,
                                     seed=0)  # fmt: skip
            except runcast.RuncastError as err:
                print(f"| `{m}` | {frac:.0%} | failed: {type(err).__name__} | | | |")
                continue
            med = f.final.median
            lo, hi = f.final.interval(0.8)
            label = m if f.method == m else f"{m} ({f.method})"
            print(f"| `{label}` | {frac:.0%} | {med:.4f} | {med / truth - 1:+.1%} | "
                  f"[{lo:.3f}, {hi:.3f}] | {lo / med - 1:+.0%} / {hi / med - 1:+.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()
