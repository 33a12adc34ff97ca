from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runcast.errors import ImportFormatError, InvalidInputError, RuncastWarning
from runcast.io import read_csv, read_jsonl, read_wandb_csv
from runcast.io._text import csv_points


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_csv_reads_every_numeric_column_and_skips_text(tmp_path: Path) -> None:
    f = _write(
        tmp_path, "a.csv", "step,loss,lr,tag\n0,3.0,0.1,warm\n10,2.0,0.05,main\n20,1.5,,main\n"
    )
    curves = read_csv(f)
    assert sorted(curves) == ["loss", "lr"]  # "tag" is text: not a metric
    assert curves["loss"].step.tolist() == [0, 10, 20]
    assert curves["lr"].step.tolist() == [0, 10]  # an empty cell = not logged at step 20
    assert curves["loss"].name == "loss"


def test_csv_column_mapping_renames_and_selects(tmp_path: Path) -> None:
    f = _write(tmp_path, "a.csv", "it,train_loss,val_loss\n1,2.0,2.5\n2,1.8,\n")
    curves = read_csv(f, step="it", columns={"train_loss": "loss/train"})
    assert list(curves) == ["loss/train"]
    assert curves["loss/train"].value.tolist() == [2.0, 1.8]


@pytest.mark.parametrize(
    ("suffix", "text", "kwargs"),
    [
        (".tsv", "step\tloss\n0\t1.0\n1\t0.5\n", {}),
        (".csv", "step;loss\n0;1.0\n1;0.5\n", {"delimiter": ";"}),
        (".csv", "\ufeffstep,loss\n0,1.0\n1,0.5\n", {}),  # a spreadsheet's byte-order mark
        (".csv", "global_step,loss\n0,1.0\n\n1,0.5\n", {}),  # blank line; HF's step name
    ],
)
def test_csv_dialects(tmp_path: Path, suffix: str, text: str, kwargs: dict[str, str]) -> None:
    f = _write(tmp_path, "log" + suffix, text)
    assert read_csv(f, **kwargs)["loss"].value.tolist() == [1.0, 0.5]  # type: ignore[arg-type]


def test_nan_and_inf_cells_are_missing_values(tmp_path: Path) -> None:
    f = _write(tmp_path, "a.csv", "step,loss\n0,nan\n1,inf\n2,1.0\n")
    v = read_csv(f)["loss"].value
    assert np.isnan(v[:2]).all() and v[2] == 1.0


def test_repeated_steps_keep_the_last_row_and_warn(tmp_path: Path) -> None:
    f = _write(tmp_path, "a.csv", "step,loss\n0,3\n1,2\n2,1\n1,2.2\n2,1.1\n3,0.9\n")
    with pytest.warns(RuncastWarning, match="more than once"):
        c = read_csv(f)["loss"]
    assert c.step.tolist() == [0, 1, 2, 3]
    assert c.value.tolist() == [3.0, 2.2, 1.1, 0.9]  # the rows after a restart win


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ("", {}, r"a.csv:1: the file is empty"),
        ("loss,acc\n1,2\n", {}, r"no step column found.*'loss', 'acc'"),
        ("step,loss\n0,1\n", {"step": "it"}, r"no step column 'it'"),
        ("step,loss\n0,1\n1,2,3\n", {}, r"a.csv:3: the row has 3 fields"),
        ("step,loss\n0,1\nx,2\n", {}, r"a.csv:3: the step 'x'"),
        ("step,loss\n0,1\n1,high\n2,0.5\n", {}, r"a.csv:3: column 'loss' holds 'high'"),
        ("step,loss\n0,1\n1,oops\n", {"columns": ["loss"]}, r"a.csv:3: column 'loss'"),
        ("step,loss\n0,1\n", {"columns": ["acc"]}, r"columns \['acc'\] are not in the file"),
        ("step,tag\n0,a\n", {}, r"no metric with numeric values"),
        ("step,loss,loss\n0,1,2\n", {}, r"repeats the column"),
        ('step,loss\n0,"1\n', {}, r"a.csv:\d+"),  # an unclosed quote
    ],
)
def test_malformed_csv_names_file_and_line(
    tmp_path: Path, text: str, kwargs: dict[str, object], match: str
) -> None:
    f = _write(tmp_path, "a.csv", text)
    with pytest.raises(ImportFormatError, match=match):
        read_csv(f, **kwargs)  # type: ignore[arg-type]


