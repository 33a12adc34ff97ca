"""Tracker overhead in a real training loop: a small torch MLP on the CPU, with and without runcast.

Question: how much slower is a training loop that logs 5 metrics every step with runcast than
the same loop without logging? Goal: <= 1% (median over repeated runs).

One model trains on; its steps are cut into blocks of ``--block`` steps, and the blocks take
turns (plain, control, runcast, TensorBoard, then the reverse order, ...) so that the shared
machine's drifts hit every variant alike. "control" is the plain loop again: its "overhead" is
the noise floor, and an overhead below it cannot be told from zero on this machine. Each logged block ends with a flush, so the writer thread's
work is charged to the block that caused it (conservative: a commit every block, where the
tracker alone commits once a second). One repeat's overhead is total logged time / total plain
time - 1; the table gives the median over ``--repeats`` repeats. The loss is logged as a 0-d
tensor, as users do, with no ``.item()`` in the loop; TensorBoard's ``add_scalar`` (5 calls per
step, flushed per block) is the anchor.

    python bench/training_overhead.py            # 5 repeats x 10 rounds x 100-step blocks
    python bench/training_overhead.py --quick    # 3 repeats x 4 rounds
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import runcast

Logger = Callable[[dict[str, Any], int], None]


class Trainer:
    """A small MLP training on a fixed batch; ``block`` runs some steps and times them."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Sequential(
            nn.Linear(128, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 10)
        )
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.x = torch.randn(64, 128)
        self.y = torch.randint(0, 10, (64,))
        self.loss_fn = nn.CrossEntropyLoss()
        self.step = 0

    def block(
        self, steps: int, log: Logger | None, flush: Callable[[], None] | None
    ) -> tuple[float, float]:
        """Run ``steps`` steps; returns (wall seconds, CPU seconds of the whole process)."""
        model, opt = self.model, self.opt
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(model(self.x), self.y)
            loss.backward()
            opt.step()
            self.step += 1
            metrics = {
                "loss": loss.detach(),  # a 0-d tensor: converted later, in the writer thread
                "lr": opt.param_groups[0]["lr"],
                "samples": self.step * 64,
                "epoch": self.step / 100.0,
                "batch_size": 64,
            }
            if log is not None:
                log(metrics, self.step)
        if flush is not None:
            flush()
        return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--isolated", type=int, default=50_000, help="steps of the cost test")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats, rounds = (3, 4) if args.quick else (args.repeats, args.rounds)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)  # one core: steadier timings on a shared machine
    from torch.utils.tensorboard import SummaryWriter

    trainer = Trainer()
    trainer.block(50, None, None)  # warm up torch's kernels and allocator
    # per clock ("wall", "cpu"): each repeat's overhead ratio, and the summed times
    # "control" runs the plain loop again: its "overhead" is the noise floor of this machine
    compared = ("runcast", "tb", "control")
    ratios = {c: {k: [] for k in compared} for c in ("wall", "cpu")}  # type: ignore[var-annotated]
    totals = {c: dict.fromkeys(("plain", *compared), 0.0) for c in ("wall", "cpu")}
    with tempfile.TemporaryDirectory() as tmp:
        run = runcast.init(project="overhead", db=Path(tmp) / "runcast.db")
        writer = SummaryWriter(str(Path(tmp) / "tb"))

        def tb_log(m: dict[str, Any], step: int) -> None:
            for k, v in m.items():
                writer.add_scalar(k, v, global_step=step)

        variants: list[tuple[str, Logger | None, Callable[[], None] | None]] = [
            ("plain", None, None),
            ("control", None, None),
            ("runcast", lambda m, s: run.log(m, step=s), run.flush),
            ("tb", tb_log, writer.flush),
        ]
        per_round: dict[str, list[float]] = {k: [] for k in compared}  # CPU, one per round
        # every block is a short training run of its own: CPU seconds per block, per variant
        per_block: dict[str, list[float]] = {k: [] for k in ("plain", *compared)}
        for _ in range(repeats):
            time_of = {c: dict.fromkeys(("plain", *compared), 0.0) for c in ("wall", "cpu")}
            for r in range(rounds):
                this_round: dict[str, float] = {}
                for name, log, flush in variants if r % 2 == 0 else variants[::-1]:
                    # collect the garbage of the previous block (TensorBoard's protobufs) now,
                    # so that its cost is not charged to whichever block comes next
                    gc.collect()
                    wall, cpu = trainer.block(args.block, log, flush)
                    time_of["wall"][name] += wall
                    time_of["cpu"][name] += cpu
                    this_round[name] = cpu
                    per_block[name].append(cpu)
                for name in compared:
                    per_round[name].append(this_round[name] / this_round["plain"] - 1.0)
            for clock, by_name in time_of.items():
                for name in compared:
                    ratios[clock][name].append(by_name[name] / by_name["plain"] - 1.0)
                for name, t in by_name.items():
                    totals[clock][name] += t
        run.finish()
        writer.close()

    steps = repeats * rounds * args.block
    cost_cpu, cost_wall = logging_cost(trainer, args.isolated)
    plain_cpu = totals["cpu"]["plain"] / steps
    print(
        f"\n### Training-loop overhead ({repeats} repeats x {rounds} rounds x {args.block}-step "
        "blocks per variant; MLP 128-256-256-10, batch 64, 1 torch thread)\n"
    )
    print("| loop | clock | ms per step | median overhead vs plain | each repeat |")
    print("|---|---|---:|---:|---|")
    for clock in ("cpu", "wall"):
        print(
            f"| plain (no logging) | {clock} | {totals[clock]['plain'] / steps * 1e3:.3f} | - | - |"
        )
        for name, label in (
            ("runcast", "runcast `run.log`, 5 metrics/step"),
            ("tb", "TensorBoard `add_scalar` x 5/step"),
            ("control", "control: the plain loop again (noise floor)"),
        ):
            shown = ", ".join(f"{100 * r:+.2f}%" for r in ratios[clock][name])
            print(
                f"| {label} | {clock} | {totals[clock][name] / steps * 1e3:.3f} | "
                f"{100 * statistics.median(ratios[clock][name]):+.2f}% | {shown} |"
            )
    ov = statistics.median(ratios["cpu"]["runcast"])
    direct = cost_cpu / plain_cpu
    rounds_ov = {k: statistics.median(v) for k, v in per_round.items()}
    plain_median = statistics.median(per_block["plain"])
    runs_ov = {k: statistics.median(per_block[k]) / plain_median - 1.0 for k in compared}
    print(
        f"\nMedian over all {len(per_round['runcast'])} rounds of the per-round CPU overhead: "
        f"runcast {100 * rounds_ov['runcast']:+.2f}%, TensorBoard {100 * rounds_ov['tb']:+.2f}%, "
        f"control {100 * rounds_ov['control']:+.2f}%."
        f"\nEach block as a run of its own ({len(per_block['plain'])} runs of {args.block} steps "
        "per variant), median run time over the plain runs' median: "
        f"runcast {100 * runs_ov['runcast']:+.2f}%, TensorBoard {100 * runs_ov['tb']:+.2f}%, "
        f"control {100 * runs_ov['control']:+.2f}%."
        "\n\n`cpu` is the CPU time of the whole process (training thread + writer thread); `wall` "
        "is elapsed time. On a shared machine both vary by several % between identical blocks."
    )
    print(
        f"\n### runcast's cost per training step, measured on its own ({args.isolated:,} steps)\n"
        "\n| what | CPU us per step | wall us per step | share of a plain step (CPU) |"
        "\n|---|---:|---:|---:|"
        f"\n| `run.log` of the same 5 metrics + writer thread + commits, incl. `finish()` | "
        f"{cost_cpu * 1e6:.2f} | {cost_wall * 1e6:.2f} | {100 * direct:.2f}% |"
        f"\n| a plain training step (from the loop above) | {plain_cpu * 1e6:.0f} | "
        f"{totals['wall']['plain'] / steps * 1e6:.0f} | 100% |"
    )
    print(
        f"\nGoal runcast <= 1% slower: {100 * direct:.2f}% of a step measured directly "
        f"({'met' if direct <= 0.01 else 'NOT met'}); interleaved loop: median of repeats "
        f"{100 * ov:+.2f}%, median of rounds {100 * rounds_ov['runcast']:+.2f}%, median of "
        f"{args.block}-step runs {100 * runs_ov['runcast']:+.2f}% (CPU)."
    )


def logging_cost(trainer: Trainer, steps: int) -> tuple[float, float]:
    """CPU and wall seconds per step of logging alone: the same metrics dicts (a 0-d tensor
    loss included), with minus without ``run.log``, the writer's work and final flush counted."""
    loss = torch.tensor(2.0)
    lr = trainer.opt.param_groups[0]["lr"]

    def metrics(step: int) -> dict[str, Any]:
        return {
            "loss": loss,
            "lr": lr,
            "samples": step * 64,
            "epoch": step / 100.0,
            "batch_size": 64,
        }

    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        for step in range(steps):
            metrics(step)
        base_wall, base_cpu = time.perf_counter() - t0, time.process_time() - c0
        run = runcast.init(project="cost", db=Path(tmp) / "runcast.db")
        t0, c0 = time.perf_counter(), time.process_time()
        for step in range(steps):
            run.log(metrics(step), step=step)
        run.finish()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return (cpu - base_cpu) / steps, (wall - base_wall) / steps


if __name__ == "__main__":
    main()
