from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from runcast.cli import app
from runcast.store import open_store

runner = CliRunner()


def test_import_csv_with_column_mapping(db_path: Path, tmp_path: Path) -> None:
    f = tmp_path / "log.csv"
    f.write_text("it,train_loss,junk\n0,3.0,x\n1,2.0,y\n")
    res = runner.invoke(
        app,
        [
            "import",
            "csv",
            str(f),
            "--step",
            "it",
            "-c",
            "train_loss=loss",
            "-p",
            "old",
            "--db",
            str(db_path),
        ],
        terminal_width=200,
    )
    assert res.exit_code == 0, res.output
    with open_store(db_path) as store:
        (info,) = store.runs("old")
        assert info.id in res.output and info.name == "log"
        assert store.curve(info.id, "loss").value.tolist() == [3.0, 2.0]
        assert store.keys(info.id) == ["loss"]


def test_import_jsonl_and_wandb(db_path: Path, tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"step": 0, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n')
    (tmp_path / "h.csv").write_text("_step,_runtime,acc\n0,1,0.1\n1,2,0.2\n")
    for kind, name in (("jsonl", "a.jsonl"), ("wandb", "h.csv")):
        res = runner.invoke(
            app, ["import", kind, str(tmp_path / name), "-n", kind, "--db", str(db_path)]
        )
        assert res.exit_code == 0, res.output
    with open_store(db_path) as store:
        assert sorted(r.name for r in store.runs()) == ["jsonl", "wandb"]
        assert store.keys(store.run("wandb").id) == ["acc"]


def test_import_tb(db_path: Path, tmp_path: Path) -> None:
    SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter
    with SummaryWriter(str(tmp_path / "tb")) as w:
        for s in range(4):
            w.add_scalar("loss", 1.0 / (s + 1), global_step=s)
    res = runner.invoke(app, ["import", "tb", str(tmp_path / "tb"), "--db", str(db_path)])
    assert res.exit_code == 0, res.output
    with open_store(db_path) as store:
        assert store.runs()[0].n_points == 4


def test_a_malformed_file_is_one_line_with_the_line_number(db_path: Path, tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("step,loss\n0,1\n1,2,3\n")
    res = runner.invoke(app, ["import", "csv", str(f), "--db", str(db_path)], terminal_width=300)
    assert res.exit_code == 1
    assert "bad.csv:3" in res.output and "Traceback" not in res.output


def test_a_column_renamed_to_nothing_is_refused(db_path: Path, tmp_path: Path) -> None:
    # `-c loss=` imported the column as a metric named ''
    f = tmp_path / "a.csv"
    f.write_text("step,loss\n0,1\n")
    res = runner.invoke(app, ["import", "csv", str(f), "-c", "loss=", "--db", str(db_path)])
    assert res.exit_code == 1 and "non-empty string" in res.output
    with open_store(db_path) as store:
        assert store.runs() == []  # refused before anything was written


def test_a_run_name_with_brackets_is_printed_as_given(db_path: Path, tmp_path: Path) -> None:
    f = tmp_path / "a[b].csv"  # rich dropped "[b]" as markup, and "[/n]" raised MarkupError
    f.write_text("step,loss\n0,1\n")
    res = runner.invoke(
        app, ["import", "csv", str(f), "--name", "[/n]", "--db", str(db_path)], terminal_width=300
    )
    assert res.exit_code == 0, res.output
    out = res.output.replace("\n", "")  # the shared console may wrap a long path
    assert "a[b].csv" in out and "'[/n]'" in out
