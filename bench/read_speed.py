"""Read speed: one 1,000,000-point metric from the store into numpy.

Question: how long does ``store.curve(run, key)`` take for a metric with 1,000,000 points, from
a freshly opened store (what the dashboard, a report or a forecast pays)? Goal: < 0.2 s.

The metric is written by the tracker itself (``run.log`` for 1,000,000 steps, one metric), so
its chunks are the ones real runs get. Anchors read the same points in the same run:
- SQLite with one row per point (``WITHOUT ROWID`` table keyed (key, step): the obvious design)
  read with ``fetchall`` and with ``np.fromiter`` over the cursor;
- a Parquet file of the points (pyarrow), the fastest columnar file format at hand;
- TensorBoard's event loader on the same points, if ``--tensorboard`` (slow: minutes).

    python bench/read_speed.py            # ~30 s
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import runcast

N = 1_000_000


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=N)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--tensorboard", action="store_true")
    args = parser.parse_args()
    n = args.points
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    values = (3.0 / np.sqrt(np.arange(n) + 1.0) + 0.01 * rng.standard_normal(n)).tolist()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "runcast.db"
        start = time.perf_counter()
        with runcast.init(project="read", db=db) as run:
            for step, v in enumerate(values):
                run.log({"loss": v}, step=step)
        write_s = time.perf_counter() - start

        def read_runcast() -> Any:
            with runcast.open_store(db) as store:  # a fresh open each time, as a reader does
                return store.curve(run.id, "loss")

        rows: list[tuple[str, float, str]] = []
        t, curve = timed(read_runcast, args.repeats)
        assert len(curve) == n and np.allclose(curve.value, values)
        rows.append(("runcast `store.curve` (fresh open)", t, "chunked blobs + np.frombuffer"))

        naive = tmp / "naive.db"
        conn = sqlite3.connect(naive)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE points(key INTEGER, step INTEGER, value REAL, "
            "PRIMARY KEY(key, step)) WITHOUT ROWID"
        )
        conn.executemany("INSERT INTO points VALUES (1, ?, ?)", enumerate(values))
        conn.commit()

        def read_fetchall() -> Any:
            rows_ = conn.execute("SELECT step, value FROM points WHERE key = 1 ORDER BY step")
            arr = np.array(rows_.fetchall())
            return arr[:, 0].astype(np.int64), arr[:, 1]

        def read_fromiter() -> Any:
            cur = conn.execute("SELECT step, value FROM points WHERE key = 1 ORDER BY step")
            return np.fromiter(cur, dtype=[("step", "i8"), ("value", "f8")], count=n)

        t, _ = timed(read_fetchall, max(3, args.repeats // 2))
        rows.append(("SQLite row per point, `fetchall`", t, "WITHOUT ROWID (key, step)"))
        t, _ = timed(read_fromiter, max(3, args.repeats // 2))
        rows.append(("SQLite row per point, `np.fromiter`", t, "same table"))
        conn.close()

        try:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(
                pa.table({"step": np.arange(n), "value": np.asarray(values)}), tmp / "p.parquet"
            )

            def read_parquet() -> Any:
                table = pq.read_table(tmp / "p.parquet")
                return table["step"].to_numpy(), table["value"].to_numpy()

            t, _ = timed(read_parquet, args.repeats)
            rows.append(("Parquet file (pyarrow)", t, "columnar file, no store"))
        except ImportError:
            pass

        if args.tensorboard:
            from tensorboard.backend.event_processing import event_accumulator as ea
            from torch.utils.tensorboard import SummaryWriter

            with SummaryWriter(str(tmp / "tb")) as w:
                for step, v in enumerate(values):
                    w.add_scalar("loss", v, global_step=step)

            def read_tb() -> Any:
                acc = ea.EventAccumulator(str(tmp / "tb"), size_guidance={ea.SCALARS: 0})
                acc.Reload()
                return np.array([e.value for e in acc.Scalars("loss")])

            t, _ = timed(read_tb, 1)
            rows.append(("TensorBoard EventAccumulator", t, "event file, every point"))

    ours = rows[0][1]
    print(f"\n### Reading one {n:,}-point metric into numpy (median of {args.repeats})\n")
    print(f"(written by `run.log` in {write_s:.1f} s)\n")
    print("| reader | seconds | vs runcast | layout |")
    print("|---|---:|---:|---|")
    for name, t, layout in rows:
        print(f"| {name} | {t:.4f} | {t / ours:.1f}x | {layout} |")
    print(f"\nGoal < 0.2 s: {ours:.4f} s ({'met' if ours < 0.2 else 'NOT met'}).")


if __name__ == "__main__":
    main()
