"""Reading metrics from CSV, JSONL and W&B history exports, with column mapping."""

from __future__ import annotations

import csv
import gzip
import json
import os
import warnings
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from runcast.curve import Curve
from runcast.errors import ImportFormatError, InvalidInputError, RuncastWarning
from runcast.io._table import (
    Columns,
    TableBuilder,
    choose_step,
    column_map,
    requested_columns,
    to_curves,
    where,
)
from runcast.store import Points

PathLike = str | os.PathLike[str]


#: what reading a gzip file that is cut short or damaged raises, besides UnicodeDecodeError
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def _open(path: Path) -> TextIO:
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file.")
    with path.open("rb") as fh:
        head = fh.read(2)
    if head == b"\x1f\x8b":  # gzip's magic number: logs are often kept compressed
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    if head in (b"\xff\xfe", b"\xfe\xff"):  # a UTF-16 byte-order mark (Excel, PowerShell)
        return path.open("r", encoding="utf-16", newline="")
    # utf-8-sig drops the byte-order mark spreadsheet programs put first
    return path.open("r", encoding="utf-8-sig", newline="")


def _damaged_gzip(path: Path, err: Exception) -> ImportFormatError:
    return ImportFormatError(
        f"{path}: the gzip data is cut short or damaged ({err or type(err).__name__}). "
        "Check the file with `gzip -t`, or import an uncompressed copy."
    )


def _delimiter(path: Path, delimiter: str | None) -> str:
    if delimiter is None:
        return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise InvalidInputError(
            f"delimiter must be one character, like ',' or ';' or '\\t', but got {delimiter!r}."
        )
    return delimiter


def _warn_unnamed(path: Path, where_: str) -> None:
    warnings.warn(
        RuncastWarning(
            f"{path}: {where_} has no name, so it was not imported (a spreadsheet's index, "
            "often). Name it in the file to import it."
        ),
        stacklevel=4,
    )


def _checked_columns(columns: Mapping[str, str] | None, header: list[str], path: Path) -> None:
    if columns is None:
        return
    wanted = list(columns)
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ImportFormatError(
            f"{path}: columns {missing} are not in the file; its columns are "
            f"{', '.join(map(repr, header[:20]))}."
        )


def csv_points(
    path: PathLike,
    step: str | None = None,
    columns: Columns = None,
    wall: str | None = None,
    delimiter: str | None = None,
    exclude: frozenset[str] = frozenset(),
) -> dict[str, Points]:
    """The points of every metric column of a CSV file (see :func:`read_csv`)."""
    p = Path(path)
    sep = _delimiter(p, delimiter)
    asked = requested_columns(columns)
    with _open(p) as fh:
        reader = csv.reader(fh, delimiter=sep, strict=True)
        try:
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise ImportFormatError(f"{where(p, 1)}: the file is empty or has no header row.")
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes:
                raise ImportFormatError(
                    f"{where(p, 1)}: the header repeats the column(s) {dupes}; name each "
                    "column once."
                )
            step_col = choose_step(header, step, p)
            _checked_columns(asked, header, p)
            builder = TableBuilder(p, step_col, wall, requested=asked is not None)
            skip = {step_col, *exclude} | ({wall} if wall else set())
            for column, key in column_map(asked, header, skip).items():
                builder.add_column(column, key)
            unnamed = [i + 1 for i, h in enumerate(header) if not h.strip()]
            if asked is None and unnamed:
                _warn_unnamed(p, f"column {unnamed[0]} of the header")
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                if len(row) > len(header):
                    raise ImportFormatError(
                        f"{where(p, line)}: the row has {len(row)} fields but the header has "
                        f"{len(header)}. Is a value missing its quotes, or the delimiter wrong "
                        f"(pass delimiter=)?"
                    )
                builder.add_row(line, dict(zip(header, row, strict=False)))
        except csv.Error as err:
            raise ImportFormatError(f"{where(p, reader.line_num)}: not valid CSV ({err}).") from err
        except UnicodeDecodeError as err:
            raise ImportFormatError(
                f"{where(p, reader.line_num + 1)}: not UTF-8 text ({err.reason}); save the file "
                "as UTF-8."
            ) from err
        except _GZIP_ERRORS as err:
            raise _damaged_gzip(p, err) from err
    return builder.points()


def read_csv(
    path: PathLike,
    step: str | None = None,
    columns: Columns = None,
    wall: str | None = None,
    delimiter: str | None = None,
) -> dict[str, Curve]:
    """Read the metrics of a CSV (or TSV) log: one ``step`` column, one column per metric.

    Args:
        path: the file. ``.tsv``/``.tab`` files are read tab-separated; a gzip-compressed file
            (``log.csv.gz``) is read as it is, and UTF-16 text (with its byte-order mark) too.
        step: the step column; default the first of step, _step, global_step, Step, iteration.
        columns: the metric columns to read: a name, a list, or a dict ``{column: metric key}``
            to rename them (each to its own key). Default: every named column with numbers
            in it (text columns are skipped).
        wall: an optional column of Unix wall times (kept when imported into a store).
        delimiter: the field separator (default "," or tab for .tsv).

    An empty cell means the metric was not logged at that step; "nan" or "inf" is a logged
    but missing value (NaN). If a step appears twice, the last row wins (with a warning).

    Raises:
        ImportFormatError: the file is malformed; the message names the file and line.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
        >>> _ = f.write_text("step,loss,acc\\n0,2.5,\\n10,2.0,0.4\\n")
        >>> curves = read_csv(f, columns={"loss": "train/loss", "acc": "acc"})
        >>> curves["train/loss"].value.tolist(), curves["acc"].step.tolist()
        ([2.5, 2.0], [10])
    """
    return to_curves(csv_points(path, step, columns, wall, delimiter))


