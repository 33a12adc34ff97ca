"""The PostgreSQL store at team scale, side by side with SQLite where both apply.

Starts its own PostgreSQL server (Debian's binaries, a Unix socket in a temporary folder, the
server's default durable settings: fsync on) and measures:

1. 32 writer processes logging at once into one PostgreSQL store: points lost, errors.
2. kill -9 of writers at random moments, 20 times: the store opens and reads after every round,
   each killed run holds every step up to its last confirmed flush, with no gap.
3. Logging overhead on a 1.5 ms training step (torch matmuls, one thread), PostgreSQL and SQLite
   in one run with both writer threads live: 5-step blocks randomised in groups of four (plain,
   control = the plain loop again, SQLite, PostgreSQL), each timed on the training thread's own
   CPU clock and the wall clock; the training thread's overhead is the mean of (logged - plain)
   over groups with a bootstrap interval; each writer thread's CPU is read on its own clock and
   added per logged step. Then two cross-checks: the earlier paired design (one-second blocks
   in random order, end to end on the process's CPU and wall time) and one log() call's cost.
4. The dashboard's run list (``/api/runs``'s ``DashboardData.runs``) at 10,000 runs, on SQLite
   and PostgreSQL, pages of 200 and 50: the first load, then 100 polls after it (median and
   slowest); the old full listing as the anchor.
5. ``runcast sync`` of 1,000,000 points from an SQLite file into PostgreSQL, then again.

    python bench/store_postgres.py            # everything (~5-10 minutes on 2 cores)
    python bench/store_postgres.py --quick    # smaller sizes, to try it
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import runcast
from runcast.store import Series, SQLStore, open_store, sync
from runcast.store._pg_server import TempPostgres
from runcast.store._writer import CHUNK_POINTS, _blobs

WRITER = textwrap.dedent(
    """
    import sys, time, runcast
    db, name, steps, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    run = runcast.init(project="bench", name=name, db=db, flush_every=0.05)
    print(f"id {run.id}", flush=True)
    for step in range(steps):
        run.log({"a": float(step), "b": 2.0 * step, "c": -1.0 * step}, step=step)
        if mode == "kill" and step % 7 == 6:
            run.flush()
            print(f"flushed {step}", flush=True)
        elif step % 10 == 0:
            time.sleep(0.002)  # a training step's worth of pause
    run.finish()
    print("done", flush=True)
    """
)


def _start(db: str, name: str, steps: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, db, name, str(steps), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def bench_writers(url: str, n_procs: int, steps: int) -> dict[str, Any]:
    start = time.perf_counter()
    procs = [_start(url, f"w{i}", steps, "finish") for i in range(n_procs)]
    errors = 0
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        errors += proc.returncode != 0 or "Error" in err or not out.strip().endswith("done")
    took = time.perf_counter() - start
    with open_store(url) as store:
        runs = [r for r in store.runs("bench") if r.name.startswith("w")]
        stored = sum(r.n_points for r in runs)
        exact = all(
            np.array_equal(store.curve(r.id, "b").value, 2.0 * np.arange(steps)) for r in runs
        )
        finished = sum(r.status == "finished" for r in runs)
    expected = n_procs * steps * 3
    return {"procs": n_procs, "expected": expected, "lost": expected - stored, "errors": errors,
            "exact": exact, "finished": finished, "seconds": took}  # fmt: skip


def bench_kills(url: str, n_kills: int, seed: int = 20261206) -> dict[str, Any]:
    rng = random.Random(seed)
    confirmed: dict[str, int] = {}
    consistent, per_round = True, 4
    for round_ in range(n_kills // per_round):
        procs = {f"k{round_}-{i}": _start(url, f"k{round_}-{i}", 10**9, "kill")
                 for i in range(per_round)}  # fmt: skip
        head: dict[str, str] = {}
        for name, proc in procs.items():
            if rng.random() < 0.2:  # during start-up: import, store open, run creation
                time.sleep(rng.uniform(0.0, 0.3))
                head[name] = ""
            else:  # mid-logging: after its first confirmed flush, at a random moment
                assert proc.stdout is not None
                head[name] = proc.stdout.readline() + proc.stdout.readline()
                time.sleep(rng.uniform(0.0, 0.5))
            proc.send_signal(signal.SIGKILL)
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=60)
            lines = (head[name] + out).splitlines()
            flushed = [int(x.split()[1]) for x in lines if x.startswith("flushed")]
            confirmed[name] = flushed[-1] if flushed else -1
        with open_store(url) as store:  # opens and reads after every round
            for info in store.runs("bench"):
                if info.name.startswith("k"):
                    consistent &= info.status == "killed"
                    for key in store.keys(info.id):
                        store.curve(info.id, key)
    kept_beyond, checked = [], 0
    with open_store(url) as store:
        by_name = {r.name: r for r in store.runs("bench")}
        for name, last in confirmed.items():
            if last < 0:
                continue
            checked += 1
            for key, scale in (("a", 1.0), ("b", 2.0), ("c", -1.0)):
                c = store.curve(by_name[name].id, key)
                whole = np.array_equal(c.step, np.arange(len(c))) and c.step[-1] >= last
                consistent &= whole and np.array_equal(c.value, scale * c.step)
            kept_beyond.append(int(c.step[-1]) - last)
    return {"kills": n_kills, "checked": checked, "consistent": consistent,
            "max_kept_beyond_flush": max(kept_beyond or [0])}  # fmt: skip


def paired_overhead(
    logged: list[float], plain: list[float], seed: int = 0, n_boot: int = 4000
) -> tuple[float, float, float]:
    """Overhead in % of the plain blocks, sum(logged - plain) / sum(plain), with its 95%
    bootstrap interval: rounds are resampled whole, so each logged block stays paired with the
    plain block that ran beside it (same moment, same machine load)."""
    a, b = np.asarray(logged), np.asarray(plain)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boot = 100.0 * ((a[idx] - b[idx]).sum(axis=1) / b[idx].sum(axis=1))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return 100.0 * float((a - b).sum() / b.sum()), float(lo), float(hi)


def _training_step() -> tuple[Callable[[], float], float]:
    """A training step of ~1.5 ms of this thread's CPU time (torch matmuls, one thread); the
    step function and its calibrated CPU seconds."""
    import torch

    torch.set_num_threads(1)
    x, w = torch.randn(64, 256), torch.randn(256, 256)
    reps = 1
    while True:  # calibrate: the smallest repeat count whose step takes >= 1.5 ms of CPU
        t = time.thread_time()
        for _ in range(50):
            for _ in range(reps):
                x = torch.tanh(x @ w) * 0.5
        per = (time.thread_time() - t) / 50
        if per >= 1.5e-3 or reps > 10_000:
            break
        reps = max(reps + 1, int(reps * 1.5e-3 / per))

    def step() -> float:
        nonlocal x
        for _ in range(reps):
            x = torch.tanh(x @ w) * 0.5
        return 0.1

    return step, per


def _backend_cpu(pg: TempPostgres, database: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to ``database`` (the run's
    writer and store connections: the server's work for this run, not its idle background)."""
    import psutil
    import psycopg

    with psycopg.connect(pg.url(), autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]  # fmt: skip
    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system
    return total


