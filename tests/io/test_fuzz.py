"""Random and malformed log files through the readers, importers and exporters.

Each case writes a CSV, JSONL or W&B history file from random pieces: a header that may be
missing, empty, unnamed or repeated; rows that are ragged; cells that are numbers, huge numbers,
NaN/inf strings, words, quoted or empty; steps that repeat, go back, are fractional or negative;
and the whole may carry a byte-order mark, be UTF-16, gzip-compressed, or named .gz without
being compressed. Reading gives curves or a RuncastError that says why; importing gives a run
that reads back exactly what reading gave, and a refused import leaves the store's earlier runs
as they were; exporting gives a file that reads back the same, or a clear error.
"""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runcast
from runcast import io
from runcast.errors import RuncastError
from runcast.store import open_store

CELLS = ["1", "2.5", "", "nan", "inf", "-inf", "1e400", "-1", " 3 ", '"4"', "1e-400"]
BAD_CELLS = ["abc", "1,5", '"unclosed']
JSON_VALUES = ["1", "2.5", "null", "NaN", "Infinity", "true", '{"a": 1}', "1e999", "-3"]
BAD_JSON = ['"x"', "[1]"]
HEADERS = [["step"]] * 3 + [["_step"]] * 3 + [["Step"], ["iteration"], ["x"], [""], []]
METRICS = ["loss", "acc", "", "loss", "é/λ", "a b", "step"]


def _csv_text(rng: np.random.Generator, wandb: bool) -> str:
    header = list(HEADERS[int(rng.integers(len(HEADERS)))])
    if wandb and rng.random() < 0.8:
        header = ["_step", "_runtime"] if rng.random() < 0.5 else ["Step"]
        header += ["step"] if rng.random() < 0.3 else []  # W&B logs a "step" metric often
    header += [str(rng.choice(METRICS)) for _ in range(int(rng.integers(0, 4)))]
    lines = [",".join(header)] if rng.random() > 0.05 else []
    for i in range(int(rng.integers(0, 12))):
        n = max(len(header) + int(rng.choice([0] * 12 + [-1, 1])), 0)  # some ragged rows
        step = str(int(rng.choice([i, i, i // 2, 0]))) if rng.random() < 0.95 else "-1.5"
        cells = [str(rng.choice(BAD_CELLS if rng.random() < 0.03 else CELLS)) for _ in range(n)]
        lines.append(",".join([step, *cells[1:]]))
    return "\n".join(lines)


def _jsonl_text(rng: np.random.Generator) -> str:
    lines = []
    for i in range(int(rng.integers(0, 10))):
        keys = rng.choice(["loss", "acc", "", "train"], int(rng.integers(0, 3)), False)
        keys = ["step", *keys] if rng.random() < 0.95 else list(keys)
        values = BAD_JSON if rng.random() < 0.03 else JSON_VALUES
        parts = [
            f'"{k}": {i if k == "step" and rng.random() < 0.9 else rng.choice(values)}'
            for k in keys
        ]
        lines.append("{" + ", ".join(parts) + "}" if rng.random() > 0.02 else "not json")
    return "\n".join(lines)


def _file(rng: np.random.Generator, tmp: Path, case: int) -> tuple[Path, str]:
    kind = str(rng.choice(["csv", "jsonl", "wandb"]))
    text = _jsonl_text(rng) if kind == "jsonl" else _csv_text(rng, kind == "wandb")
    data = text.encode()
    roll = rng.random()
    if roll < 0.1:
        data = ("\ufeff" + text).encode()  # a spreadsheet's byte-order mark
    elif roll < 0.2:
        data = text.encode("utf-16")
    elif roll < 0.3:
        data = gzip.compress(data)
    elif roll < 0.33:
        data = data + b"\n\xff\xfe\x00"  # not UTF-8 at the end
    path = tmp / f"f{case}.{'jsonl' if kind == 'jsonl' else 'csv'}{'.gz' if roll < 0.4 else ''}"
    path.write_bytes(data)
    return path, kind


def _same(a: runcast.Curve, b: runcast.Curve) -> bool:
    return a.step.tolist() == b.step.tolist() and np.array_equal(a.value, b.value, equal_nan=True)


READERS: dict[str, Any] = {"csv": io.read_csv, "jsonl": io.read_jsonl, "wandb": io.read_wandb_csv}
IMPORTERS: dict[str, Any] = {
    "csv": io.import_csv,
    "jsonl": io.import_jsonl,
    "wandb": io.import_wandb,
}


@pytest.mark.parametrize("seed", range(3))
def test_random_log_files_import_exactly_or_fail_clearly(
    seed: int, tmp_path: Path, store_db: Path | str
) -> None:
    rng = np.random.default_rng(seed)
    db = store_db
    with runcast.init(name="kept", db=db) as run:  # recorded before: must stay as it is
        for s in range(5):
            run.log({"loss": 1.0 / (s + 1)})
    with open_store(db) as store:
        kept = store.curve(run.id, "loss")
    errors: list[str] = []
    imported = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runcast.RuncastWarning)
        for case in range(40):
            path, kind = _file(rng, tmp_path, case)
            try:
                curves = READERS[kind](path)
            except RuncastError as err:
                errors.append(str(err))
                with pytest.raises(RuncastError):  # the importer refuses it the same way
                    IMPORTERS[kind](path, db=db)
                continue
            info = IMPORTERS[kind](path, db=db)
            imported += 1
            with open_store(db) as store:
                assert sorted(store.keys(info.id)) == sorted(curves)
                for key, curve in curves.items():
                    assert _same(store.curve(info.id, key), curve), (path, key)
            out = tmp_path / f"out{case}.csv"
            if "step" in curves:  # a metric named "step" cannot sit beside the step column
                with pytest.raises(RuncastError, match="layout='long'"):
                    io.export_run(db, info.id, out)
                continue
            back = io.read_csv(io.export_run(db, info.id, out))
            assert all(_same(back[k], c) for k, c in curves.items()), path  # read back the same
    with open_store(db) as store:
        assert len(store.runs()) == 1 + imported  # no refused import left half a run behind
        assert _same(store.curve(run.id, "loss"), kept)  # the earlier run is untouched
    assert imported >= 3 and len(errors) >= 3  # both outcomes were exercised
    assert all(len(e) > 40 for e in errors), errors  # each error says what and where
