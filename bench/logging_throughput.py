"""Logging throughput: points per second through runcast, TensorBoard and MLflow, side by side.

Question: how many metric points per second can a training script hand to each tracker,
counting the final flush/close (everything on disk at the end)? The workload is the issue's:
100,000 steps x 10 metrics = 1,000,000 points (Python floats), the same values for every
tracker. Goal: runcast >= 5x TensorBoard's ``SummaryWriter.add_scalar`` and >= 20x MLflow's
``log_metrics`` into its SQLite tracking store.

MLflow writes each ``log_metrics`` call to its database before returning, so it is measured on
fewer steps (``--mlflow-steps``, default 200 = 2,000 points) and compared in points per second;
the table says so.

    python bench/logging_throughput.py             # the full 1,000,000 points (~1-2 min)
    python bench/logging_throughput.py --quick     # 100,000 points
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

N_METRICS = 10


def workload(steps: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(0)
    values = rng.random((steps, N_METRICS)).tolist()
    keys = [f"metric_{j}" for j in range(N_METRICS)]
    return [dict(zip(keys, row, strict=True)) for row in values]


def bench_runcast(rows: list[dict[str, float]], tmp: Path) -> float:
    import runcast

    start = time.perf_counter()
    run = runcast.init(project="bench", db=tmp / "runcast.db")
    for step, row in enumerate(rows):
        run.log(row, step=step)
    run.finish()  # waits until every point is committed
    return time.perf_counter() - start


def bench_tensorboard(rows: list[dict[str, float]], tmp: Path) -> float:
    from torch.utils.tensorboard import SummaryWriter

    start = time.perf_counter()
    writer = SummaryWriter(str(tmp / "tb"))
    for step, row in enumerate(rows):
        for key, value in row.items():
            writer.add_scalar(key, value, global_step=step)
    writer.close()  # flushes the event file
    return time.perf_counter() - start


def bench_mlflow(rows: list[dict[str, float]], tmp: Path) -> float:
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    mlflow.set_experiment("bench")  # creates the schema: not timed
    start = time.perf_counter()
    with mlflow.start_run():
        for step, row in enumerate(rows):
            mlflow.log_metrics(row, step=step)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--mlflow-steps", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10x fewer steps")
    args = parser.parse_args()
    steps = args.steps // 10 if args.quick else args.steps
    mlflow_steps = min(args.mlflow_steps, steps)
    rows = workload(steps)
    warnings.simplefilter("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    cases: list[tuple[str, Callable[[list[dict[str, float]], Path], float], int]] = [
        ("runcast (`run.log`)", bench_runcast, steps),
        ("TensorBoard (`SummaryWriter.add_scalar`)", bench_tensorboard, steps),
        ("MLflow (`log_metrics`, SQLite store)", bench_mlflow, mlflow_steps),
    ]
    results: list[tuple[str, int, float]] = []
    for name, fn, n in cases:
        with tempfile.TemporaryDirectory() as tmp:
            seconds = fn(rows[:n], Path(tmp))
        results.append((name, n * N_METRICS, seconds))
        print(f"  {name}: {n * N_METRICS:,} points in {seconds:.2f} s", flush=True)

    rc_rate = results[0][1] / results[0][2]
    print(
        f"\n### Logging throughput ({steps:,} steps x {N_METRICS} metrics; "
        f"MLflow on {mlflow_steps:,} steps)\n"
    )
    print("| tracker | points | seconds (incl. flush) | points/s | runcast speed-up |")
    print("|---|---:|---:|---:|---:|")
    for name, points, seconds in results:
        rate = points / seconds
        print(f"| {name} | {points:,} | {seconds:.2f} | {rate:,.0f} | {rc_rate / rate:.1f}x |")
    tb_ratio = rc_rate / (results[1][1] / results[1][2])
    mlf_ratio = rc_rate / (results[2][1] / results[2][2])
    print(
        f"\nGoal runcast >= 5x TensorBoard: {tb_ratio:.1f}x "
        f"({'met' if tb_ratio >= 5 else 'NOT met'}); >= 20x MLflow: {mlf_ratio:.0f}x "
        f"({'met' if mlf_ratio >= 20 else 'NOT met'})."
    )


if __name__ == "__main__":
    main()
