"""The issue's Hugging Face run: forecast its final loss at step 100, no schedule typed.

A tiny GPT-2 (2 layers, 64 wide, built from a config: no download) trained by the Trainer on
the demo text (characters, context 32, batch 16) with ``lr_scheduler_type="cosine"``, 30 warmup
steps, 300 steps, loss logged every 10 and evaluation every 50, ``RuncastCallback`` added. At
step 100 the training loss is forecast to step 300 the way ``runcast forecast RUN --from 100``
does it (the trend, ``noise=False``), with the schedule the callback recorded, and side by side
without it (the blind forecast, the anchor). The truth is the last logged loss.

    .venv/bin/python bench/hf_gpt2_forecast.py --seeds 3
    .venv/bin/python bench/hf_gpt2_forecast.py --seeds 3 --db /tmp/hf.db --pfn-weights W.npz

``--db`` keeps the trained runs in that store and reuses them on the next call (a run named
``gpt2-SEED`` there is not trained again); ``--pfn-weights`` forecasts with other PFN weights.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
import torch

import runcast
from runcast.demo._text import CharData, CharWindows, load_text
from runcast.integrations._plan import run_forecast_input

CTX, BATCH, STEPS, CUT = 32, 16, 300, 100


def train(seed: int, db: str) -> str:
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    from runcast.integrations.hf import RuncastCallback

    data = CharData.from_text(load_text())
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(
        GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=data.vocab, n_positions=CTX)
    )
    out = tempfile.mkdtemp()
    args = TrainingArguments(
        output_dir=out, per_device_train_batch_size=BATCH, max_steps=STEPS, learning_rate=3e-3,
        lr_scheduler_type="cosine", warmup_steps=30, logging_steps=10, eval_strategy="steps",
        eval_steps=50, save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True,
        seed=seed,
    )  # fmt: skip
    cb = RuncastCallback(project="bench", name=f"gpt2-{seed}", db=db)
    Trainer(
        model=model,
        args=args,
        train_dataset=CharWindows(data.train, STEPS * BATCH, CTX, seed),
        eval_dataset=CharWindows(data.val, 64, CTX, 1000 + seed),
        callbacks=[cb],
    ).train()
    return str(cb.run.id)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--db", default=None, help="keep (and reuse) the trained runs in this store")
    ap.add_argument("--pfn-weights", default=None, help="forecast with these PFN weights")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    if args.pfn_weights:
        from runcast.forecast.pfn._infer import use_weights

        use_weights(args.pfn_weights)
    db = args.db or os.path.join(tempfile.mkdtemp(), "hf.db")
    print("| seed | forecast | final loss | median at step 300 | error | 80% interval | inside |")
    print("|---|---|---|---|---|---|---|")
    t0 = time.perf_counter()
    hits: dict[str, list[tuple[float, bool]]] = {"recorded schedule": [], "no schedule": []}
    for seed in range(args.seeds):
        store = runcast.open_store(db)
        done = [r.id for r in store.runs("bench") if r.name == f"gpt2-{seed}"]
        store.close()
        rid = str(done[-1]) if done else train(seed, db)
        store = runcast.open_store(db)
        curve, until = run_forecast_input(store, rid, "loss", from_step=CUT)
        truth = float(store.curve(rid, "loss").value[-1])
        for label, sched in (("recorded schedule", curve.schedule), ("no schedule", None)):
            f = runcast.forecast(curve.with_schedule(sched), until, sched, noise=False)
            med = f.final.median
            lo, hi = f.final.interval(0.8)
            err = abs(med / truth - 1)
            inside = lo <= truth <= hi
            hits[label].append((err, inside))
            print(f"| {seed} | {label} ({f.method}) | {truth:.4f} | {med:.4f} | {err:.2%} | "
                  f"[{lo:.3f}, {hi:.3f}] | {'yes' if inside else 'no'} |")  # fmt: skip
        store.close()
    for label, v in hits.items():
        errs = [e for e, _ in v]
        print(f"| all | {label} | | | mean {np.mean(errs):.2%}, max {np.max(errs):.2%} | | "
              f"{sum(i for _, i in v)}/{len(v)} |")  # fmt: skip
    print(f"\n{args.seeds} runs of {STEPS} steps, forecast from step {CUT}, "
          f"{time.perf_counter() - t0:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
