"""EarlyStopCallback in a real Lightning fit: a tiny MLP that overfits 24 noisy points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

L = pytest.importorskip("lightning.pytorch")

import runcast  # noqa: E402
from runcast.integrations.lightning import EarlyStopCallback  # noqa: E402
from runcast.steer import EarlyStopper  # noqa: E402


def _data() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 8, generator=g)
    y = x[:, :1] + 0.7 * torch.randn(24, 1, generator=g)
    xv = torch.randn(256, 8, generator=g)
    yv = xv[:, :1] + 0.7 * torch.randn(256, 1, generator=g)
    return x, y, xv, yv


class MLP(L.LightningModule):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 128), torch.nn.Tanh(), torch.nn.Linear(128, 1)
        )

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def _fit(
    tmp_path: Path, cb: EarlyStopCallback, max_steps: int = 600, ckpt_path: Path | None = None
) -> tuple[Any, MLP]:
    torch.set_num_threads(1)
    x, y, xv, yv = _data()
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=24)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xv, yv), batch_size=256)
    trainer = L.Trainer(
        max_steps=max_steps,
        val_check_interval=10,
        check_val_every_n_epoch=None,
        callbacks=[cb],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    model = MLP()
    trainer.fit(model, train, val, ckpt_path=ckpt_path)
    return trainer, model


def _val(model: MLP) -> float:
    _, _, xv, yv = _data()
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(model.net(xv), yv))


def test_stops_on_the_turn_and_restores_the_best_weights(tmp_path: Path) -> None:
    run = runcast.init(project="es", name="pl", db=tmp_path / "es.db")
    cb = EarlyStopCallback(EarlyStopper(window=3), run=run)
    trainer, model = _fit(tmp_path, cb)
    run.finish()
    # the run's record names the best validation step (the weights to restore) and the stop
    entry = runcast.open_store(run.db).run(run.id).config["runcast_best"]
    assert (entry["metric"], entry["step"], entry["value"]) == (
        "val_loss",
        cb.best_step,
        cb.best_value,
    )
    assert cb.decision is not None and entry["stop_step"] == cb.decision.step
    # stopped on an overfitting turn long before the 600 steps
    assert trainer.global_step < 300
    assert cb.decision is not None and cb.decision.reason.startswith("validation turned")
    assert cb.best_step is not None and cb.best_step < trainer.global_step
    # the training loss went in too (median per validation interval), and it fell
    tr = cb.stopper.train
    assert len(tr) == len(cb.stopper.values) and tr[-1] < tr[0]
    # the module holds the best validation's weights after fit
    assert cb.restored_step == cb.best_step
    assert _val(model) == pytest.approx(cb.best_value, rel=1e-5)
    assert _val(model) < cb.stopper.values[-1]


def test_state_travels_in_checkpoints(tmp_path: Path) -> None:
    cb = EarlyStopCallback(EarlyStopper(window=3))
    trainer, _ = _fit(tmp_path, cb, max_steps=60)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)
    state = next(v for k, v in ckpt["callbacks"].items() if "EarlyStopCallback" in k)
    again = EarlyStopCallback(EarlyStopper(window=3))
    again.load_state_dict(state)
    assert len(again.stopper.values) == 6  # six validations in 60 steps, every 10
    assert again.best_step == cb.best_step and again.stopper.values == cb.stopper.values


def test_a_resumed_fit_restores_a_best_from_before_the_checkpoint(tmp_path: Path) -> None:
    whole = EarlyStopCallback(EarlyStopper(window=3))
    _fit(tmp_path / "whole", whole)
    assert whole.decision is not None and whole.best_step is not None
    cut = whole.best_step + 10  # interrupted after the best, before the stop
    assert cut < whole.decision.step
    first = EarlyStopCallback(EarlyStopper(window=3), restore=False)
    trainer, _ = _fit(tmp_path / "first", first, max_steps=cut)
    trainer.save_checkpoint(tmp_path / "cut.ckpt")
    # a new process: a fresh callback and module, resumed from the checkpoint
    cb = EarlyStopCallback(EarlyStopper(window=3))
    _, model = _fit(tmp_path / "resumed", cb, ckpt_path=tmp_path / "cut.ckpt")
    assert cb.decision is not None and cb.decision.step == whole.decision.step
    # the best came before the checkpoint; its weights travelled in it and are restored
    assert cb.best_step == whole.best_step < cut and cb.restored_step == whole.best_step
    assert _val(model) == pytest.approx(whole.best_value, rel=1e-5)
