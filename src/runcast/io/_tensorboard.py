"""Reading scalars from TensorBoard event files with TensorBoard's own loader, unsubsampled.

TensorBoard keeps only 10,000 points per tag by default (reservoir sampling); forecasting needs
every point, so the loader is told to keep all of them (size guidance 0).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from runcast._optional import require
from runcast.curve import Curve
from runcast.errors import ImportFormatError, RuncastWarning
from runcast.io._table import last_of_each_step, to_curves
from runcast.store import Points

_EVENT_GLOB = "*tfevents*"


def _event_dirs(root: Path) -> list[Path]:
    """Folders under ``root`` (itself included) that hold event files, sorted."""
    if root.is_file():
        return [root.parent]
    return sorted({f.parent for f in root.rglob(_EVENT_GLOB) if f.is_file()})


def _tensor_scalar(event: Any, tensor_util: Any) -> float | None:
    array = tensor_util.make_ndarray(event.tensor_proto)
    if array.size != 1 or array.dtype.kind not in "biuf":
        return None
    return float(array.reshape(()))


def damaged_at(event_file: Path) -> int | None:
    """The number of records read before a damaged one, or None if the file reads to its end.

    TensorBoard's loader stops silently at the first record whose checksum fails, so the rest
    of the file is lost without a word; a record cut short at the very end is normal (a run
    still writing, or killed) and is not damage. Reads the file once more (~half the cost of
    loading it).
    """
    from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow

    reader = pywrap_tensorflow.PyRecordReader_New(str(event_file))
    n = 0
    try:
        while True:
            reader.GetNext()
            n += 1
    except errors.OutOfRangeError:
        return None
    except errors.DataLossError as err:
        return None if "truncated record" in str(err) else n
    finally:
        reader.file_handle.close()


def tensorboard_points(path: str | os.PathLike[str]) -> dict[str, Points]:
    """The scalar points of a TensorBoard log folder (see :func:`read_tensorboard`)."""
    require("tensorboard", extra="tensorboard", purpose="to read TensorBoard event files")
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    root = Path(path)
    if not root.exists():
        raise ImportFormatError(f"{root}: no such folder.")
    if root.is_file() and "tfevents" not in root.name:
        raise ImportFormatError(
            f"{root}: not a TensorBoard event file (those are named events.out.tfevents.*). "
            "Pass the log folder, or import a CSV or JSONL log with its own importer."
        )
    dirs = _event_dirs(root)
    if not dirs:
        raise ImportFormatError(
            f"{root}: no TensorBoard event files (events.out.tfevents.*) in it or below it."
        )
    base = root if root.is_dir() else root.parent
    out: dict[str, Points] = {}
    for folder in dirs:
        acc = ea.EventAccumulator(
            str(folder),
            size_guidance={ea.SCALARS: 0, ea.TENSORS: 0},  # 0 = keep every point
        )
        try:
            acc.Reload()
            damage = [(f, damaged_at(f)) for f in sorted(folder.glob(_EVENT_GLOB)) if f.is_file()]
        except Exception as err:  # TensorBoard raises its own (and protobuf) errors
            raise ImportFormatError(f"{folder}: unreadable event file ({err}).") from err
        for file, n_read in damage:
            if n_read is not None:
                warnings.warn(
                    RuncastWarning(
                        f"{file}: the event file is damaged after its first {n_read} records "
                        "(a checksum fails); TensorBoard stops reading there, so later points "
                        "of this file are missing from the import."
                    ),
                    stacklevel=3,
                )
        rel = folder.relative_to(base).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        tags = acc.Tags()
        series: dict[str, list[tuple[int, float, float]]] = {}
        for tag in tags.get(ea.SCALARS, []):
            series[tag] = [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)]
        # tf.summary.scalar in TF2 writes tensors, not simple values
        for tag in tags.get(ea.TENSORS, []):
            rows = []
            for e in acc.Tensors(tag):
                v = _tensor_scalar(e, tensor_util)
                if v is not None:
                    rows.append((e.step, v, e.wall_time))
            if rows and tag not in series:
                series[tag] = rows
        for tag, rows in series.items():
            step = np.array([r[0] for r in rows], dtype=np.int64)
            value = np.array([r[1] for r in rows], dtype=np.float64)
            wall = np.array([r[2] for r in rows], dtype=np.float64)
            value[~np.isfinite(value)] = np.nan
            # a run restarted from a checkpoint repeats steps: keep the last write of each
            keep = last_of_each_step(step)
            if (step[keep] < 0).any():
                raise ImportFormatError(f"{folder}: tag {tag!r} has negative steps.")
            out[prefix + tag] = Points(step[keep], value[keep], wall[keep])
    if not out:
        raise ImportFormatError(
            f"{root}: the event files hold no scalar summaries TensorBoard can read (they may "
            "hold only images or histograms, or be damaged)."
        )
    return out


def read_tensorboard(path: str | os.PathLike[str]) -> dict[str, Curve]:
    """Read every scalar tag of a TensorBoard log folder, keeping every point.

    Event files in sub-folders (``SummaryWriter.add_scalars`` makes one per series) are read
    too, their tags prefixed with the sub-folder (``loss_train/loss``). Needs the
    ``tensorboard`` extra.

    Example:
        >>> import tempfile
        >>> from torch.utils.tensorboard import SummaryWriter
        >>> logdir = tempfile.mkdtemp()
        >>> with SummaryWriter(logdir) as w:
        ...     for s in range(3):
        ...         w.add_scalar("loss", 3.0 - s, global_step=s)
        >>> read_tensorboard(logdir)["loss"].value.tolist()
        [3.0, 2.0, 1.0]
    """
    return to_curves(tensorboard_points(path))