def paired_diff(d: np.ndarray, seed: int = 0, n_boot: int = 4000) -> tuple[float, float, float]:
    """The mean of per-group differences (logged block - plain block of the same group) with its
    95% bootstrap interval, groups resampled whole (a difference of means: every group holds
    one block of each arm)."""
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


def bench_overhead_random(
    pg: TempPostgres,
    sqlite: Path,
    groups: int,
    per_block: int = 5,
    seed: int = 20261206,
    raw: Path | None = None,
) -> dict[str, Any]:
    """Logging overhead of 3 metrics per step on a ~1.5 ms training step, in one run with both
    stores' writer threads live, randomised per block of ``per_block`` steps.

    Each group of four consecutive blocks runs the four arms (plain; control, the plain loop
    again; SQLite; PostgreSQL) in a fresh random order. A store's overhead is read against the
    mean of its group's two unlogged blocks; control - plain checks that the design reads 0
    when nothing differs. Every block is timed on the training thread's own CPU clock
    (``thread_time_ns``: what the thread computed, whatever else runs on the machine) and on
    the wall clock. The training thread's overhead per step is the mean over groups of
    (logged block - plain block) / ``per_block``, with a bootstrap interval over groups; short
    blocks, paired inside a group ~30 ms long, cancel the machine's slow drift.

    Each writer is woken once per 667 steps it was given (``flush_every`` is an hour, so its
    timer never fires): one commit per second of 1.5 ms steps, what it does in training on a
    free core. Its work lands in whatever block is running, so it is read on the writer
    thread's own CPU clock (``pthread_getcpuclockid``) over the run and divided by the steps
    that store logged. The CPU of the PostgreSQL backends serving the run (psutil) is beside it:
    on a team's server it is not the training machine's. ``raw``: an .npz of every block's
    times (ns), per arm and clock."""
    step, _ = _training_step()
    url = pg.new_database("overhead_random")
    runs = {"sqlite": runcast.init(project="overhead", db=sqlite, flush_every=3600.0),
            "postgresql": runcast.init(project="overhead", db=url, flush_every=3600.0)}  # fmt: skip
    writers = {k: r._writer for k, r in runs.items()}
    assert all(w is not None for w in writers.values())
    clock = {k: time.pthread_getcpuclockid(w._thread.ident or 0)  # type: ignore[union-attr]
             for k, w in writers.items()}  # fmt: skip
    per_commit = round(1.0 / 1.5e-3)  # the steps a 1.5 ms step logs in the writer's second
    arms = ("plain", "control", "sqlite", "postgresql")
    cpu: dict[str, list[int]] = {a: [] for a in arms}
    wall: dict[str, list[int]] = {a: [] for a in arms}
    given = dict.fromkeys(runs, 0)

    def block_of(arm: str) -> None:
        run = runs.get(arm)
        t0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        if run is None:
            for _ in range(per_block):
                step()
        else:
            n = given[arm]
            for i in range(n, n + per_block):
                loss = step()
                run.log({"loss": loss, "lr": 1e-3, "grad_norm": 0.5}, step=i)
                if i % per_commit == per_commit - 1:
                    writers[arm]._wake.set()  # type: ignore[union-attr]  # its once-a-second commit
            given[arm] = n + per_block
        t1, w1 = time.thread_time_ns(), time.perf_counter_ns()
        cpu[arm].append(t1 - t0)
        wall[arm].append(w1 - w0)

    rng = random.Random(seed)
    for _ in range(200):  # warm-up, not counted: first commits, caches
        for arm in arms:
            block_of(arm)
    for run in runs.values():
        run.flush()
    for arm in arms:
        cpu[arm].clear()
        wall[arm].clear()
    start = dict(given)
    w_start = {k: time.clock_gettime_ns(c) for k, c in clock.items()}
    s_start, t_start = _backend_cpu(pg, "overhead_random"), time.perf_counter()
    for _ in range(groups):
        for arm in rng.sample(arms, len(arms)):
            block_of(arm)
    for run in runs.values():
        run.flush()  # the points given since the last commit: one more (partial) commit
    w_end = {k: time.clock_gettime_ns(c) for k, c in clock.items()}
    s_end, seconds = _backend_cpu(pg, "overhead_random"), time.perf_counter() - t_start
    for run in runs.values():
        run.finish()
    logged = {k: given[k] - start[k] for k in runs}

    def per_step(values: list[int]) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) / per_block / 1e3  # us per step

    if raw is not None:
        np.savez(raw, **{f"{a}_{c}": np.asarray(v[a]) for a in arms
                         for c, v in (("cpu", cpu), ("wall", wall))})  # fmt: skip
    plain_cpu, plain_wall = per_step(cpu["plain"]), per_step(wall["plain"])
    # the stores are compared with the mean of the two unlogged blocks of their group (plain and
    # control); control - plain is the check that the design reads 0 when nothing differs
    ref_cpu = (plain_cpu + per_step(cpu["control"])) / 2
    ref_wall = (plain_wall + per_step(wall["control"])) / 2
    out: dict[str, Any] = {
        "groups": groups, "per_block": per_block, "seconds": seconds,
        "step_us": float(ref_cpu.mean()), "wall_step_us": float(ref_wall.mean()),
        "steps_per_arm": groups * per_block, "per_commit": per_commit,
    }  # fmt: skip
    for arm in arms[1:]:
        base_cpu, base_wall = (plain_cpu, plain_wall) if arm == "control" else (ref_cpu, ref_wall)
        out[f"{arm}_cpu"] = paired_diff(per_step(cpu[arm]) - base_cpu)
        out[f"{arm}_wall"] = paired_diff(per_step(wall[arm]) - base_wall)
        if arm in runs:
            out[f"{arm}_writer_us"] = (w_end[arm] - w_start[arm]) / 1e3 / logged[arm]
    out["server_us"] = 1e6 * (s_end - s_start) / logged["postgresql"]
    return out


