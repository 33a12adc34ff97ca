"""Fine-tune the PFN on real corpus curves, one model per fold of held-out families.

Question (issue 13): does the PFN forecast runs it has never seen better once it has also been
trained on real runs of *other* families? Each fold's model is fine-tuned from the shipped
weights on tasks cut from every corpus family except the fold's, half real and half synthetic
(``runcast.forecast.pfn.train.finetune``); ``bench/forecast_lofo.py --pfn-folds DIR`` then scores
each family's forecasts with the model that never saw it, and the calibration and ``auto``'s
choice are judged leave-one-family-out on those records as before.

    .venv/bin/python bench/pfn_finetune.py --out bench/_cache/pfn_ft          # every fold + all
    .venv/bin/python bench/pfn_finetune.py --out bench/_cache/pfn_ft --fold 2 # one fold

Writes ``DIR/fold<k>.npz`` (the model without fold k's families), ``DIR/all.npz`` (every family:
the one to ship if the folds win) and ``DIR/folds.json`` (family -> fold). A finished file is
kept (resumable: rerun the command). One thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

import runcast
from runcast.forecast.pfn._real import RealCurve

#: fewest points a curve needs to give tasks (forecast_lofo.py's cases need as many)
MIN_POINTS = 18


def pool_of(families: list[str]) -> list[RealCurve]:
    """Every non-diverged run's loss curves of ``families`` (validation and per-step training)."""
    from corpus import load

    out = []
    for fam in families:
        for r in load.runs(family=fam):
            if r.facts.get("diverged"):
                continue
            for m in ("val_loss", "loss", "train_loss"):
                if m not in r.metrics:
                    continue
                try:
                    c = r.curve(m, schedule=False).finite()
                    sched = r.schedule
                except runcast.RuncastError:
                    continue
                if len(c) >= MIN_POINTS and np.all(c.value > 0):
                    out.append(RealCurve(c, sched, fam))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=6)
    ap.add_argument("--fold", type=int, action="append", help="only these folds (-1: all)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--real-share", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=2e-4)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from corpus import load
    from runcast.forecast.pfn.train import finetune

    fams = sorted(load.families())
    folds = {f: i % args.folds for i, f in enumerate(fams)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "folds.json").write_text(json.dumps(folds, indent=1))
    todo = args.fold if args.fold else [*range(args.folds), -1]
    for k in todo:
        path = args.out / ("all.npz" if k < 0 else f"fold{k}.npz")
        if path.exists():
            print(f"{path} exists: kept", flush=True)
            continue
        train_fams = [f for f in fams if folds[f] != k]
        pool = pool_of(train_fams)
        print(f"fold {k}: held out {[f for f in fams if folds[f] == k]}, "
              f"{len(pool)} curves of {len(train_fams)} families", flush=True)  # fmt: skip
        t0 = time.time()
        finetune(pool, path, steps=args.steps, batch=args.batch, real_share=args.real_share,
                 lr=args.lr, seed=k + 1)  # fmt: skip
        print(f"fold {k}: {time.time() - t0:.0f}s -> {path}", flush=True)


if __name__ == "__main__":
    main()
