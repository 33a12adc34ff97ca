"""Real torch.distributed (gloo, 2 processes): only rank 0 records unless told otherwise."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from runcast.store import open_store

pytest.importorskip("torch.distributed")

# rank and world size are passed to init_process_group, not through RANK/WORLD_SIZE env vars,
# so the tracker must ask torch.distributed itself
CHILD = textwrap.dedent(
    """
    import os
    import sys
    import torch.distributed as dist
    import runcast

    db, port, rank, zero_only = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    run = runcast.init(project="ddp", name="job", db=db, rank_zero_only=zero_only)
    for step in range(20):
        run.log({"loss": 1.0 / (step + 1), "rank": float(rank)})
    run.finish()
    dist.barrier()
    dist.destroy_process_group()
    print("enabled" if run.enabled else "disabled", flush=True)
    # ended here: interpreter teardown with torch's gloo threads aborts a rank now and then
    # (SIGABRT, "terminate called without an active exception")
    os._exit(0)
    """
)


def _launch(db: Path | str, zero_only: bool, env: dict[str, str], port: int) -> list[str]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), str(port), str(rank), "1" if zero_only else "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for rank in (0, 1)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.strip())
    return outs


@pytest.mark.slow
def test_only_rank_zero_records_under_torch_distributed(
    store_db: Path | str,
    free_port: Callable[[], int],
    launcher_free_env: Callable[[], dict[str, str]],
) -> None:
    # (rank_zero_only=False is checked with launcher env vars in test_run.py: cheaper)
    db = store_db
    outs = _launch(db, zero_only=True, env=launcher_free_env(), port=free_port())
    assert outs == ["enabled", "disabled"]
    with open_store(db) as store:
        (info,) = store.runs("ddp")  # one run, from rank 0 only
        assert info.name == "job"
        assert set(store.curve(info.id, "rank").value.tolist()) == {0.0}
        assert store.summary(info.id)["loss"].n_points == 20
