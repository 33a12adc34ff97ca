"""End to end, as a user runs it: a tiny GPT-2 (built from a config, no download) trained by the
Hugging Face Trainer on the demo text with a cosine schedule and warmup, RuncastCallback added,
no schedule typed. Every logged metric is in the store, the dashboard forecasts the running run
to max_steps from 20% of it, and ``runcast forecast RUN --from STEP`` uses the Trainer's own
schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

transformers = pytest.importorskip("transformers")
from transformers import (  # noqa: E402
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

import runcast  # noqa: E402
from runcast.cli import app  # noqa: E402
from runcast.demo._text import CharData, CharWindows, load_text  # noqa: E402
from runcast.integrations.hf import RuncastCallback  # noqa: E402

STEPS, CTX = 60, 16


class Watch(TrainerCallback):  # type: ignore[misc]
    """Keeps every key the Trainer logs; at 20% of max_steps asks the dashboard for a forecast."""

    def __init__(self, cb: RuncastCallback, db: Path, check: Any) -> None:
        self.cb, self.db, self.check = cb, db, check
        self.keys: set[str] = set()
        self.checked_at: int | None = None

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        self.keys |= set(logs or {})
        if self.checked_at is None and state.global_step >= STEPS // 5 + 2:
            self.check(self.db, self.cb.run, planned_end=STEPS)
            self.checked_at = state.global_step


def test_hf_trainer_end_to_end(tmp_path: Path, e2e: Any) -> None:
    torch.set_num_threads(1)
    data = CharData.from_text(load_text())
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=data.vocab, n_positions=CTX)
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        max_steps=STEPS,
        learning_rate=3e-3,
        lr_scheduler_type="cosine",
        warmup_steps=10,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=20,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    db = tmp_path / "hf.db"
    cb = RuncastCallback(project="e2e", name="gpt2", db=str(db))
    watch = Watch(cb, db, e2e.check_live_forecast)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=CharWindows(data.train, STEPS * 8, CTX, 0),
        eval_dataset=CharWindows(data.val, 32, CTX, 1),
        callbacks=[cb, watch],
    )
    trainer.train()
    final_eval = trainer.evaluate()  # after train(), as nearly everyone calls it
    assert watch.checked_at is not None  # the dashboard forecast the run while it trained

    store = runcast.open_store(db)
    (info,) = store.runs(project="e2e")
    # every metric the Trainer logged is in the store (learning_rate under its name 'lr')
    logged = {("lr" if k == "learning_rate" else k) for k in watch.keys}
    assert logged <= set(store.keys(info.id)), logged - set(store.keys(info.id))
    # the final evaluate() went into the run trained, at its last step
    evals = store.curve(info.id, "eval_loss")
    assert evals.step.tolist() == [20, 40, 60]
    assert evals.value[-1] == pytest.approx(final_eval["eval_loss"])
    # the recorded plan is the Trainer's own scheduler: warmup to 3e-3 at step 10, cosine to 0
    lrs = e2e.check_plan_matches_lr(store, info.id)
    assert lrs.size == STEPS + 1 and float(lrs[11]) == pytest.approx(3e-3)
    assert float(lrs[1]) == 0.0 and float(lrs[2]) == pytest.approx(3e-4)  # HF warms up from 0
    assert float(lrs[-1]) < 1e-5  # step 60 trained at the end of the cosine
    # runcast forecast RUN --from 20: the law over that schedule, to the planned end
    out = e2e.cli_forecast_from(db, info.id, 20)
    assert out["schedule_known"] is True and out["until"] == STEPS
    assert out["last_observed_step"] == 20 and out["method"] in runcast.forecast.available_methods()
    lo, hi = out["final"]["interval_95"]
    assert 0 < lo <= out["final"]["median"] <= hi  # a loss, forecast above its floor of 0
    # without --from, the finished run is said to be at its planned end, with a --from to try
    ended = CliRunner().invoke(app, ["forecast", info.id, "--db", str(db)])
    assert ended.exit_code == 1
    assert f"reached its planned end (step {STEPS})" in ended.output
    tried = e2e.cli_forecast_from(db, info.id, int(ended.output.split("--from ")[2].split(",")[0]))
    assert tried["last_observed_step"] < STEPS
