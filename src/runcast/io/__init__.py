"""Importers and exporters: CSV, JSONL, TensorBoard, W&B exports in; CSV and Parquet out.

``read_*`` return ``{metric key: Curve}``; ``import_*`` record the same as a finished run in the
store; ``export_run`` writes a run back out. A malformed file raises
:class:`runcast.errors.ImportFormatError` naming the file and line.

Example:
    >>> import tempfile, pathlib
    >>> from runcast import io
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (tmp / "log.csv").write_text("step,loss\\n0,3.0\\n100,2.1\\n")
    >>> io.read_csv(tmp / "log.csv")["loss"].value.tolist()
    [3.0, 2.1]
    >>> info = io.import_csv(tmp / "log.csv", db=tmp / "runcast.db", project="old")
    >>> io.export_run(tmp / "runcast.db", info.id, tmp / "copy.csv").name
    'copy.csv'
"""

from __future__ import annotations

from runcast.io._store_io import (
    export_run,
    import_csv,
    import_jsonl,
    import_tensorboard,
    import_wandb,
    write_run,
)
from runcast.io._table import STEP_CANDIDATES
from runcast.io._tensorboard import read_tensorboard
from runcast.io._text import read_csv, read_jsonl, read_wandb_csv

__all__ = [
    "STEP_CANDIDATES",
    "export_run",
    "import_csv",
    "import_jsonl",
    "import_tensorboard",
    "import_wandb",
    "read_csv",
    "read_jsonl",
    "read_tensorboard",
    "read_wandb_csv",
    "write_run",
]
