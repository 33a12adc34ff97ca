"""Lightning DDP on 2 CPU processes (gloo) with RuncastCallback: one writer, one stopping step.

Real ``Trainer(strategy="ddp" | "ddp_spawn", accelerator="cpu", devices=2)`` runs in a
subprocess (``_ddp_scripts/lightning_fit.py``); no mocks. Each rank trains on its own shard, so
the ranks' losses differ and the store shows whose were recorded.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runcast
from runcast.store import open_store

pytest.importorskip("lightning.pytorch")

from runcast.errors import InvalidInputError
from runcast.integrations.lightning import RuncastCallback
from runcast.steer import StopRule

SCRIPT = Path(__file__).parent / "_ddp_scripts" / "lightning_fit.py"
MAX_STEPS = 24  # the script's budget


def _fit(
    tmp: Path, strategy: str, rule: str, env: dict[str, str], port: int
) -> tuple[Path, list[dict[str, Any]]]:
    db = tmp / "runcast.db"
    # Lightning reads the rendezvous address from these; a free port per test keeps parallel
    # pytest workers apart
    env = {**env, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(db), str(tmp), strategy, rule],
        capture_output=True,
        text=True,
        env=env,
        timeout=150,  # a rank left waiting in a collective shows up here, not as a hung suite
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return db, [json.loads((tmp / f"rank{r}.json").read_text()) for r in (0, 1)]


def _losses(report: dict[str, Any]) -> list[float]:
    return [v for _, v in sorted((int(k), v) for k, v in report["losses"].items())]


@pytest.mark.slow
@pytest.mark.timeout(200)
@pytest.mark.parametrize(
    ("strategy", "rule"),
    [
        ("ddp", "stop"),  # Lightning re-launches the script for rank 1
        ("ddp_spawn", "plateau"),  # torch.multiprocessing spawns both ranks
    ],
)
def test_rank_zero_records_and_every_rank_stops_at_its_decision(
    tmp_path: Path,
    strategy: str,
    rule: str,
    free_port: Callable[[], int],
    launcher_free_env: Callable[[], dict[str, str]],
) -> None:
    db, (r0, r1) = _fit(tmp_path, strategy, rule, launcher_free_env(), free_port())
    assert (r0["world_size"], r1["world_size"]) == (2, 2)
    assert (r0["owns_run"], r1["owns_run"]) == (True, False)  # only rank 0 started a run

    # every rank stopped at the same step, before the budget, and at the decision's step
    stop = r0["global_step"]
    assert r1["global_step"] == stop and stop < MAX_STEPS
    assert r0["decisions"] == r1["decisions"]  # rank 0's decision reached rank 1 whole
    (decision,) = r0["decisions"]
    assert decision["action"] == "stop" and decision["step"] == stop
    if rule == "stop":
        # the first stop-rule check with a forecast (every 6 steps); the reason names the rule
        assert stop % 6 == 0
        assert decision["reason"].startswith("stopped learning")
        assert decision["numbers"]["tolerance"] == 100.0
        assert decision["numbers"]["remaining_steps"] == MAX_STEPS - stop
    else:
        # validations at steps 4 and 8: nothing beat the first by 100, a plateau at the 2nd
        assert stop == 8
        assert "plateau" in decision["reason"]
        # the broken forecaster raised at step 6 on rank 0 only: a warning, and training went
        # on in step on both ranks (no hang, no crash)
        (warning,) = r0["warnings"]
        assert "step 6 (ValueError: forecaster down)" in warning
        assert r1["warnings"] == []

    with open_store(db) as store:
        (info,) = store.runs("ddp")  # one run: rank 1 never wrote
        assert info.name == f"{strategy}-{rule}" and info.status == "finished"
        loss = store.curve(info.id, "loss")
        assert loss.step.tolist() == list(range(1, stop + 1))  # one point per step, not two
        # the points are rank 0's own losses (the ranks train on different shards)
        assert loss.value.tolist() == pytest.approx(_losses(r0), rel=1e-6)
        assert _losses(r1) != pytest.approx(_losses(r0), rel=1e-3)
        assert store.curve(info.id, "runcast_stop").step.tolist() == [stop]  # recorded once
        if rule == "plateau":
            assert store.curve(info.id, "val_loss").step.tolist() == [4, 8]


def test_init_before_fit_in_a_lightning_launched_rank_records_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # exactly the variables lightning.pytorch.strategies.launchers.subprocess_script sets for
    # the rank-1 process it starts; a script calling runcast.init() at its top (to pass run=
    # to the callback) runs before Trainer.fit creates the process group
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("NODE_RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "1")
    run = runcast.init(project="early", db=db_path)
    run.finish()
    assert run.enabled is False  # rank 1 must not start a second run


def test_callback_travels_to_spawned_ranks_without_a_live_run(db_path: Path) -> None:
    # ddp_spawn pickles the trainer, callbacks included, into the processes it starts
    cb = RuncastCallback(project="p", db=str(db_path), stop_rule=StopRule(tolerance=0.5))
    copy = pickle.loads(pickle.dumps(cb))
    # the settings arrive whole: the rank starts its own run from them
    assert (copy.project, copy.db, copy.stop_rule.tolerance) == ("p", str(db_path), 0.5)

    run = runcast.init(project="p", db=db_path)
    try:
        # a run recording in this process cannot travel: a clear error naming the fix, not
        # "cannot pickle 'sqlite3.Connection' object" from deep inside Lightning
        with pytest.raises(InvalidInputError, match="Leave run= unset"):
            pickle.dumps(RuncastCallback(run=run))
    finally:
        run.finish()
