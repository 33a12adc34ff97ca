"""Batch-size warmup in a real Hugging Face Trainer (tiny GPT-2 from a config, random tokens)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import (  # noqa: E402
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from runcast.errors import InvalidInputError  # noqa: E402
from runcast.integrations.hf import BatchSizeWarmupCallback  # noqa: E402
from runcast.steer import BatchSizeWarmup  # noqa: E402


class Tokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, n: int = 512) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 50, (n, 8), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class Steps(TrainerCallback):  # type: ignore[misc]
    """Micro-batches per optimizer step and the LR after each step, as the Trainer ran them."""

    def __init__(self) -> None:
        self.micro, self.count, self.lrs = [], 0, []

    def on_substep_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.count += 1

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.micro.append(self.count + 1)
        self.count = 0
        self.lrs.append(kw["optimizer"].param_groups[0]["lr"])


def _model() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=8))


def _args(tmp: Path, **kw: Any) -> TrainingArguments:
    base: dict[str, Any] = {
        "output_dir": str(tmp / "out"),
        "per_device_train_batch_size": 4,
        "max_steps": 100,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "disable_tqdm": True,
        "learning_rate": 1e-3,
        "lr_scheduler_type": "constant",
        "logging_steps": 1000,
    }
    base.update(kw)
    return TrainingArguments(**base)


def _warmup() -> BatchSizeWarmup:
    # CBS(x) = x / 4 + 0.5: past 8 at 32 examples seen (4 -> 8), past 16 at 64
    return BatchSizeWarmup(4, 16, cbs=[(0, 0.5), (400, 100.5)])


def test_accumulation_follows_the_warmup_with_the_lr_rule(tmp_path: Path) -> None:
    cb, steps = BatchSizeWarmupCallback(_warmup(), max_examples=256), Steps()
    Trainer(
        model=_model(), args=_args(tmp_path), train_dataset=Tokens(), callbacks=[cb, steps]
    ).train()
    sizes = [4 * m for m in steps.micro]
    # the warmup decided 8 after 8 steps (32 examples); 16 at 64 examples
    assert [d.numbers["batch_size"] for d in cb.warmup.decisions] == [8, 16]
    assert sizes[:8] == [4] * 8 and set(sizes[8:12]) == {8} and set(sizes[13:]) == {16}
    assert sum(sizes) == cb.examples == 256  # stopped at max_examples
    # Adam's LR x sqrt(2) per doubling, applied with the accumulation
    for size, lr in zip(sizes[1:], steps.lrs, strict=False):
        assert lr == pytest.approx(1e-3 * (size / 4) ** 0.5)


def test_resume_goes_on_with_the_same_batch_size(tmp_path: Path) -> None:
    full = Steps()
    Trainer(
        model=_model(),
        args=_args(tmp_path / "a"),
        train_dataset=Tokens(),
        callbacks=[BatchSizeWarmupCallback(_warmup(), max_examples=256), full],
    ).train()
    first = Steps()
    args = _args(tmp_path / "b", save_strategy="steps", save_steps=12, max_steps=12)
    Trainer(
        model=_model(),
        args=args,
        train_dataset=Tokens(),
        callbacks=[BatchSizeWarmupCallback(_warmup(), max_examples=256), first],
    ).train()
    rest = Steps()
    args = _args(tmp_path / "b", max_steps=100)
    cb = BatchSizeWarmupCallback(_warmup(), max_examples=256)
    trainer = Trainer(model=_model(), args=args, train_dataset=Tokens(), callbacks=[cb, rest])
    trainer.train(resume_from_checkpoint=str(tmp_path / "b" / "out" / "checkpoint-12"))
    restored = next(
        c for c in trainer.callback_handler.callbacks if isinstance(c, BatchSizeWarmupCallback)
    )
    assert restored.examples == 256 and restored.applied == 16
    assert first.micro + rest.micro == full.micro  # the same batch sizes, step for step
    assert rest.lrs == pytest.approx(full.lrs[12:])


def test_start_batch_must_match(tmp_path: Path) -> None:
    cb = BatchSizeWarmupCallback(BatchSizeWarmup(8, 16, cbs=[(0, 0)]))
    with pytest.raises(InvalidInputError, match="starts at batch 4"):
        Trainer(
            model=_model(), args=_args(tmp_path), train_dataset=Tokens(), callbacks=[cb]
        ).train()
