"""The instability guard at its defaults: false alarms on healthy runs, and injected spikes caught.

Every run of the corpus (bench/corpus: generated runs with a per-step training loss and the
gradient norm before clipping; the public per-step training curves of tdlt and pythia, loss
only) is fed step by step to an ``InstabilityGuard`` at its default settings. A decision other
than "continue" on a run that did not diverge is a false alarm. At ``--inject`` positions per
run (after the guard's warm-up), a copy of the guard as it stands there is shown that step with
the loss x10, the loss x100, or the gradient norm x100: caught when it does not answer
"continue". The loss scored on a log scale (the default) and on its own scale (the previous
default) are measured side by side on the same streams.

    .venv/bin/python bench/guard_alarms.py                 # the table in bench/README.md
    .venv/bin/python bench/guard_alarms.py --max-steps 3000 --inject 10   # quicker
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import load
from runcast.steer import InstabilityGuard

VARIANTS = {
    "log, x3..x50, floor 1e-3 (default)": {},
    "log, x3..x50, floor 1e-4": {"loss_floor": 1e-4},
    "as is (before)": {"log_loss": False, "min_factor": 1.0, "max_factor": math.inf},
}
INJECT = (("loss x10", 10.0, 1.0), ("loss x100", 100.0, 1.0), ("grad x100", 1.0, 100.0))


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
) -> tuple[int, dict[str, list[bool]]]:
    """False alarms on the clean stream, and per injection kind whether each was caught."""
    g = InstabilityGuard("skip", **opts)
    ok = np.isfinite(loss) & (np.isfinite(grad) if grad is not None else True)
    idx = np.flatnonzero(ok)
    rng = np.random.default_rng(seed)
    start = g.min_history + 10
    pool = idx[idx >= idx[min(start, idx.size - 1)]]
    at = set(rng.choice(pool, size=min(n_inject, pool.size), replace=False).tolist())
    alarms = 0
    caught: dict[str, list[bool]] = defaultdict(list)
    for t in idx:
        lv = float(loss[t])
        gv = float(grad[t]) if grad is not None else None
        if t in at:
            for name, lf, gf in INJECT:
                if gv is None and gf != 1.0:
                    continue
                probe = InstabilityGuard("skip", **opts)
                probe.load_state_dict(g.state_dict())
                d = probe.check(int(t), loss=lv * lf, grad_norm=None if gv is None else gv * gf)
                caught[name].append(d.action != "continue")
        d = g.check(int(t), loss=lv, grad_norm=gv)
        alarms += d.action != "continue"
    return alarms, caught


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-steps", type=int, default=20_000, help="steps read from each run")
    ap.add_argument("--inject", type=int, default=20, help="injection points per run")
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = streams(args.max_steps)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for variant, opts in VARIANTS.items():
        for i, (fam, _rid, loss, grad) in enumerate(data):
            alarms, caught = replay(loss, grad, opts, args.inject, seed=i)
            r = rows.setdefault(
                (variant, fam),
                {
                    "runs": 0,
                    "steps": 0,
                    "alarms": 0,
                    "alarm_runs": 0,
                    **{k: [] for k, *_ in INJECT},
                },
            )
            r["runs"] += 1
            r["steps"] += int(np.isfinite(loss).sum())
            r["alarms"] += alarms
            r["alarm_runs"] += alarms > 0
            for k, v in caught.items():
                r[k] += v
    fams = sorted({f for _, f in rows})

    def pct(v: list[bool]) -> str:
        return f"{100 * np.mean(v):.1f}% ({sum(v)}/{len(v)})" if v else "—"

    print("| loss scale | family | runs | steps | false alarms | runs with one | "
          + " | ".join(f"{k} caught" for k, *_ in INJECT) + " |")  # fmt: skip
    print("|---|---|---|---|---|---|" + "---|" * len(INJECT))
    for variant in VARIANTS:
        total: dict[str, Any] = defaultdict(int, {k: [] for k, *_ in INJECT})
        for fam in fams:
            r = rows[(variant, fam)]
            for k in ("runs", "steps", "alarms", "alarm_runs"):
                total[k] += r[k]
            for k, *_ in INJECT:
                total[k] += r[k]
            print(f"| {variant} | {fam} | {r['runs']} | {r['steps']:,} | {r['alarms']} | "
                  f"{r['alarm_runs']} | " + " | ".join(pct(r[k]) for k, *_ in INJECT) + " |")  # fmt: skip
        print(f"| {variant} | **all** | {total['runs']} | {total['steps']:,} | {total['alarms']} | "
              f"{total['alarm_runs']} | " + " | ".join(pct(total[k]) for k, *_ in INJECT) + " |")  # fmt: skip
    print(f"\n{len(data)} runs, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