def test_non_utf8_csv_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes(b"step,loss\n0,1\n1,\xff\xfe\n")
    with pytest.raises(ImportFormatError, match="not UTF-8"):
        read_csv(f)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="no such file"):
        read_csv(tmp_path / "nope.csv")


def test_wall_column_is_kept_in_points(tmp_path: Path) -> None:
    f = _write(tmp_path, "a.csv", "step,t,loss\n0,100.5,1.0\n1,101.5,0.5\n")
    pts = csv_points(f, wall="t")
    assert list(pts) == ["loss"]  # the wall column is not a metric
    assert pts["loss"].wall.tolist() == [100.5, 101.5]


def test_jsonl_flattens_nested_objects_and_skips_nulls(tmp_path: Path) -> None:
    rows = [
        {"step": 0, "train": {"loss": 3.0}, "lr": 0.1},
        {"step": 1, "train": {"loss": 2.0}, "lr": None},
        {"step": 2, "train": {"loss": 1.0}, "eval": {"acc": 0.5}},
    ]
    f = _write(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    curves = read_jsonl(f)
    assert sorted(curves) == ["eval/acc", "lr", "train/loss"]
    assert curves["train/loss"].value.tolist() == [3.0, 2.0, 1.0]
    assert curves["lr"].step.tolist() == [0]
    assert curves["eval/acc"].step.tolist() == [2]  # a key first seen late is still read


def test_jsonl_column_mapping(tmp_path: Path) -> None:
    f = _write(tmp_path, "a.jsonl", '{"it": 5, "l": 1.0, "x": 9}\n{"it": 6, "l": 0.5}\n')
    curves = read_jsonl(f, step="it", columns={"l": "loss"})
    assert list(curves) == ["loss"] and curves["loss"].step.tolist() == [5, 6]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"a.jsonl:1: the file has no records"),
        ('{"step": 0, "loss": 1}\n{"step": 1, "loss": \n', r"a.jsonl:2: not valid JSON"),
        ('{"step": 0, "loss": 1}\n[1, 2]\n', r"a.jsonl:2: expected one JSON object"),
        ('{"loss": 1}\n', r"no step column found"),
        ('{"step": 0, "loss": 1}\n{"step": -1, "loss": 2}\n', r"a.jsonl:2: the step -1"),
        ('{"step": 0, "loss": 1}\n{"step": 1, "loss": "x"}\n', r"a.jsonl:2: column 'loss'"),
        ('{"step": 0, "loss": 1}\n{"loss": 2}\n', r"a.jsonl:2: the step column 'step' is empty"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    f = _write(tmp_path, "a.jsonl", text)
    with pytest.raises(ImportFormatError, match=match):
        read_jsonl(f)


def test_wandb_history_export(tmp_path: Path) -> None:
    text = (
        "_step,_runtime,_timestamp,train/loss,lr,_wandb.runtime\n"
        "0,1.0,1700000000.0,2.5,0.001,1\n"
        "1,2.0,1700000001.0,2.1,,2\n"
    )
    curves = read_wandb_csv(_write(tmp_path, "h.csv", text))
    assert sorted(curves) == ["lr", "train/loss"]  # W&B's own _columns are skipped
    assert curves["train/loss"].value.tolist() == [2.5, 2.1]


def test_wandb_chart_export_drops_run_prefix_and_min_max(tmp_path: Path) -> None:
    text = "Step,run-7 - loss,run-7 - loss__MIN,run-7 - loss__MAX\n10,2.0,1.9,2.1\n20,1.5,1.4,1.6\n"
    curves = read_wandb_csv(_write(tmp_path, "chart.csv", text))
    assert list(curves) == ["loss"]
    assert curves["loss"].step.tolist() == [10, 20]


def test_a_plain_csv_is_not_taken_for_a_wandb_export(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="not a W&B history export"):
        read_wandb_csv(_write(tmp_path, "x.csv", "step,loss\n0,1\n"))


@pytest.mark.parametrize("reader", [read_csv, read_jsonl])
def test_a_gzip_compressed_log_is_read_as_it_is(tmp_path: Path, reader: Any) -> None:
    # it was refused as 'not UTF-8 text; save the file as UTF-8', which does not help
    text = "step,loss\n0,3.0\n5,2.0\n" if reader is read_csv else '{"step":0,"loss":3}\n'
    f = tmp_path / "log.gz"
    f.write_bytes(gzip.compress(text.encode()))
    assert reader(f)["loss"].step.tolist() == ([0, 5] if reader is read_csv else [0])


def test_a_cut_short_gzip_log_is_a_clear_error(tmp_path: Path) -> None:
    data = gzip.compress(b"step,loss\n" + b"".join(b"%d,1.0\n" % i for i in range(5000)))
    f = tmp_path / "log.csv.gz"
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImportFormatError, match="gzip data is cut short or damaged"):
        read_csv(f)


