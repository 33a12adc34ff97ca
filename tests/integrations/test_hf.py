"""Hugging Face Trainer + RuncastCallback: records, stops, and saves schedule-free weights right.

A tiny GPT-2 built from a config (no download) trains a few steps on random tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
schedulefree = pytest.importorskip("schedulefree")
from safetensors.torch import load_file  # noqa: E402
from transformers import (  # noqa: E402
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

import runcast  # noqa: E402
from runcast.integrations import in_train_mode  # noqa: E402
from runcast.integrations.hf import RuncastCallback  # noqa: E402
from runcast.steer import PlateauDetector, StopRule  # noqa: E402


class Tokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, n: int = 64) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 50, (n, 8), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def _model() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=8))


def _args(tmp: Path, **kw: Any) -> TrainingArguments:
    base: dict[str, Any] = {
        "output_dir": str(tmp / "out"),
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        "max_steps": 30,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "disable_tqdm": True,
        "learning_rate": 1e-2,
        "lr_scheduler_type": "constant",
    }
    base.update(kw)
    return TrainingArguments(**base)


def test_callback_records_to_the_store(tmp_path: Path, db_path: Path) -> None:
    cb = RuncastCallback(project="hf", name="tiny", db=str(db_path))
    Trainer(model=_model(), args=_args(tmp_path), train_dataset=Tokens(), callbacks=[cb]).train()
    store = runcast.open_store(db_path)
    (info,) = store.runs(project="hf")
    assert info.name == "tiny" and info.status == "finished"
    loss, lr = store.curve(info.id, "loss"), store.curve(info.id, "lr")
    assert loss.step.tolist() == list(range(1, 31))  # one point per logged global step
    assert set(lr.value.tolist()) == {1e-2}  # learning_rate recorded under runcast's "lr"
    assert info.config["max_steps"] == 30  # TrainingArguments land in the run's config


def test_callback_stops_on_plateau(tmp_path: Path) -> None:
    # eval every 3 steps; nothing can beat the first eval by 100 -> plateau at the 2nd eval
    cb = RuncastCallback(
        db=str(tmp_path / "r.db"), plateau=PlateauDetector(patience=1, min_delta=100)
    )
    args = _args(tmp_path, eval_strategy="steps", eval_steps=3)
    trainer = Trainer(
        model=_model(), args=args, train_dataset=Tokens(), eval_dataset=Tokens(16), callbacks=[cb]
    )
    trainer.train()
    assert trainer.state.global_step == 6  # stopped right after the 2nd evaluation
    assert cb.decisions[0].action == "stop" and "plateau" in cb.decisions[0].reason


def test_callback_stops_on_stop_rule(tmp_path: Path) -> None:
    # a tolerance no run can gain: the real forecast must call it "stopped learning" at once
    rule = StopRule(tolerance=100.0, min_points=10)
    cb = RuncastCallback(db=str(tmp_path / "r.db"), stop_rule=rule, check_every=10)
    trainer = Trainer(model=_model(), args=_args(tmp_path), train_dataset=Tokens(), callbacks=[cb])
    trainer.train()
    assert trainer.state.global_step == 10  # the first check (10 logs) stopped it
    assert cb.decisions[0].numbers["remaining_steps"] == 20.0


class _Probe(TrainerCallback):  # type: ignore[misc]
    """Computes the schedule-free evaluation weights x = (y - (1 - b1) z) / b1 at ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.x: dict[str, torch.Tensor] = {}
        self.y: dict[str, torch.Tensor] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.global_step != self.step:
            return
        opt, model = kw["optimizer"], kw["model"]
        assert in_train_mode(opt)  # y is in the model at this point
        b1 = opt.param_groups[0]["betas"][0]
        names = {id(p): n for n, p in model.named_parameters()}
        for p in opt.param_groups[0]["params"]:
            z = opt.state[p]["z"]
            self.y[names[id(p)]] = p.detach().clone()
            self.x[names[id(p)]] = ((p.detach() - (1 - b1) * z) / b1).clone()