def bench_overhead(url: str, sqlite: Path, rounds: int, seed: int = 20261206) -> dict[str, Any]:
    """Logging overhead of 3 metrics per step on a ~1.5 ms training step, paired and
    interleaved: each round runs one block of steps of every variant (plain; control, the
    plain loop again, i.e. the noise floor; SQLite; PostgreSQL) in a fresh random order.

    A block is one second of the step's CPU time (~670 steps) and every logged block ends
    with a flush: exactly the one commit a second the writer makes in training on a free core,
    charged to the block that caused it. (Left to its timer, the writer commits once a second
    of *wall* time; on a loaded machine whose steps take 10x longer it would commit 10x as
    often per step as in real training, and each commit costs the same whatever its size.)
    Clocks: the process's CPU time (the training thread and the writer thread together: what
    logging costs, as if both shared one core; machine load barely moves it) and wall time
    (what a user waits, here on a shared, loaded machine)."""
    step, per = _training_step()
    block = round(1.0 / per)  # one second of steps: one commit a second, as in training
    # the writer's own timer never fires inside a block: the flush that ends it commits
    runs = {"sqlite": runcast.init(project="overhead", db=sqlite, flush_every=3600.0),
            "postgresql": runcast.init(project="overhead", db=url, flush_every=3600.0)}  # fmt: skip
    variants = ("plain", "control", "sqlite", "postgresql")
    clocks = {"process": time.process_time, "wall": time.perf_counter}
    took: dict[tuple[str, str], list[float]] = {(v, c): [] for v in variants for c in clocks}
    counter = 0

    def block_of(variant: str) -> None:
        nonlocal counter
        run = runs.get(variant)
        start = {c: f() for c, f in clocks.items()}
        for _ in range(block):
            loss = step()
            if run is not None:
                counter += 1
                run.log({"loss": loss, "lr": 1e-3, "grad_norm": 0.5}, step=counter)
        if run is not None:
            run.flush()
        for c, f in clocks.items():
            took[(variant, c)].append(f() - start[c])

    rng = random.Random(seed)
    for _ in range(2):  # warm-up rounds, not counted: first commits, caches, the calibration
        for v in variants:
            block_of(v)
    for v, c in took:
        took[(v, c)].clear()
    for _ in range(rounds):
        for v in rng.sample(variants, len(variants)):
            block_of(v)
    for run in runs.values():
        run.finish()
    out: dict[str, Any] = {
        "rounds": rounds, "block": block,
        "step_ms": 1e3 * sum(took[("plain", "process")]) / (rounds * block),
        "wall_step_ms": 1e3 * sum(took[("plain", "wall")]) / (rounds * block),
    }  # fmt: skip
    for v in variants[1:]:
        for c in clocks:
            out[f"{v}_{c}"] = paired_overhead(took[(v, c)], took[("plain", c)])
    return out


