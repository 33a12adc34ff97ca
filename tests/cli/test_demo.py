"""``runcast demo``: a short real run end to end (train, record, forecast, report, compare)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import runcast
from runcast.cli import app


@pytest.mark.slow
def test_demo_trains_records_reports_and_compares(tmp_path: Path) -> None:
    import torch

    threads = torch.get_num_threads()
    out = tmp_path / "demo"
    try:
        result = CliRunner().invoke(
            app, ["demo", "--out", str(out), "--steps", "40", "--seed", "3"], env={"COLUMNS": "200"}
        )
    finally:
        torch.set_num_threads(threads)  # the demo sets torch's threads for its process
    assert result.exit_code == 0, result.output
    text = result.output
    # the comparison of the forecast made at 20% (step 8) with what was reached
    assert "The forecast made at step 8 (20% of the run)" in text
    assert "forecast median" in text and "reached" in text and "%" in text
    # the report and the store are in --out, and the store holds the finished run
    report = out / "report.html"
    assert report.stat().st_size > 1_000_000 and "plotly" in report.read_text()[:2_000_000]
    with runcast.open_store(out / "runcast.db") as store:
        (run,) = store.runs()
        assert run.status == "finished" and run.name == "char-transformer-seed3"
        assert store.summary(run.id)["loss"].n_points == 40
    assert f"Run id: {run.id}" in text


def test_demo_rejects_too_few_steps(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--steps", "5"])
    # typer checks the range before anything is trained or written
    assert result.exit_code == 2 and "--steps" in result.output and "20" in result.output
    assert not (tmp_path / "runcast.db").exists()


def test_demo_out_that_is_a_file_is_one_clear_line(tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("mine\n")
    result = CliRunner().invoke(app, ["demo", "--out", str(afile), "--steps", "20"])
    assert result.exit_code == 1 and result.exception is not None
    assert "is a file" in result.output and "folder" in result.output
    assert afile.read_text() == "mine\n"  # nothing of the user's is touched


def test_demo_out_that_cannot_be_created_is_one_clear_line(tmp_path: Path) -> None:
    # a folder under a file cannot be created: the system's reason and the path, no traceback
    afile = tmp_path / "notes.txt"
    afile.write_text("mine\n")
    result = CliRunner().invoke(app, ["demo", "--out", str(afile / "sub"), "--steps", "20"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error:" in result.output and "notes.txt" in result.output
