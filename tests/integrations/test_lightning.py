"""Lightning + RuncastCallback: records, stops (rank-0 decision broadcast), schedule-free right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

pl = pytest.importorskip("lightning.pytorch")
schedulefree = pytest.importorskip("schedulefree")

import runcast  # noqa: E402
from runcast.integrations import in_train_mode  # noqa: E402
from runcast.integrations.lightning import RuncastCallback  # noqa: E402
from runcast.steer import PlateauDetector, StopRule  # noqa: E402


def _loader(n: int = 64, seed: int = 0) -> torch.utils.data.DataLoader:  # type: ignore[type-arg]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(n, 1, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


class Regressor(pl.LightningModule):  # type: ignore[misc]
    def __init__(self, schedule_free: bool = False, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
        )

    def training_step(self, batch: Any, idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch: Any, idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> Any:
        if self.hparams["schedule_free"]:
            return schedulefree.AdamWScheduleFree(self.parameters(), lr=self.hparams["lr"])
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


def _trainer(tmp: Path, callbacks: list[Any], **kw: Any) -> Any:
    base: dict[str, Any] = {
        "max_steps": 24,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "default_root_dir": str(tmp),
        "num_sanity_val_steps": 0,
    }
    base.update(kw)
    return pl.Trainer(callbacks=callbacks, **base)


def test_callback_records(tmp_path: Path, db_path: Path) -> None:
    cb = RuncastCallback(project="pl", name="reg", db=str(db_path))
    _trainer(tmp_path, [cb], val_check_interval=8).fit(Regressor(), _loader(), _loader(16, 1))
    store = runcast.open_store(db_path)
    (info,) = store.runs(project="pl")
    assert info.status == "finished" and info.config["lr"] == 0.05  # hparams -> config
    loss = store.curve(info.id, "loss")
    assert loss.step.tolist() == list(range(1, 25))  # every step, logged as 0-d tensors
    assert store.curve(info.id, "val_loss").step.tolist() == [8, 16, 24]


def test_callback_stops_on_plateau(tmp_path: Path) -> None:
    cb = RuncastCallback(
        db=str(tmp_path / "r.db"), plateau=PlateauDetector(patience=1, min_delta=100)
    )
    trainer = _trainer(tmp_path, [cb], val_check_interval=4)
    trainer.fit(Regressor(), _loader(), _loader(16, 1))
    assert trainer.global_step == 8  # the 2nd validation declared the plateau
    assert cb.decisions[0].action == "stop"


def test_callback_stops_on_stop_rule(tmp_path: Path) -> None:
    cb = RuncastCallback(
        db=str(tmp_path / "r.db"), stop_rule=StopRule(tolerance=100.0, min_points=5), check_every=6
    )
    trainer = _trainer(tmp_path, [cb])
    trainer.fit(Regressor(), _loader())
    assert trainer.global_step == 6  # the first check (rank 0, broadcast) stopped it
    assert cb.decisions[0].numbers["remaining_steps"] == 18.0


def test_schedule_free_fails_without_and_trains_with_runcast(tmp_path: Path) -> None:
    # Lightning never calls optimizer.train(): a schedule-free optimizer refuses to step
    with pytest.raises(Exception, match="not in train mode"):
        _trainer(tmp_path, []).fit(Regressor(schedule_free=True), _loader())
    cb = RuncastCallback(db=str(tmp_path / "r.db"))
    trainer = _trainer(tmp_path, [cb])
    trainer.fit(Regressor(schedule_free=True), _loader())
    assert trainer.global_step == 24
    assert in_train_mode(trainer.optimizers[0]) is False  # final weights left as x


class _Probe(pl.Callback):  # type: ignore[misc]
    """At step 12 (before any checkpoint hook), compute x = (y - (1 - b1) z) / b1 and y."""

    def __init__(self) -> None:
        self.x: dict[str, torch.Tensor] = {}
        self.y: dict[str, torch.Tensor] = {}

    def on_train_batch_end(self, trainer: Any, module: Any, *a: Any) -> None:
        if trainer.global_step != 12:
            return
        opt = trainer.optimizers[0]
        assert in_train_mode(opt)
        b1 = opt.param_groups[0]["betas"][0]
        for name, p in module.named_parameters():
            z = opt.state[p]["z"]
            self.y[name] = p.detach().clone()
            self.x[name] = ((p.detach() - (1 - b1) * z) / b1).clone()


def test_schedule_free_checkpoint_holds_eval_weights(tmp_path: Path) -> None:
    ckpt = pl.callbacks.ModelCheckpoint(
        dirpath=tmp_path / "ck", every_n_train_steps=12, save_top_k=-1
    )
    probe = _Probe()
    trainer = _trainer(
        tmp_path,
        [probe, RuncastCallback(db=str(tmp_path / "r.db")), ckpt],
        enable_checkpointing=True,
    )
    trainer.fit(Regressor(schedule_free=True), _loader())
    state = torch.load(tmp_path / "ck" / "epoch=1-step=12.ckpt", weights_only=False)
    w = state["state_dict"]["net.0.weight"]
    assert not torch.allclose(probe.x["net.0.weight"], probe.y["net.0.weight"], atol=1e-4)
    assert torch.allclose(w, probe.x["net.0.weight"], atol=1e-6)  # evaluation weights x, not y
    # the optimizer state saved with them says "eval mode", so a resume is consistent
    assert state["optimizer_states"][0]["param_groups"][0]["train_mode"] is False


def test_fit_twice_validate_after_and_validate_only(tmp_path: Path, db_path: Path) -> None:
    cb = RuncastCallback(project="pl", db=str(db_path))
    model = Regressor()
    trainer = _trainer(tmp_path, [cb], max_steps=4)
    trainer.fit(model, _loader())
    # a second fit() logged into the run the first one finished: StoreError at its first batch
    _trainer(tmp_path, [cb], max_steps=4).fit(model, _loader())
    # so did validate() after fit(); now its numbers go into the run that trainer fitted
    (got,) = trainer.validate(model, _loader(16, 1), verbose=False)
    store = runcast.open_store(db_path)
    runs = store.runs(project="pl")
    assert [r.status for r in runs] == ["finished", "finished"]  # one run per fit()
    assert all(store.curve(r.id, "loss").step.tolist() == [1, 2, 3, 4] for r in runs)
    vals = store.curve(runs[0].id, "val_loss")
    assert vals.step.tolist() == [4] and vals.value[0] == pytest.approx(got["val_loss"])
    # validate() without fit(): on_fit_start never came, and the metrics were lost
    alone = RuncastCallback(project="pl-val", db=str(db_path))
    (got,) = _trainer(tmp_path, [alone]).validate(Regressor(), _loader(16, 1), verbose=False)
    alone.run.finish()
    (info,) = store.runs(project="pl-val")
    assert store.curve(info.id, "val_loss").value.tolist() == [pytest.approx(got["val_loss"])]


def test_a_finished_run_is_refused_before_the_first_step(tmp_path: Path, db_path: Path) -> None:
    run = runcast.init(project="pl", name="done", db=str(db_path))
    run.finish()
    trainer = _trainer(tmp_path, [RuncastCallback(run=run)])
    # was a StoreError at the first batch
    with pytest.raises(runcast.errors.InvalidInputError, match="is finished"):
        trainer.fit(Regressor(), _loader())
    assert trainer.global_step == 0


class _DictOutput(Regressor):
    def training_step(self, batch: Any, idx: int) -> dict[str, Any]:
        return {"loss": super().training_step(batch, idx), "n": len(batch[0])}


def test_a_loss_key_missing_from_the_output_warns(tmp_path: Path, db_path: Path) -> None:
    cb = RuncastCallback(project="pl", db=str(db_path), loss_key="train_loss")
    # no loss was recorded (and a stop rule would never run) without a word
    with pytest.warns(runcast.RuncastWarning, match=r"no 'train_loss' key \(it has loss, n\)"):
        _trainer(tmp_path, [cb], max_steps=3).fit(_DictOutput(), _loader())
    (info,) = runcast.open_store(db_path).runs(project="pl")
    assert runcast.open_store(db_path).summary(info.id).keys() == {"lr"}


class _Stream(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """Batches with no length: Lightning cannot tell how many steps an epoch has."""

    def __iter__(self) -> Any:
        g = torch.Generator().manual_seed(0)
        for _ in range(6):
            x = torch.randn(8, 4, generator=g)
            yield x, x[:, :1]


def test_a_stop_rule_without_a_budget_warns(tmp_path: Path, db_path: Path) -> None:
    cb = RuncastCallback(db=str(db_path), stop_rule=StopRule(min_points=2), check_every=2)
    trainer = _trainer(tmp_path, [cb], max_steps=-1, max_epochs=1)
    # the rule was skipped at every check without a word
    with pytest.warns(runcast.RuncastWarning, match=r"set Trainer\(max_steps=\.\.\.\)"):
        trainer.fit(Regressor(), torch.utils.data.DataLoader(_Stream(), batch_size=None))
    assert trainer.global_step == 6 and cb.decisions == []