def bench_log_cost(url: str, sqlite: Path, n: int) -> dict[str, float]:
    """CPU cost per logged step (3 metrics), in microseconds: the training thread's (inside
    ``run.log``) and the writer thread's (batching and committing, measured as the process's
    CPU time beyond the training thread's). CPU clocks, so a busy machine barely moves them."""
    out: dict[str, float] = {}
    for label, db in (("sqlite", sqlite), ("postgresql", url)):
        run = runcast.init(project="cost", db=db)  # commits once a second, as in training
        run.log({"loss": 0.0, "lr": 1e-3, "grad_norm": 0.5}, step=0)
        run.flush()
        p0, t0 = time.process_time(), time.thread_time()
        for i in range(1, n + 1):
            run.log({"loss": 0.1, "lr": 1e-3, "grad_norm": 0.5}, step=i)
            if i % 1000 == 0:
                time.sleep(0.0015 * 1000 / 4)  # let a second or so pass, unhurried
        t1 = time.thread_time()
        run.flush()
        p1, t2 = time.process_time(), time.thread_time()
        run.finish()
        out[f"{label}_log_us"] = 1e6 * (t1 - t0) / n
        out[f"{label}_writer_us"] = 1e6 * ((p1 - p0) - (t2 - t0)) / n
    return out


