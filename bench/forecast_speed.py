"""How long one forecast takes, per method, on the corpus's curves (the issue-13 time goal).

Question: does every method forecast in at most 50 ms, on the curves users forecast (a per-step
training loss, an evaluation curve) at the cut-offs that matter (20% and 50% of a run)?

Each forecast is timed on the process's CPU clock (what it costs; one thread, so the clock counts
only this forecast's work, however busy the machine is) and on the wall clock (what a user waits;
inflated on a crowded machine). A first call per method warms its caches (the PFN's weights, the
grid law's schedule areas), as any second forecast in a session finds them warm; it is not timed.

    .venv/bin/python bench/forecast_speed.py                 # 4 runs per family and kind
    .venv/bin/python bench/forecast_speed.py --per-family 2  # quicker
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from functools import partial
from pathlib import Path

import numpy as np
import torch

import runcast

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
METHODS = ("auto", "law", "law+pfn", "pfn", "pfn+ensemble", "ensemble")
CUTS = (0.2, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-family", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per forecast (median)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", runcast.RuncastWarning)
    from forecast_lofo import corpus_cases

    cases = [c for c in corpus_cases(args.per_family, None, args.per_family)
             if c.schedule is not None]  # fmt: skip
    cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
    wall: dict[tuple[str, str], list[float]] = defaultdict(list)
    warm: set[str] = set()
    for case in cases:
        kind = "train" if case.name.endswith(":train") else "eval"
        full = case.curve
        until = full.last_step
        for frac in CUTS:
            seen = full.until(int(full.step[0] + frac * (until - full.step[0])))
            for m in METHODS:
                call = partial(runcast.forecast, seen, until=until, schedule=case.schedule,
                               method=m)  # fmt: skip
                try:
                    if m not in warm:
                        call()
                        warm.add(m)
                    c_t, w_t = [], []
                    for _ in range(args.repeat):
                        c0, w0 = time.process_time(), time.perf_counter()
                        call()
                        c_t.append(time.process_time() - c0)
                        w_t.append(time.perf_counter() - w0)
                except runcast.RuncastError:
                    continue  # a refusal is not a timing
                cpu[(m, kind)].append(1e3 * float(np.median(c_t)))
                wall[(m, kind)].append(1e3 * float(np.median(w_t)))
    print(f"# forecast_speed: {len(cases)} corpus curves x cut-offs {CUTS}, "
          f"median of {args.repeat} calls each\n")
    print("| method | kind | forecasts | CPU ms median | CPU ms p90 | CPU ms max | wall ms median |")
    print("|---|---|---|---|---|---|---|")
    for m in METHODS:
        for kind in ("train", "eval"):
            c = np.array(cpu.get((m, kind), []))
            if not c.size:
                continue
            w = np.array(wall[(m, kind)])
            print(f"| `{m}` | {kind} | {c.size} | {np.median(c):.1f} | {np.quantile(c, 0.9):.1f} "
                  f"| {c.max():.1f} | {np.median(w):.1f} |")
    t0 = time.perf_counter()
    import subprocess

    out = subprocess.run([sys.executable, "-c", "import time; t=time.perf_counter(); "
                          "import runcast.forecast; print(time.perf_counter()-t)"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    print(f"\n`import runcast.forecast` in a fresh interpreter: {float(out.stdout):.3f} s "
          f"(the subprocess took {time.perf_counter() - t0:.2f} s in all)")


if __name__ == "__main__":
    main()
