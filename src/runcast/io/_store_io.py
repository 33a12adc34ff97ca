"""Importing read metrics into the store as a run, and exporting a run to CSV or Parquet."""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from runcast._optional import require
from runcast.errors import InvalidInputError
from runcast.io._table import Columns, last_of_each_step
from runcast.io._tensorboard import tensorboard_points
from runcast.io._text import csv_points, jsonl_points, wandb_points
from runcast.store import Points, RunInfo, Series, Store, open_store

PathLike = str | os.PathLike[str]
Layout = Literal["wide", "long"]


def write_run(
    points: Mapping[str, Points],
    db: PathLike | Store | None = None,
    project: str = "imported",
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> RunInfo:
    """Record ``points`` (metric key -> points) as a new finished run; returns the run.

    The run's start and end times are the first and last wall times when the points have
    them, else now.

    Example:
        >>> import tempfile, pathlib
        >>> db = pathlib.Path(tempfile.mkdtemp()) / "w.db"
        >>> pts = {"loss": Points(np.array([0, 1]), np.array([2.0, 1.0]), np.array([10.0, 11.0]))}
        >>> info = write_run(pts, db=db, name="copied")
        >>> info.name, info.status, info.n_points
        ('copied', 'finished', 2)
    """
    walls = np.concatenate([p.wall for p in points.values()]) if points else np.array([])
    walls = walls[np.isfinite(walls)]
    now = time.time()
    start = float(walls.min()) if walls.size else now
    end = float(walls.max()) if walls.size else now
    store = db if isinstance(db, Store) else open_store(db)
    try:
        info = store.create_run(
            project, name, config, status="running", start_time=start, owner_pid=os.getpid()
        )
        try:
            with store.writer(info.id) as sink:
                sink.write(
                    {k: Series(p.step, p.value, p.wall) for k, p in points.items()},
                    heartbeat=False,
                )
        except BaseException:
            store.delete(info.id)  # never leave half an import behind
            raise
        store.set_status(info.id, "finished", end_time=end)
        return store.run(info.id)
    finally:
        if not isinstance(db, Store):
            store.close()


def _config(path: PathLike, config: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**(config or {}), "imported_from": str(Path(path).resolve())}


def import_csv(
    path: PathLike,
    db: PathLike | Store | None = None,
    project: str = "imported",
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    step: str | None = None,
    columns: Columns = None,
    wall: str | None = None,
    delimiter: str | None = None,
) -> RunInfo:
    """Import a CSV log as a run (arguments as in :func:`runcast.io.read_csv`).

    Example:
        >>> import tempfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (tmp / "a.csv").write_text("step,loss\\n0,3.0\\n1,2.5\\n")
        >>> import_csv(tmp / "a.csv", db=tmp / "r.db").name
        'a'
    """
    pts = csv_points(path, step, columns, wall, delimiter)
    return write_run(pts, db, project, name or Path(path).stem, _config(path, config))


def import_jsonl(
    path: PathLike,
    db: PathLike | Store | None = None,
    project: str = "imported",
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    step: str | None = None,
    columns: Columns = None,
    wall: str | None = None,
) -> RunInfo:
    """Import a JSONL log as a run (arguments as in :func:`runcast.io.read_jsonl`).

    Example:
        >>> import tempfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (tmp / "m.jsonl").write_text('{"step": 0, "loss": 2}\\n{"step": 1, "loss": 1}\\n')
        >>> import_jsonl(tmp / "m.jsonl", db=tmp / "r.db").n_points
        2
    """
    pts = jsonl_points(path, step, columns, wall)
    return write_run(pts, db, project, name or Path(path).stem, _config(path, config))


def import_wandb(
    path: PathLike,
    db: PathLike | Store | None = None,
    project: str = "imported",
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> RunInfo:
    """Import a W&B history CSV export as a run (wall times from ``_timestamp``).

    Example:
        >>> import tempfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (tmp / "h.csv").write_text("_step,_timestamp,loss\\n0,1.7e9,2.0\\n1,1.7e9,1.5\\n")
        >>> import_wandb(tmp / "h.csv", db=tmp / "r.db").start_time
        1700000000.0
    """
    pts = wandb_points(path)
    return write_run(pts, db, project, name or Path(path).stem, _config(path, config))


def import_tensorboard(
    path: PathLike,
    db: PathLike | Store | None = None,
    project: str = "imported",
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> RunInfo:
    """Import a TensorBoard log folder as a run, every scalar point with its wall time.

    Example:
        >>> import tempfile, pathlib
        >>> from torch.utils.tensorboard import SummaryWriter
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> with SummaryWriter(str(tmp / "exp1")) as w:
        ...     w.add_scalar("loss", 1.0, global_step=0)
        >>> import_tensorboard(tmp / "exp1", db=tmp / "r.db").name
        'exp1'
    """
    pts = tensorboard_points(path)
    folder = Path(path).resolve()
    return write_run(pts, db, project, name or folder.name, _config(path, config))


def _wide(
    points: Mapping[str, Points],
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.float64]], dict[str, Any]]:
    """All steps, and per key its values on them plus a mask of steps it was not logged at."""
    steps = np.unique(np.concatenate([p.step for p in points.values()]))
    values: dict[str, npt.NDArray[np.float64]] = {}
    absent: dict[str, Any] = {}
    for key, p in points.items():
        col = np.full(steps.size, np.nan)
        idx = np.searchsorted(steps, p.step)
        col[idx] = p.value
        mask = np.ones(steps.size, dtype=bool)
        mask[idx] = False
        values[key], absent[key] = col, mask
    return steps, values, absent


def _sorted_points(store: Store, run_id: str, key: str) -> Points:
    p = store.points(run_id, key)
    keep = last_of_each_step(p.step)  # the last write of a step wins, as in Store.curve
    return Points(p.step[keep], p.value[keep], p.wall[keep])


def _fmt(v: float) -> str:
    return "nan" if math.isnan(v) else repr(v)


def export_run(
    store: Store | PathLike | None,
    run: str,
    path: PathLike,
    format: Literal["csv", "parquet"] | None = None,
    layout: Layout = "wide",
    keys: Sequence[str] | None = None,
) -> Path:
    """Write a run's metrics to a CSV or Parquet file; returns the path written.

    Args:
        store: an open store, or the path of one (None: the default store).
        run: the run's id or name.
        path: the file to write; ``format`` defaults to its suffix (.csv or .parquet).
        layout: "wide" (a ``step`` column and one column per metric; an empty cell = not
            logged at that step, ``nan`` = logged but missing) or "long" (``key, step, value,
            wall_time`` rows, which also keeps each point's wall time).
        keys: the metrics to write (default: all).

    Example:
        >>> import tempfile, pathlib, runcast
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> with runcast.init(db=tmp / "e.db") as r:
        ...     r.log({"loss": 2.0, "lr": 0.1})
        >>> out = export_run(tmp / "e.db", r.id, tmp / "run.csv")
        >>> out.read_text().splitlines()
        ['step,loss,lr', '0,2.0,0.1']
    """
    out = Path(path)
    fmt = format or out.suffix.lower().lstrip(".")
    if fmt not in ("csv", "parquet"):
        raise InvalidInputError(
            f"Cannot export to {out.name!r}: format must be 'csv' or 'parquet', but got "
            f"{fmt!r}. Pass format= or use a .csv/.parquet file name."
        )
    if layout not in ("wide", "long"):
        raise InvalidInputError(f"layout must be 'wide' or 'long', but got {layout!r}.")
    opened = not isinstance(store, Store)
    st = open_store(store, create=False) if not isinstance(store, Store) else store
    try:
        info = st.run(run)
        wanted = list(keys) if keys is not None else st.keys(info.id)
        points = {k: _sorted_points(st, info.id, k) for k in wanted}
    finally:
        if opened:
            st.close()
    if not points:
        raise InvalidInputError(f"Run {info.id} has no metrics to export yet.")
    if layout == "wide" and "step" in points:
        # a second "step" column: the file could not be read back (or would be misread)
        raise InvalidInputError(
            f"Run {info.id} has a metric named 'step', which the wide layout's step column "
            "would clash with. Export with layout='long' (--layout long), or leave it out "
            "with keys= (--key)."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        _write_parquet(points, out, layout)
    else:
        _write_csv(points, out, layout)
    return out


def _write_csv(points: Mapping[str, Points], out: Path, layout: Layout) -> None:
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if layout == "long":
            w.writerow(["key", "step", "value", "wall_time"])
            for key, p in points.items():
                w.writerows(
                    (key, s, _fmt(v), "" if math.isnan(t) else repr(t))
                    for s, v, t in zip(
                        p.step.tolist(), p.value.tolist(), p.wall.tolist(), strict=True
                    )
                )
            return
        steps, values, absent = _wide(points)
        w.writerow(["step", *points])
        cols = [
            [
                "" if a else _fmt(v)
                for v, a in zip(values[k].tolist(), absent[k].tolist(), strict=True)
            ]
            for k in points
        ]
        w.writerows(zip(steps.tolist(), *cols, strict=True))


def _write_parquet(points: Mapping[str, Points], out: Path, layout: Layout) -> None:
    pa = require("pyarrow", extra="parquet", purpose="to write Parquet files")
    pq = require("pyarrow.parquet", extra="parquet", purpose="to write Parquet files")
    if layout == "long":
        table = pa.table(
            {
                "key": pa.array(np.repeat(list(points), [p.step.size for p in points.values()])),
                "step": pa.array(np.concatenate([p.step for p in points.values()])),
                "value": pa.array(np.concatenate([p.value for p in points.values()])),
                "wall_time": pa.array(np.concatenate([p.wall for p in points.values()])),
            }
        )
    else:
        steps, values, absent = _wide(points)
        cols = {"step": pa.array(steps)}
        # a null = not logged at that step; NaN = logged but missing, as in the store
        cols.update({k: pa.array(values[k], mask=absent[k]) for k in points})
        table = pa.table(cols)
    pq.write_table(table, str(out))
