"""EarlyStopCallback in a real Hugging Face Trainer: a tiny MLP that overfits 24 noisy points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import Trainer, TrainingArguments  # noqa: E402

from runcast.integrations.hf import EarlyStopCallback  # noqa: E402
from runcast.steer import EarlyStopper  # noqa: E402


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


def _trainer(tmp_path: Path, cb: EarlyStopCallback, **kw: Any) -> Trainer:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 8, generator=g)
    y = x[:, :1] + 0.7 * torch.randn(24, 1, generator=g)
    xv = torch.randn(256, 8, generator=g)
    yv = xv[:, :1] + 0.7 * torch.randn(256, 1, generator=g)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=600,
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
        callbacks=[cb],
    )


def test_stops_on_the_turn_and_restores_the_best_weights(tmp_path: Path) -> None:
    cb = EarlyStopCallback(EarlyStopper(window=3))
    trainer = _trainer(tmp_path, cb, save_strategy="no")
    trainer.train()
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