def bench_log_cold(url: str, sqlite: Path, n: int) -> dict[str, float]:
    """CPU cost of one ``run.log`` call (3 metrics) right after a training step, in
    microseconds on the training thread's clock: the step leaves the caches and branch
    predictors full of torch's work, so the call runs cold, as it does in training. After each
    of ``n`` steps either the call or nothing is timed, alternately; the cost is the mean
    difference (the clock's own cold cost cancels)."""
    step, _ = _training_step()
    out: dict[str, float] = {}
    for label, db in (("sqlite", sqlite), ("postgresql", url)):
        run = runcast.init(project="cold", db=db)
        took: dict[bool, list[int]] = {True: [], False: []}
        for i in range(2 * n + 100):
            loss = step()
            t0 = time.thread_time_ns()
            if i % 2:
                run.log({"loss": loss, "lr": 1e-3, "grad_norm": 0.5}, step=i)
            t1 = time.thread_time_ns()
            if i >= 100:
                took[bool(i % 2)].append(t1 - t0)
        run.finish()
        logged, empty = np.asarray(took[True]) / 1e3, np.asarray(took[False]) / 1e3
        out[f"{label}_cold_us"] = float(logged.mean() - empty.mean())
        out[f"{label}_cold_median_us"] = float(np.median(logged) - np.median(empty))
    return out


def fill_runs(store: SQLStore, n_runs: int, points: int = 50) -> None:
    """``n_runs`` finished runs of 2 metrics, written as SQL rows in batches (fast set-up)."""
    steps = np.arange(points)
    loss = Series.of(steps, 3.0 * (steps + 1.0) ** -0.3, wall=1.7e9)
    acc = Series.of(steps, 1 - (steps + 1.0) ** -0.5, wall=1.7e9)
    run_sql = ("INSERT INTO runs(id, project, name, status, config, start_time, end_time, "
               "host, pid, heartbeat) VALUES (?, ?, ?, 'finished', '{}', ?, ?, 'x', 1, ?)")  # fmt: skip
    for lo in range(0, n_runs, 500):
        statements: list[tuple[str, tuple[Any, ...]]] = []
        for i in range(lo, min(lo + 500, n_runs)):
            rid = f"{i:08x}"
            statements.append((run_sql, (rid, f"p{i % 10}", f"run-{i}", 1.7e9 + i, 1.7e9 + i, 1.7e9 + i)))  # fmt: skip
            for j, (key, s) in enumerate((("loss", loss), ("acc", acc))):
                mid = 2 * i + j + 1
                statements.append((
                    "INSERT INTO metrics(id, run_id, key, n_points, n_missing, first_step, "
                    "last_step, last_value) VALUES (?, ?, ?, ?, 0, 0, ?, ?)",
                    (mid, rid, key, points, points - 1, float(s.value[-1])),
                ))  # fmt: skip
                statements.append((
                    "INSERT INTO chunks(metric_id, min_step, max_step, n, steps, vals, walls) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", (mid, *_blobs(s)),
                ))  # fmt: skip
        store._execute(statements, "fill the bench store")