def _flatten(record: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, prefix=f"{name}/")
        else:
            yield name, value


def jsonl_points(
    path: PathLike,
    step: str | None = None,
    columns: Columns = None,
    wall: str | None = None,
) -> dict[str, Points]:
    """The points of every metric of a JSONL file (see :func:`read_jsonl`)."""
    p = Path(path)
    builder: TableBuilder | None = None
    asked = requested_columns(columns)
    requested = asked is not None
    unnamed = False
    line = 0
    with _open(p) as fh:
        try:
            for line, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except (json.JSONDecodeError, RecursionError) as err:
                    raise ImportFormatError(f"{where(p, line)}: not valid JSON ({err}).") from err
                if not isinstance(record, dict):
                    raise ImportFormatError(
                        f"{where(p, line)}: expected one JSON object per line, like "
                        f'{{"step": 1, "loss": 2.3}}, but got {type(record).__name__}.'
                    )
                pairs = list(_flatten(record))
                row = dict(pairs)
                if len(row) < len(pairs):  # {"a/b": 1, "a": {"b": 2}}: one would hide the other
                    names = [k for k, _ in pairs]
                    twice = sorted({k for k in names if names.count(k) > 1})
                    raise ImportFormatError(
                        f"{where(p, line)}: the keys {twice} appear twice once nested objects "
                        'are flattened with "/" (like "a/b" beside {"a": {"b": ...}}). Rename '
                        "one of them in the file."
                    )
                if builder is None:
                    builder = TableBuilder(p, choose_step(row, step, p), wall, requested)
                    if requested:
                        for column, key in column_map(asked, (), set()).items():
                            builder.add_column(column, key)
                if not requested:
                    skip = {builder.step, wall}
                    for column in row:
                        if column not in skip and column not in builder.columns:
                            if not column.strip():
                                unnamed = True
                                continue
                            builder.add_column(column, column)
                builder.add_row(line, row)
        except UnicodeDecodeError as err:
            raise ImportFormatError(
                f"{where(p, line + 1)}: not UTF-8 text ({err.reason}); save the file as UTF-8."
            ) from err
        except _GZIP_ERRORS as err:
            raise _damaged_gzip(p, err) from err
    if unnamed:
        _warn_unnamed(p, 'a key ("")')
    if builder is None:
        raise ImportFormatError(f"{where(p, 1)}: the file has no records.")
    return builder.points()


def read_jsonl(
    path: PathLike,
    step: str | None = None,
    columns: Columns = None,
    wall: str | None = None,
) -> dict[str, Curve]:
    """Read the metrics of a JSON-lines log: one object per line, e.g. ``{"step": 3, "loss": 2}``.

    Nested objects are flattened with "/" (``{"train": {"loss": 1}}`` -> ``train/loss``).
    Arguments and missing values are as in :func:`read_csv`; a key absent from a line, or
    null, means not logged at that step.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
        >>> rows = ['{"step": 0, "train": {"loss": 3.0}}', '{"step": 5, "train": {"loss": 2.0}}']
        >>> _ = f.write_text("\\n".join(rows))
        >>> read_jsonl(f)["train/loss"].step.tolist()
        [0, 5]
    """
    return to_curves(jsonl_points(path, step, columns, wall))


def _wandb_columns(header: list[str]) -> dict[str, str]:
    metrics = [
        h
        for h in header
        if h.strip()
        and not h.startswith("_")
        and h != "Step"
        and not h.endswith(("__MIN", "__MAX"))
    ]
    # a chart export names columns "<run name> - <metric>"; keep the metric part when the
    # file holds one run (every column has the same prefix)
    prefixes = {h.split(" - ", 1)[0] for h in metrics if " - " in h}
    names = [h.split(" - ", 1)[-1] for h in metrics]
    one_run = len(prefixes) == 1 and all(" - " in h for h in metrics)
    if one_run and all(n.strip() for n in names):  # never strip a column down to no name
        return dict(zip(metrics, names, strict=True))
    return {h: h for h in metrics}


def wandb_points(path: PathLike) -> dict[str, Points]:
    """The points of a W&B history export (see :func:`read_wandb_csv`)."""
    p = Path(path)
    with _open(p) as fh:
        try:
            header = next(csv.reader(fh), None)
        except (csv.Error, UnicodeDecodeError, *_GZIP_ERRORS) as err:
            raise ImportFormatError(f"{where(p, 1)}: not a readable CSV header ({err}).") from err
    if not header:
        raise ImportFormatError(f"{where(p, 1)}: the file is empty or has no header row.")
    step = "_step" if "_step" in header else ("Step" if "Step" in header else None)
    if step is None:
        raise ImportFormatError(
            f"{p}: not a W&B history export (no _step or Step column); read it with read_csv "
            "and step='<column>' instead."
        )
    wall = "_timestamp" if "_timestamp" in header else None
    return csv_points(p, step=step, columns=_wandb_columns(header), wall=wall)


def read_wandb_csv(path: PathLike) -> dict[str, Curve]:
    """Read a W&B history export (``run.history().to_csv()``, or a chart's "Export CSV").

    The step is the ``_step`` (or ``Step``) column; W&B's own columns (``_runtime``,
    ``_timestamp``, ...) and a chart's ``__MIN``/``__MAX`` columns are skipped, and the
    ``"<run> - "`` prefix of a single-run chart export is dropped.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
        >>> _ = f.write_text("_step,_runtime,_timestamp,loss\\n0,1,1.7e9,2.0\\n1,2,1.7e9,1.8\\n")
        >>> sorted(read_wandb_csv(f))
        ['loss']
    """
    return to_curves(wandb_points(path))
