"""A proof recorded through Lightning's loop verifies like one from a plain loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from runcast.errors import InvalidInputError
from runcast.integrations._proof import ProofHooks, lightning_proof_callback
from runcast.verify import ProofRecorder, Task, VerifyConfig, verify


def _data() -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    return torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))


def _loss(model: Any, batch: Any) -> Any:
    x, y = batch
    return ((model(x) - y) ** 2).mean(dim=1)


def test_lightning_proof_verifies(tmp_path: Path) -> None:
    import lightning.pytorch as pl

    class Lit(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def forward(self, x: Any) -> Any:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return _loss(self, batch).mean()

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    data = _data()
    rec = ProofRecorder(tmp_path / "proof", data, steps=40, batch_size=16, checkpoint_every=10)
    rec.seed()
    module = Lit()
    callback = lightning_proof_callback(rec)
    loader = torch.utils.data.DataLoader(data, batch_sampler=callback.sampler)
    trainer = pl.Trainer(
        max_steps=40,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(module, loader)
    assert (tmp_path / "proof" / "manifest.json").exists()

    def build() -> Any:
        return Lit()

    task = Task(
        model=build,
        optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9),
        dataset=data,
        loss=_loss,
    )
    report = verify(tmp_path / "proof", task, config=VerifyConfig(seed=0))
    assert report.passed, str(report)
    # Lightning's step is the Task's default step, bit for bit
    assert report.check("replay").numbers["largest_distance"] == 0.0


def test_hooks_need_the_committed_sampler(tmp_path: Path) -> None:
    rec = ProofRecorder(tmp_path, _data(), steps=4, batch_size=16, checkpoint_every=2)
    hooks = ProofHooks(rec)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hooks.proof_begin(model, opt)
    with pytest.raises(InvalidInputError, match="batch_sampler"):
        hooks.proof_step(model, opt)  # no batch was drawn from the committed sampler
    with pytest.raises(InvalidInputError, match="ProofRecorder"):
        ProofHooks("proof")  # type: ignore[arg-type]
