"""A Hugging Face Trainer run on 2 CPU processes under torchrun (gloo) with runcast's callback.

Run by tests/integrations/test_ddp_hf.py:

    torchrun --nproc_per_node 2 --master_port PORT hf_train.py DB OUT

A tiny GPT-2 built from a config (no download) trains on random tokens with a stop rule that
fires at its first check. Every rank writes OUT/rank<r>.json: the step it stopped at, the losses
it saw logged, and the decisions its callback holds.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

from runcast.integrations.hf import RuncastCallback
from runcast.steer import StopRule


class Tokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, n: int = 128) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 50, (n, 8), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class Report(TrainerCallback):  # type: ignore[misc]
    """Each process's own view, written when training ends."""

    def __init__(self, out: Path, runcast_cb: RuncastCallback) -> None:
        self.out = out
        self.runcast_cb = runcast_cb
        self.losses: dict[int, float] = {}

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if logs and "loss" in logs:
            self.losses[int(state.global_step)] = float(logs["loss"])

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        report = {
            "rank": int(args.process_index),
            "world_size": int(args.world_size),
            "global_step": int(state.global_step),
            "losses": self.losses,
            "decisions": [d.to_dict() for d in self.runcast_cb.decisions],
            "owns_run": self.runcast_cb.run is not None,
        }
        (self.out / f"rank{args.process_index}.json").write_text(json.dumps(report))


def main() -> None:
    db, out = sys.argv[1], Path(sys.argv[2])
    cb = RuncastCallback(
        project="ddp",
        name="hf",
        db=db,
        stop_rule=StopRule(tolerance=100.0, min_points=5),
        check_every=6,
    )
    args = TrainingArguments(
        output_dir=str(out / "trainer"),
        per_device_train_batch_size=4,
        max_steps=30,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        ddp_backend="gloo",
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=8)
    )
    Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[cb, Report(out, cb)]).train()
    # the Trainer leaves the process group up; gloo's threads torn down at interpreter exit
    # abort a rank now and then ("terminate called without an active exception", exit -6).
    # Both ranks meet first: a group shut down while the other rank still talks aborts too
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    # and end here: even then, interpreter teardown with gloo's threads (holding the async
    # all-reduce work of DDP's hooks) can abort a rank. The run and the reports are written
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
