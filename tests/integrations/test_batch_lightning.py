"""Batch-size warmup in a real Lightning Trainer (a small regression model on random data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

lightning = pytest.importorskip("lightning")
from lightning.pytorch import Callback, LightningModule, Trainer  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402

from runcast.errors import InvalidInputError  # noqa: E402
from runcast.integrations.lightning import BatchSizeWarmupCallback  # noqa: E402
from runcast.steer import BatchSizeWarmup  # noqa: E402


class Regression(LightningModule):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=1e-3)

    def train_dataloader(self) -> Any:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(512, 4, generator=g)
        data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
        return torch.utils.data.DataLoader(data, batch_size=4)


class Steps(Callback):  # type: ignore[misc]
    """Batches per optimizer step and the LR each step used."""

    def __init__(self) -> None:
        self.micro: list[int] = []
        self.lrs: list[float] = []
        self.count = 0

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        self.count += 1

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self.micro.append(self.count + 1)  # this batch's end comes after the step
        self.count = -1
        self.lrs.append(optimizer.param_groups[0]["lr"])


def _trainer(tmp: Path, callbacks: list[Any], **kw: Any) -> Trainer:
    args: dict[str, Any] = {
        "max_steps": 100,
        "accelerator": "cpu",
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "default_root_dir": str(tmp),
    }
    args.update(kw)
    return Trainer(callbacks=callbacks, **args)


def _warmup() -> BatchSizeWarmup:
    return BatchSizeWarmup(4, 16, cbs=[(0, 0.5), (400, 100.5)])  # CBS = examples / 4 + 0.5


def test_accumulation_follows_the_warmup_with_the_lr_rule(tmp_path: Path) -> None:
    cb, steps = BatchSizeWarmupCallback(_warmup(), micro_batch=4, max_examples=256), Steps()
    _trainer(tmp_path, [cb, steps]).fit(Regression())
    sizes = [4 * m for m in steps.micro]
    assert [d.numbers["batch_size"] for d in cb.warmup.decisions] == [8, 16]
    assert sizes[:8] == [4] * 8 and set(sizes[8:12]) == {8} and set(sizes[13:]) == {16}
    assert sum(sizes) == cb.examples == 256
    # Adam's LR x sqrt(2) per doubling, in force from the first step at the new batch
    for size, lr in zip(sizes, steps.lrs, strict=True):
        assert lr == pytest.approx(1e-3 * (size / 4) ** 0.5)


def test_resume_goes_on_with_the_same_batch_size(tmp_path: Path) -> None:
    full, whole = Steps(), BatchSizeWarmupCallback(_warmup(), 4, 256)
    _trainer(tmp_path / "a", [whole, full]).fit(Regression())
    first = Steps()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=12, save_top_k=-1)
    _trainer(
        tmp_path / "b",
        [BatchSizeWarmupCallback(_warmup(), 4, 256), first, ckpt],
        max_steps=12,
        enable_checkpointing=True,
    ).fit(Regression())
    rest = Steps()
    cb = BatchSizeWarmupCallback(_warmup(), 4, 256)
    path = next((tmp_path / "ck").glob("*step=12*.ckpt"))
    _trainer(tmp_path / "b", [cb, rest]).fit(Regression(), ckpt_path=str(path))
    assert first.micro + rest.micro == full.micro  # the same batch sizes, step for step
    assert first.lrs + rest.lrs == pytest.approx(full.lrs)
    # the restored warmup holds the decisions taken before the checkpoint
    assert cb.examples == 256 and cb.warmup.decisions == whole.warmup.decisions


def test_start_batch_must_match(tmp_path: Path) -> None:
    cb = BatchSizeWarmupCallback(BatchSizeWarmup(8, 16, cbs=[(0, 0)]), micro_batch=4)
    with pytest.raises(InvalidInputError, match="starts at batch 4"):
        _trainer(tmp_path, [cb]).fit(Regression())
