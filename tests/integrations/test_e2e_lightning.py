"""End to end, as a user runs it: an MLP on the bundled digits in Lightning, logging its own
metrics with ``self.log``, a cosine scheduler per step, RuncastCallback added, no schedule typed.
Every metric logged is in the store, the dashboard forecasts the running run (its accuracy
inside [0, 1]) to the planned end from 20% of it, and ``runcast forecast RUN --from STEP`` uses
the configured scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

pl = pytest.importorskip("lightning.pytorch")

import runcast  # noqa: E402
from runcast.integrations.lightning import RuncastCallback  # noqa: E402

EPOCHS, BATCH = 4, 100  # 1500 examples: 15 steps an epoch, 60 in all


class Digits(pl.LightningModule):  # type: ignore[misc]
    def __init__(self, net: Any, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net

    def training_step(self, batch: Any, idx: int) -> Any:
        x, y = batch
        out = self.net(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        self.log("train_loss", loss)
        self.log("train_acc", (out.argmax(1) == y).float().mean(), on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, idx: int) -> None:
        x, y = batch
        out = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
        total = self.trainer.estimated_stepping_batches
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": cos, "interval": "step"}}


class Watch(pl.Callback):  # type: ignore[misc]
    """At 20% of the planned steps, asks the dashboard for the running run's loss forecast;
    at 60%, for its validation accuracy's."""

    def __init__(self, cb: RuncastCallback, db: Path, e2e: Any) -> None:
        self.cb, self.db, self.e2e = cb, db, e2e
        self.checked = False
        self.acc_band: dict[str, Any] | None = None

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        total = int(trainer.estimated_stepping_batches)
        if not self.checked and trainer.global_step >= total // 5:
            self.e2e.check_live_forecast(self.db, self.cb.run, planned_end=total)
            self.checked = True
        if self.acc_band is None and trainer.global_step >= 36:  # 7 validations so far
            self.cb.run.flush()
            self.acc_band = self.e2e.dashboard_forecast(self.db, self.cb.run.id, "val_acc")


def test_lightning_end_to_end(tmp_path: Path, e2e: Any) -> None:
    torch.set_num_threads(1)
    xt, yt, xv, yv = e2e.digits()
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(xt, yt), batch_size=BATCH, shuffle=True
    )
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xv, yv), batch_size=300)
    db = tmp_path / "pl.db"
    cb = RuncastCallback(project="e2e", name="digits", db=str(db))
    watch = Watch(cb, db, e2e)
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        callbacks=[cb, watch],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        val_check_interval=5,
        default_root_dir=str(tmp_path),
    )
    torch.manual_seed(0)
    trainer.fit(Digits(e2e.mlp()), train, val)
    assert watch.checked  # the dashboard forecast the run while it trained

    store = runcast.open_store(db)
    (info,) = store.runs(project="e2e")
    keys = set(store.keys(info.id))
    # everything self.log logged, step and epoch level, is recorded
    assert {"train_loss", "train_acc_step", "train_acc_epoch", "val_loss", "val_acc"} <= keys
    assert store.curve(info.id, "train_loss").step.tolist() == list(range(1, 61))
    assert store.curve(info.id, "train_acc_epoch").step.tolist() == [15, 30, 45, 60]
    lrs = e2e.check_plan_matches_lr(store, info.id)
    assert lrs.size == 61 and lrs[0] == pytest.approx(0.05) and lrs[-1] == pytest.approx(0.0)
    # an accuracy is forecast inside [0, 1], on the dashboard as everywhere
    assert watch.acc_band is not None
    assert min(watch.acc_band["lo95"]) >= 0.0 and max(watch.acc_band["hi95"]) <= 1.0
    # runcast forecast RUN --from 12 (20%): the configured cosine, to the planned end
    out = e2e.cli_forecast_from(db, info.id, 12, key="train_loss")
    assert out["schedule_known"] is True and out["until"] == 60
    lo, hi = out["final"]["interval_95"]
    assert 0.0 < lo <= hi  # a loss heading to 0, forecast above its floor
