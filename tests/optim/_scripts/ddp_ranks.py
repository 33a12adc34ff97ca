"""Two gloo ranks train one DDP model with ScheduleFreePlus; each writes its x and y to a file.

Usage: python _ddp_ranks.py OUT_DIR PORT AVERAGE_LOSS(0|1). Each rank draws its own batches
(different data, so different losses), as in real data-parallel training.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _rank(rank: int, out: str, port: str, average: bool) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = port
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    from runcast.optim import ScheduleFreePlus

    torch.manual_seed(0)  # the same initial weights on both ranks
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = ScheduleFreePlus(ddp.parameters(), warmup_steps=10, average_loss=average)
    opt.train()
    gen = torch.Generator().manual_seed(100 + rank)  # each rank its own data
    for _ in range(100):
        x = torch.randn(32, 6, generator=gen)
        y = x.sum(1, keepdim=True).sin()
        loss = (ddp(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step(loss=loss)
    y_params = [p.detach().clone() for p in model.parameters()]
    opt.eval()
    x_params = [p.detach().clone() for p in model.parameters()]
    torch.save({"y": y_params, "x": x_params, "metrics": opt.metrics()}, f"{out}/rank{rank}.pt")
    dist.barrier()  # both ranks done before the group goes
    dist.destroy_process_group()
    # the results are on disk: end the rank here. Interpreter teardown with torch's gloo
    # threads aborts a rank now and then (SIGABRT, "terminate called without an active
    # exception"), even after a barrier, the group destroyed and DDP freed: torch's, not ours
    os._exit(0)


if __name__ == "__main__":
    out_dir, port, avg = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    mp.spawn(_rank, args=(out_dir, port, avg), nprocs=2, join=True)
