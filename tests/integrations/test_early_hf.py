"""EarlyStopCallback in a real Hugging Face Trainer: a tiny MLP that overfits 24 noisy points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import Trainer, TrainingArguments  # noqa: E402

import runcast  # noqa: E402
from runcast.errors import RuncastWarning  # noqa: E402
from runcast.integrations.hf import EarlyStopCallback, RuncastCallback  # noqa: E402
from runcast.steer import EarlyStopper, StopRule  # noqa: E402


class Points(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 128), torch.nn.Tanh(), torch.nn.Linear(128, 1)
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


def _trainer(
    tmp_path: Path,
    cb: EarlyStopCallback,
    max_steps_: int = 600,
    more: tuple[Any, ...] = (),
    **kw: Any,
) -> Trainer:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 8, generator=g)
    y = x[:, :1] + 0.7 * torch.randn(24, 1, generator=g)
    xv = torch.randn(256, 8, generator=g)
    yv = xv[:, :1] + 0.7 * torch.randn(256, 1, generator=g)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=max_steps_,
        per_device_train_batch_size=24,
        per_device_eval_batch_size=256,
        learning_rate=3e-3,
        lr_scheduler_type="constant",
        warmup_steps=0,
        eval_strategy="steps",
        eval_steps=10,
        logging_steps=10,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        **kw,
    )
    return Trainer(
        model=MLP(),
        args=args,
        train_dataset=Points(x, y),
        eval_dataset=Points(xv, yv),
        callbacks=[*more, cb],
    )


def test_stops_on_the_turn_and_restores_the_best_weights(tmp_path: Path) -> None:
    tracker = RuncastCallback(db=str(tmp_path / "es.db"), name="hf")
    cb = EarlyStopCallback(EarlyStopper(window=3), run=tracker)  # records into its run
    trainer = _trainer(tmp_path, cb, save_strategy="no", more=(tracker,))
    trainer.train()
    entry = runcast.open_store(tmp_path / "es.db").run("hf").config["runcast_best"]
    assert (entry["step"], entry["value"]) == (cb.best_step, cb.best_value)
    assert cb.decision is not None and entry["stop_step"] == cb.decision.step
    # the validation loss bottoms out and rises as the MLP memorises 24 points: stopped long
    # before the 600 steps, with the reason and numbers of the turn
    assert trainer.state.global_step < 300
    assert cb.decision is not None and cb.decision.reason.startswith("validation turned")
    assert cb.decision.numbers["rise"] > cb.decision.numbers["rise_needed"]
    assert cb.best_step is not None and cb.best_step < trainer.state.global_step
    assert cb.restored_step == cb.best_step
    # the model now holds the best evaluation's weights: evaluating again gives its loss
    again = trainer.evaluate()["eval_loss"]
    assert again == pytest.approx(cb.best_value, rel=1e-5)
    logged = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h][:-1]
    assert again == pytest.approx(min(logged), rel=1e-5) and again < logged[-1]
    assert cb.best_checkpoint is None  # nothing was saved


def test_names_the_checkpoint_of_the_best_step(tmp_path: Path) -> None:
    cb = EarlyStopCallback(EarlyStopper(window=3), restore=False)
    trainer = _trainer(tmp_path, cb, save_strategy="steps", save_steps=10, save_only_model=True)
    trainer.train()
    assert cb.best_checkpoint == str(tmp_path / f"checkpoint-{cb.best_step}")
    assert (Path(cb.best_checkpoint) / "model.safetensors").exists()
    assert cb.restored_step is None  # restore=False leaves the last weights


def _early_cb(trainer: Trainer) -> EarlyStopCallback:
    return next(c for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStopCallback))


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> EarlyStopCallback:
    """The whole run, uninterrupted: where it stops and which step it keeps."""
    cb = EarlyStopCallback(EarlyStopper(window=3))
    _trainer(tmp_path_factory.mktemp("whole"), cb, save_strategy="no").train()
    return cb


@pytest.mark.parametrize("rebuild", [False, True])
def test_a_resumed_trainer_goes_on_with_the_rule_state_and_best_weights(
    tmp_path: Path, rebuild: bool, whole: EarlyStopCallback
) -> None:
    ckpt = dict(
        save_strategy="steps", save_steps=10, restore_callback_states_from_checkpoint=rebuild
    )
    assert whole.decision is not None and whole.best_step is not None
    cut = whole.best_step + 10  # interrupted after the best, before the stop
    assert cut < whole.decision.step
    # the same run killed at `cut` (a shorter budget stands in for the kill) ...
    first = EarlyStopCallback(EarlyStopper(window=3))
    _trainer(tmp_path / "run", first, max_steps_=cut, **ckpt).train()
    folder = tmp_path / "run" / f"checkpoint-{cut}"
    assert (folder / "runcast_best_weights.pt").is_file()
    # ... and resumed from its checkpoint with a new callback: it knows the evaluations so far,
    # stops where the whole run stopped and restores the best weights it kept before the kill
    again = EarlyStopCallback(EarlyStopper(window=3))
    trainer = _trainer(tmp_path / "run", again, **ckpt)
    trainer.train(resume_from_checkpoint=str(folder))
    cb = _early_cb(trainer)  # the Trainer's own rebuilt callback when rebuild=True
    assert cb.decision is not None and cb.decision.to_dict() == whole.decision.to_dict()
    assert cb.best_step == whole.best_step < cut and cb.restored_step == whole.best_step
    assert trainer.evaluate()["eval_loss"] == pytest.approx(whole.best_value, rel=1e-5)


def test_a_callback_rebuilt_from_its_state_keeps_the_rule_and_says_what_it_lost() -> None:
    cb = EarlyStopCallback(
        EarlyStopper(window=4, z=2.5, stop_rule=StopRule(), until=599), metric="eval_acc"
    )
    args = json.loads(json.dumps(cb.state()["args"]))  # what trainer_state.json holds
    with pytest.warns(RuncastWarning, match="without the stopper's stop_rule"):
        rebuilt = EarlyStopCallback(**args)
    assert rebuilt.metric == "eval_acc" and rebuilt.stopper.stop_rule is None
    # the budget's end travels (an int): a stall test rebuilt with a schedule still knows it
    assert rebuilt.stopper.settings() == EarlyStopper(window=4, z=2.5, until=599).settings()


def test_a_checkpoint_of_an_older_turn_test_still_rebuilds() -> None:
    # trainer_state.json written before trend_z was retired: the run resumes, with a warning
    args = json.loads(json.dumps(EarlyStopCallback(EarlyStopper(window=5)).state()["args"]))
    args["settings"]["trend_z"] = 1.0
    with pytest.warns(RuncastWarning, match=r"no longer has \(trend_z\)"):
        rebuilt = EarlyStopCallback(**args)
    assert rebuilt.stopper.settings() == EarlyStopper(window=5).settings()