def test_utf16_text_with_its_byte_order_mark_is_read(tmp_path: Path) -> None:
    # Excel's "Unicode text" and PowerShell write UTF-16; it was 'not UTF-8 text'
    f = tmp_path / "log.csv"
    f.write_bytes("step,loss\n0,3.0\n1,2.5\n".encode("utf-16"))
    assert read_csv(f)["loss"].value.tolist() == [3.0, 2.5]


@pytest.mark.parametrize("delimiter", [";;", ""])
def test_a_delimiter_of_more_or_less_than_one_character_is_refused(
    tmp_path: Path, delimiter: str
) -> None:
    f = _write(tmp_path, "a.csv", "step,loss\n0,1\n")
    with pytest.raises(InvalidInputError, match="one character"):  # was csv's TypeError
        read_csv(f, delimiter=delimiter)


@pytest.mark.parametrize(
    ("name", "text"),
    [("a.csv", "step,loss,t\n0,1.0,5\n"), ("a.jsonl", '{"step": 0, "loss": 1.0, "t": 5}\n')],
)
def test_a_wall_column_that_is_not_there_is_an_error(tmp_path: Path, name: str, text: str) -> None:
    # it was ignored: the run got no wall times, and "t" was imported as a metric
    reader = read_csv if name.endswith(".csv") else read_jsonl
    with pytest.raises(ImportFormatError, match="no wall-time column 'nope'"):
        reader(_write(tmp_path, name, text), wall="nope")


def test_two_columns_mapped_to_one_key_are_refused(tmp_path: Path) -> None:
    f = _write(tmp_path, "a.csv", "step,loss,acc\n0,1.0,0.5\n")
    with pytest.raises(InvalidInputError, match="several file columns"):  # acc replaced loss
        read_csv(f, columns={"loss": "x", "acc": "x"})


def test_an_unnamed_column_is_skipped_with_a_warning(tmp_path: Path) -> None:
    # a spreadsheet's index column became a metric named ''
    f = _write(tmp_path, "a.csv", ",step,loss\n0,0,3.0\n1,10,2.0\n")
    with pytest.warns(RuncastWarning, match="column 1 of the header has no name"):
        curves = read_csv(f)
    assert sorted(curves) == ["loss"]


def test_jsonl_keys_that_collide_once_flattened_are_an_error(tmp_path: Path) -> None:
    # {"a/b": 1, "a": {"b": 2}} kept 2 and dropped 1 without a word
    f = _write(tmp_path, "a.jsonl", '{"step": 0, "a/b": 1, "a": {"b": 2}}\n')
    with pytest.raises(ImportFormatError, match=r"a\.jsonl:1: the keys \['a/b'\] appear twice"):
        read_jsonl(f)