def bench_api(db: Path | str, n_runs: int, polls: int) -> list[dict[str, float]]:
    """The run list at ``n_runs`` runs: a page of 200 (the API's default) and of 50 (what the
    dashboard's page asks for), each on a fresh ``DashboardData``: its first load, the page's
    forecasts made in the background, then ``polls`` polls (the goal's figure), then filtered
    polls (project and name text, an offset)."""
    from runcast.ui._api import DashboardData

    with open_store(db) as store:
        fill_runs(store, n_runs)
        t = time.perf_counter()  # the anchor: every run listed, then each one's summary
        for info in store.runs():
            store.summary(info.id)
        full_listing = time.perf_counter() - t
    out = []
    for limit in (200, 50):
        api = DashboardData(db)
        try:
            t = time.perf_counter()
            first = api.runs(limit=limit)
            first_s = time.perf_counter() - t
            t = time.perf_counter()
            api._pool.submit(lambda: None).result()  # the page's forecasts, in the background
            forecasts_s = time.perf_counter() - t
            times = []
            for _ in range(polls):
                t = time.perf_counter()
                body = api.runs(limit=limit)
                times.append(time.perf_counter() - t)
            assert body["total"] == n_runs and all(r["forecast"] for r in body["runs"])
            filt = []
            for i in range(polls):
                t = time.perf_counter()
                api.runs(project=f"p{i % 10}", name="run-1", offset=20, limit=limit)
                filt.append(time.perf_counter() - t)
        finally:
            api.close()
        out.append({"runs": n_runs, "page": len(first["runs"]), "first_ms": 1e3 * first_s,
                    "forecasts_s": forecasts_s,
                    "poll_median_ms": 1e3 * statistics.median(times),
                    "poll_max_ms": 1e3 * max(times),
                    "filtered_median_ms": 1e3 * statistics.median(filt),
                    "filtered_max_ms": 1e3 * max(filt),
                    "full_listing_ms": 1e3 * full_listing})  # fmt: skip
    return out


