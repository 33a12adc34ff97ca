"""Two gloo ranks started with torch.multiprocessing.spawn, recording with runcast.init.

Run by tests/integrations/test_ddp_torch.py:

    python torch_ranks.py DB OUT PORT

Each rank, after init_process_group (rank and world size passed as arguments, not through
RANK/WORLD_SIZE env vars, so the tracker has to ask torch.distributed):

1. records a run with the defaults (project "zero": only rank 0 should write), finishing it twice;
2. records a run with ``rank_zero_only=False`` in a with-block (project "each");
3. records a run in a helper function and never finishes it (project "unfinished");
4. shares steering decisions through the callbacks' RunOwner over the real process group: a
   decision that differs per rank, one whose rule raises on rank 0, and a stop.

and writes OUT/rank<r>.json with what it saw.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp

import runcast
from runcast.integrations._run_owner import RunOwner, torch_broadcast
from runcast.steer import Decision


def _unfinished(db: str, rank: int) -> None:
    # the run goes out of scope unfinished: interpreter exit has to write its points
    run = runcast.init(project="unfinished", name="job", db=db)
    for step in range(10):
        run.log({"loss": 1.0 / (step + 1), "rank": float(rank)}, step=step)


def _broken() -> Decision:
    raise ValueError("forecaster down")


def worker(rank: int, db: str, out: str, port: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    report: dict[str, Any] = {"rank": rank}

    run = runcast.init(project="zero", name="job", db=db)
    for step in range(10):
        run.log({"loss": 1.0 / (step + 1), "rank": float(rank)}, step=step)
    run.flush()
    run.finish()
    run.finish()  # finishing twice is safe on every rank
    report["zero_enabled"] = run.enabled

    with runcast.init(project="each", name="job", db=db, rank_zero_only=False) as each:
        for step in range(10):
            each.log({"loss": 1.0 / (step + 1), "rank": float(rank)}, step=step)
    each.finish()  # after the with-block: a no-op
    report["each_enabled"] = each.enabled

    _unfinished(db, rank)

    owner = RunOwner(project="steer", name="job", db=db, config=None, run=None)
    if rank == 0:
        owner.start_run("job", {"world_size": 2})
    # each rank would decide differently: rank 1 alone would stop, and then hang rank 0
    local = Decision("continue" if rank == 0 else "stop", f"rank {rank}'s own view", step=5)
    report["differ_stops"] = owner.share(local, torch_broadcast, rank == 0)
    # rank 0's rule raises: a warning there, no stop anywhere, and rank 0 still broadcasts
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        failed = owner.decide(_broken, 10) if rank == 0 else None
        report["failed_stops"] = owner.share(failed, torch_broadcast, rank == 0)
    report["warnings"] = [str(w.message) for w in caught]
    # rank 0 decides to stop; rank 1's own view says continue
    mine = (
        Decision("stop", "stopped learning: P(gain > 0.01) = 0.02", step=15, numbers={"p": 0.02})
        if rank == 0
        else Decision("continue", "rank 1 would go on", step=15)
    )
    report["stop_stops"] = owner.share(mine, torch_broadcast, rank == 0)
    report["decisions"] = [d.to_dict() for d in owner.decisions]
    owner.finish_run()

    dist.barrier()
    dist.destroy_process_group()
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    mp.spawn(worker, args=(sys.argv[1], sys.argv[2], sys.argv[3]), nprocs=2)
