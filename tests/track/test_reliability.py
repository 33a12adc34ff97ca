"""Kill -9 at random moments; many processes writing to one store at once (SQLite, PostgreSQL)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from runcast.store import open_store

CHILD = str(Path(__file__).with_name("_child_logger.py"))


def _start(db: Path | str, name: str, steps: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, CHILD, str(db), name, str(steps), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_only_unflushed_points(store_db: Path | str) -> None:
    db = store_db
    rng = random.Random(20261122)
    n_kills, batch = 20, 4
    confirmed: dict[str, int] = {}
    for round_ in range(n_kills // batch):
        procs = {
            f"k{round_}-{i}": _start(db, f"k{round_}-{i}", 10**9, "kill") for i in range(batch)
        }
        # random moments: a few during start-up (import, store creation), most mid-logging
        # (inside a flush, between flushes), after the child said it started
        head: dict[str, str] = {}
        for name, proc in procs.items():
            if rng.random() < 0.2:
                time.sleep(rng.uniform(0.0, 0.3))
                head[name] = ""
            else:
                assert proc.stdout is not None
                head[name] = proc.stdout.readline()  # "id <run id>": logging has begun
                time.sleep(rng.uniform(0.0, 0.25))
            proc.send_signal(signal.SIGKILL)
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGKILL, err
            lines = (head[name] + out).splitlines()
            flushed = [int(line.split()[1]) for line in lines if line.startswith("flushed")]
            confirmed[name] = flushed[-1] if flushed else -1
        # the store opens after every round, and every run in it reads
        with open_store(db) as store:
            for info in store.runs():
                assert info.status == "killed"  # its pid is gone: not left "running"
                for key in store.keys(info.id):
                    store.curve(info.id, key)
    with open_store(db) as store:
        by_name = {r.name: r for r in store.runs()}
        for name, last in confirmed.items():
            if last < 0:
                continue  # killed before its first confirmed flush: nothing promised
            info = by_name[name]
            for key, scale in (("a", 1.0), ("b", 2.0), ("c", -1.0)):
                c = store.curve(info.id, key)
                # every step up to the last confirmed flush is there, with no gap after it
                assert c.step[-1] >= last
                np.testing.assert_array_equal(c.step, np.arange(c.step[-1] + 1))
                np.testing.assert_array_equal(c.value, scale * c.step)
    # at least half the kills landed after some logging, so the check above had teeth
    assert sum(v >= 0 for v in confirmed.values()) >= n_kills // 2


@pytest.mark.slow
def test_eight_processes_writing_at_once_lose_nothing(store_db: Path | str) -> None:
    db = store_db  # fresh: the eight also race to create the schema
    steps = 1500
    procs = [_start(db, f"w{i}", steps, "finish") for i in range(8)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err.lower() and "busy" not in err.lower()
        assert out.strip().endswith("done")
    with open_store(db) as store:
        runs = store.runs("reliability")
        assert sorted(r.name for r in runs) == [f"w{i}" for i in range(8)]
        for info in runs:
            assert info.status == "finished"
            assert info.n_points == 3 * steps
            c = store.curve(info.id, "b")
            np.testing.assert_array_equal(c.step, np.arange(steps))
            np.testing.assert_array_equal(c.value, 2.0 * np.arange(steps))