def bench_sync(local: Path, url: str, n_points: int) -> dict[str, float]:
    per_metric = 10_000
    n_runs = n_points // (2 * per_metric)
    with open_store(local) as store:
        for i in range(n_runs):
            info = store.create_run("laptop", f"r{i}", status="finished", end_time=2e9)
            steps = np.arange(per_metric)
            with store.writer(info.id) as w:
                w.write({"loss": Series.of(steps, np.linspace(3, 1, per_metric), wall=1.7e9),
                         "lr": Series.of(steps, np.full(per_metric, 1e-3), wall=1.7e9)},
                        heartbeat=False)  # fmt: skip
    with open_store(local) as src, open_store(url) as dst:
        t = time.perf_counter()
        first = sync(src, dst)
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        again = sync(src, dst)
        again_s = time.perf_counter() - t
        exact = all(
            np.array_equal(src.points(r.id, "loss").value, dst.points(r.id, "loss").value)
            for r in src.runs()
        )
    assert CHUNK_POINTS > 0
    return {"points": first.points, "runs": n_runs, "first_s": first_s,
            "second_points": again.points, "second_s": again_s, "exact": exact}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="writers,kills,overhead,api,sync",
                        help="which parts to run, comma-separated")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=30,
                        help="rounds of the paired logging-overhead measurement")  # fmt: skip
    parser.add_argument("--groups", type=int, default=3000,
                        help="groups of four 5-step blocks in the randomised overhead measurement")  # fmt: skip
    parser.add_argument("--raw", default=None, help="write the randomised blocks' times here (.npz)")
    parser.add_argument("--no-paired", action="store_true",
                        help="skip the paired one-second-block cross-check (minutes)")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    q, only = args.quick, set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="runcast-bench-"))
    with TempPostgres(settings={}) as pg:  # the server's defaults: fsync on, durable commits
        print(f"PostgreSQL server: {pg.bin}; machine: {os.cpu_count()} cores\n")
        if "writers" in only:
            w = bench_writers(pg.new_database("writers"), 8 if q else 32, 500 if q else 2000)
            print("### 32 writer processes on one PostgreSQL store\n")
            print("| writers | points expected | lost | errors | curves exact | finished | seconds |")
            print("|---|---|---|---|---|---|---|")
            print(f"| {w['procs']} | {w['expected']:,} | {w['lost']} | {w['errors']} | {w['exact']} "
                  f"| {w['finished']}/{w['procs']} | {w['seconds']:.1f} |\n")  # fmt: skip
        if "kills" in only:
            k = bench_kills(pg.new_database("kills"), 8 if q else 20)
            print("### kill -9 at random moments\n")
            print("| kills | runs with a confirmed flush | store consistent | max steps kept past the last confirmed flush |")
            print("|---|---|---|---|")
            print(f"| {k['kills']} | {k['checked']} | {k['consistent']} | {k['max_kept_beyond_flush']} |\n")
        if "overhead" in only:
            print("### Logging overhead on a training step (3 metrics per step)\n")
            r = bench_overhead_random(pg, tmp / "random.db", 300 if q else args.groups,
                                      raw=Path(args.raw) if args.raw else None)
            print(f"{r['groups']:,} groups of four {r['per_block']}-step blocks (plain, control, "
                  f"SQLite, PostgreSQL) in random orders, both writers live, each committing once "
                  f"per {r['per_commit']} steps it logged; {r['seconds']:.0f} s. "
                  f"A step: {r['step_us']:.0f} us of the training thread's CPU "
                  f"({r['wall_step_us']:.0f} us of wall time); {r['steps_per_arm']:,} steps an "
                  "arm. Per step, the mean over groups of (a store's block - the mean of the "
                  "group's two unlogged blocks; control: control - plain) [95% bootstrap "
                  "interval, groups resampled], and as % of a 1.5 ms step:\n")  # fmt: skip
            print("| arm | training thread CPU (us) | % of 1.5 ms | training thread wall (us) "
                  "| writer thread CPU per logged step (us) | training + writer CPU, % of 1.5 ms "
                  "| PostgreSQL backend CPU per logged step (us) |")  # fmt: skip
            print("|---|---|---|---|---|---|---|")
            for arm, label in (("control", "control"), ("sqlite", "SQLite"),
                               ("postgresql", "PostgreSQL")):  # fmt: skip
                m, lo, hi = r[f"{arm}_cpu"]
                wm, wlo, whi = r[f"{arm}_wall"]
                wr = r.get(f"{arm}_writer_us", 0.0)
                server = f"{r['server_us']:.1f}" if arm == "postgresql" else "-"
                print(f"| {label} | {m:+.2f} [{lo:+.2f}, {hi:+.2f}] "
                      f"| {m / 15:+.3f}% [{lo / 15:+.3f}, {hi / 15:+.3f}] "
                      f"| {wm:+.1f} [{wlo:+.1f}, {whi:+.1f}] "
                      f"| {wr:.2f} | {(m + wr) / 15:+.3f}% [{(lo + wr) / 15:+.3f}, "
                      f"{(hi + wr) / 15:+.3f}] | {server} |")  # fmt: skip
            print()
            if not args.no_paired:
                print("Cross-check, end to end: paired one-second blocks (the earlier design).\n")
                o = bench_overhead(pg.new_database("overhead"), tmp / "overhead.db",
                                   6 if q else args.rounds)  # fmt: skip
                print(f"{o['rounds']} rounds of one {o['block']}-step block per variant in a random "
                      f"order; a step: {o['step_ms']:.2f} ms of CPU ({o['wall_step_ms']:.2f} ms of "
                      "wall time on this machine). Overhead: sum(logged - plain) / sum(plain) over "
                      "the rounds, [95% bootstrap interval, rounds resampled whole]:\n")  # fmt: skip
                print("| clock | control (noise floor) | SQLite | PostgreSQL |")
                print("|---|---|---|---|")
                for c in ("process", "wall"):
                    cells = [o[f"{v}_{c}"] for v in ("control", "sqlite", "postgresql")]
                    print(f"| {c} | " + " | ".join(
                        f"{m:+.2f}% [{lo:+.2f}, {hi:+.2f}]" for m, lo, hi in cells) + " |")  # fmt: skip
                print()
            c = bench_log_cost(pg.new_database("cost"), tmp / "cost.db", 5_000 if q else 20_000)
            print("CPU per logged step (3 metrics), against a 1.5 ms step:\n")
            print("| store | training thread: run.log (us) | writer thread (us) | run.log / 1.5 ms | both / 1.5 ms |")
            print("|---|---|---|---|---|")
            for label in ("sqlite", "postgresql"):
                log_us, writer_us = c[f"{label}_log_us"], c[f"{label}_writer_us"]
                print(f"| {label} | {log_us:.1f} | {writer_us:.1f} | {log_us / 15:.2f}% "
                      f"| {(log_us + writer_us) / 15:.2f}% |")  # fmt: skip
            print()
            k = bench_log_cold(pg.new_database("cold"), tmp / "cold.db", 500 if q else 2000)
            print("One run.log call right after a training step (cold caches), on the training "
                  "thread's CPU clock, minus the same clock pair with nothing between:\n")
            print("| store | mean (us) | median (us) | mean / 1.5 ms |")
            print("|---|---|---|---|")
            for label in ("sqlite", "postgresql"):
                m, med = k[f"{label}_cold_us"], k[f"{label}_cold_median_us"]
                print(f"| {label} | {m:.1f} | {med:.1f} | {m / 15:.2f}% |")
            print()
        if "api" in only:
            print("### The dashboard's run list (`/api/runs`)\n")
            print("| store | runs | page | first load (ms) | its page's forecasts (s) | poll median (ms) | poll max (ms) | filtered poll median / max (ms) | anchor: list + summary of every run (ms) |")
            print("|---|---|---|---|---|---|---|---|---|")
            n = 1000 if q else 10_000
            for label, db in (("SQLite", tmp / "api.db"), ("PostgreSQL", pg.new_database("api"))):
                for a in bench_api(db, n, 10 if q else 100):
                    print(f"| {label} | {a['runs']:,} | {a['page']} | {a['first_ms']:.0f} "
                          f"| {a['forecasts_s']:.1f} | {a['poll_median_ms']:.1f} "
                          f"| {a['poll_max_ms']:.1f} | {a['filtered_median_ms']:.1f} / "
                          f"{a['filtered_max_ms']:.1f} | {a['full_listing_ms']:.0f} |")  # fmt: skip
            print()
        if "sync" in only:
            s = bench_sync(tmp / "local.db", pg.new_database("team"), 100_000 if q else 1_000_000)
            print("### runcast sync: SQLite file -> PostgreSQL\n")
            print("| points | runs | first sync (s) | exact copy | second sync: points | second sync (s) |")
            print("|---|---|---|---|---|---|")
            print(f"| {s['points']:,} | {s['runs']} | {s['first_s']:.1f} | {s['exact']} "
                  f"| {s['second_points']} | {s['second_s']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
