"""Hugging Face Trainer under torchrun (2 CPU processes, gloo) with RuncastCallback.

``torchrun --nproc_per_node 2`` starts ``_ddp_scripts/hf_train.py``: a tiny GPT-2 built from a
config (no download) with a stop rule that fires at its first check; no mocks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runcast.store import open_store

pytest.importorskip("transformers")
pytest.importorskip("torch.distributed.run")

SCRIPT = Path(__file__).parent / "_ddp_scripts" / "hf_train.py"
MAX_STEPS = 30  # the script's budget
CHECK_EVERY = 6  # its stop rule checks every 6 logs (one log per step)


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_main_process_records_and_every_process_stops_at_its_decision(
    tmp_path: Path, free_port: Callable[[], int], launcher_free_env: Callable[[], dict[str, str]]
) -> None:
    env = launcher_free_env()
    db = tmp_path / "runcast.db"
    torchrun = [sys.executable, "-m", "torch.distributed.run"]
    proc = subprocess.run(
        [
            *torchrun,
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            str(SCRIPT),
            str(db),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=150,  # a rank left waiting in a collective shows up here, not as a hung suite
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert (r0["world_size"], r1["world_size"]) == (2, 2)
    assert (r0["owns_run"], r1["owns_run"]) == (True, False)  # only the main process records

    # both processes stopped at the same step, before the budget, at the decision's step
    stop = r0["global_step"]
    assert r1["global_step"] == stop and stop < MAX_STEPS and stop % CHECK_EVERY == 0
    assert r0["decisions"] == r1["decisions"]  # the main process's decision, whole, on both
    (decision,) = r0["decisions"]
    assert decision["action"] == "stop" and decision["step"] == stop
    assert decision["reason"].startswith("stopped learning")  # says why, with its numbers
    assert decision["numbers"]["remaining_steps"] == MAX_STEPS - stop

    with open_store(db) as store:
        (info,) = store.runs("ddp")  # one run: the second process never wrote
        assert info.name == "hf" and info.status == "finished"
        assert info.config["ddp_backend"] == "gloo"  # the TrainingArguments are its config
        loss = store.curve(info.id, "loss")
        assert loss.step.tolist() == list(range(1, stop + 1))  # one point per step, not two
        # the Trainer logs the loss averaged over both processes: what the store holds
        logged = [v for _, v in sorted((int(k), v) for k, v in r0["losses"].items())]
        assert loss.value.tolist() == pytest.approx(logged, rel=1e-6)
        assert store.curve(info.id, "runcast_stop").step.tolist() == [stop]  # recorded once
