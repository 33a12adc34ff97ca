"""Two gloo ranks training a small DDP model with TrainingMonitor's noise scale.

Run by tests/integrations/test_noise_probe.py: ``python noise_ranks.py DB OUT PORT``.

Each rank trains 4 steps on its own 8 examples per step, computes what the estimator should
have seen (its own gradient and the mean over both ranks, from autograd on a plain copy of the
model) and writes OUT/rank<r>.json.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import runcast
from runcast.integrations.torch import TrainingMonitor
from runcast.steer import GradientNoiseScale


def _batch(step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 * step + rank)
    x = torch.randn(8, 6, generator=g)
    return x, x.sum(1, keepdim=True) + 0.3 * torch.randn(8, 1, generator=g)


def _flat_grad(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = torch.nn.functional.mse_loss(model(x), y)
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))])


def worker(rank: int, db: str, out: str, port: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    plain = copy.deepcopy(net)  # trained by hand on both ranks' data: what DDP must match
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    gns, ref = GradientNoiseScale(horizon=None), GradientNoiseScale(horizon=None)
    run = runcast.init(project="noise", name="ddp", db=db)
    mon = TrainingMonitor(ddp, opt, run, noise_scale=gns, batch_size=8)
    logged = {}
    for step in range(4):
        mine = _flat_grad(plain, *_batch(step, rank))
        both = (_flat_grad(plain, *_batch(step, 0)) + _flat_grad(plain, *_batch(step, 1))) / 2
        ref.update(float(mine.square().sum()), float(both.square().sum()), 8, 16)
        x, y = _batch(step, rank)
        torch.nn.functional.mse_loss(ddp(x), y).backward()
        logged = mon.record(step)
        opt.step()
        opt.zero_grad()
        # the plain copy takes the mean gradient's step: DDP's weights must stay equal to it
        plain_opt.zero_grad()
        offset = 0
        for p in plain.parameters():
            p.grad = both[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        plain_opt.step()
    equal = all(
        torch.allclose(a, b, atol=1e-6)
        for a, b in zip(net.parameters(), plain.parameters(), strict=True)
    )
    run.finish()
    report = {
        "b_simple": gns.b_simple,
        "expected": ref.b_simple,
        "updates": gns.updates,
        "batch_size": float(logged["batch_size"]),
        "training_equal": equal,
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    dist.barrier()  # both ranks done (the run finished, the reports written)
    dist.destroy_process_group()
    # end the rank here: interpreter teardown with torch's gloo threads aborts a rank now and
    # then (SIGABRT, "terminate called without an active exception"), as in CI, even after a
    # barrier and the group destroyed. The run is finished and the report closed above
    os._exit(0)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mp.spawn(worker, args=tuple(sys.argv[1:4]), nprocs=2, join=True)