@pytest.mark.parametrize(
    ("with_runcast", "strategy", "step"),
    [(True, "steps", 10), (True, "epoch", 8), (False, "steps", 10)],  # 8 steps per epoch
)
def test_schedule_free_checkpoint_holds_eval_weights(
    tmp_path: Path, with_runcast: bool, strategy: str, step: int
) -> None:
    model = _model()
    opt = schedulefree.AdamWScheduleFree(model.parameters(), lr=1e-2)
    probe = _Probe(step)
    callbacks: list[Any] = [probe]
    if with_runcast:
        callbacks.append(RuncastCallback(db=str(tmp_path / "r.db")))
    args = _args(
        tmp_path, max_steps=step, save_strategy=strategy, save_steps=step, save_only_model=True
    )
    Trainer(
        model=model, args=args, train_dataset=Tokens(), optimizers=(opt, None), callbacks=callbacks
    ).train()
    saved = load_file(str(tmp_path / "out" / f"checkpoint-{step}" / "model.safetensors"))
    key = "transformer.h.0.mlp.c_fc.weight"
    # x and y really differ here, so saving the wrong one is visible
    assert not torch.allclose(probe.x[key], probe.y[key], atol=1e-4)
    if with_runcast:
        assert torch.allclose(saved[key], probe.x[key], atol=1e-6)  # the evaluation weights
        assert in_train_mode(opt) is False  # final weights left as x too
    else:
        # without runcast the Trainer saves the gradient point y: the bug this fixes
        assert torch.allclose(saved[key], probe.y[key], atol=1e-6)


def test_evaluate_without_training_is_recorded(tmp_path: Path, db_path: Path) -> None:
    cb = RuncastCallback(project="hf", name="eval-only", db=str(db_path))
    trainer = Trainer(model=_model(), args=_args(tmp_path), eval_dataset=Tokens(16), callbacks=[cb])
    got = trainer.evaluate()["eval_loss"]
    # on_train_begin never comes for evaluate(): no run was started and the metrics were lost
    cb.run.finish()
    (info,) = runcast.open_store(db_path).runs(project="hf")
    curve = runcast.open_store(db_path).curve(info.id, "eval_loss")
    assert info.name == "eval-only" and curve.step.tolist() == [0]
    assert curve.value[0] == pytest.approx(got)


def test_train_twice_then_evaluate(tmp_path: Path, db_path: Path) -> None:
    cb = RuncastCallback(project="hf", db=str(db_path))
    trainer = Trainer(
        model=_model(),
        args=_args(tmp_path, max_steps=4),
        train_dataset=Tokens(),
        eval_dataset=Tokens(16),
        callbacks=[cb],
    )
    trainer.train()
    # the second train() logged into the run the first finished: StoreError at its first log
    trainer.train()
    # evaluate() after training did the same; now its numbers go into the run just trained
    got = trainer.evaluate()
    store = runcast.open_store(db_path)
    runs = store.runs(project="hf")
    assert [r.status for r in runs] == ["finished", "finished"]  # one run per train()
    assert all(store.curve(r.id, "loss").step.tolist() == [1, 2, 3, 4] for r in runs)
    newest = runs[0]  # newest first: the second train()'s run, at its last step
    evals = store.curve(newest.id, "eval_loss")
    assert evals.step.tolist() == [4]
    assert evals.value[0] == pytest.approx(got["eval_loss"])


def test_a_finished_run_is_refused_before_the_first_step(tmp_path: Path, db_path: Path) -> None:
    run = runcast.init(project="hf", name="done", db=str(db_path))
    run.finish()
    trainer = Trainer(
        model=_model(),
        args=_args(tmp_path),
        train_dataset=Tokens(),
        callbacks=[RuncastCallback(run=run)],
    )
    # was a StoreError at the first log, logging_steps into training
    with pytest.raises(runcast.errors.InvalidInputError, match="is finished"):
        trainer.train()
    assert trainer.state.global_step == 0


class _LogsNumpyAndTensors(TrainerCallback):  # type: ignore[misc]
    """Adds a numpy scalar and a 0-d tensor to every log, as a user's callback may."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if logs is not None and "loss" in logs:
            logs["acc_np"] = np.float32(0.25)
            logs["acc_t"] = torch.tensor(0.5)


def test_numpy_and_tensor_values_are_recorded_and_a_missing_stop_metric_warns(
    tmp_path: Path, db_path: Path
) -> None:
    cb = RuncastCallback(
        project="hf", db=str(db_path), stop_rule=StopRule(min_points=3), stop_metric="eval_acc"
    )
    trainer = Trainer(
        model=_model(),
        args=_args(tmp_path, max_steps=5),
        train_dataset=Tokens(),
        callbacks=[_LogsNumpyAndTensors(), cb],
    )
    # the stop rule never ran (no 'eval_acc' logged) and nothing said so
    with pytest.warns(runcast.RuncastWarning, match="never checked: no log had 'eval_acc'"):
        trainer.train()
    store = runcast.open_store(db_path)
    (info,) = store.runs(project="hf")
    # np.float32 and torch scalars were dropped without a word
    assert store.curve(info.id, "acc_np").value.tolist() == [0.25] * 5
    assert store.curve(info.id, "acc_t").value.tolist() == [0.5] * 5
