"""``runcast report``: HTML (and PNGs) from runs in a store, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import runcast
from runcast.cli import app

SPEC = {"kind": "wsd", "peak": 1e-3, "end": 1e-5, "warmup": 10, "total": 200, "decay_start": 160}


@pytest.fixture
def store(db_path: Path) -> tuple[Path, str]:
    with runcast.init(project="c", name="r1", config={"schedule": SPEC}, db=str(db_path)) as run:
        for s in range(200):
            run.log({"loss": 1.5 + 2.0 / np.sqrt(1.0 + s), "acc": s / 200}, step=s)
    return db_path, str(run.id)


def test_report_html_and_png(store: tuple[Path, str], tmp_path: Path) -> None:
    db, rid = store
    out = tmp_path / "r.html"
    res = CliRunner().invoke(
        app,
        [
            "--db",
            str(db),
            "report",
            rid,
            "-o",
            str(out),
            "--png",
            str(tmp_path / "png"),
            "--no-whatif",
            "--from",
            "0.3",
        ],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    assert f"Wrote {out}" in res.output and out.stat().st_size > 1_000_000
    # made at 30% of 200 steps = step 60, shown in the summary table
    assert "made at step 60" in out.read_text()
    assert (tmp_path / "png" / f"r1-{rid}.png").read_bytes()[:4] == b"\x89PNG"


def test_report_by_name_and_other_key(store: tuple[Path, str], tmp_path: Path) -> None:
    db, _ = store
    out = tmp_path / "acc.html"
    res = CliRunner().invoke(
        app, ["report", "r1", "--key", "acc", "-o", str(out), "--db", str(db), "--no-whatif"]
    )
    assert res.exit_code == 0, res.output
    assert "acc reached" in out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "nope"], "No run 'nope'"),
        (["report", "r1", "--key", "zz"], "has no metric 'zz'"),
    ],
)
def test_report_errors(
    store: tuple[Path, str], tmp_path: Path, args: list[str], message: str
) -> None:
    db, _ = store
    res = CliRunner().invoke(app, ["--db", str(db), *args, "-o", str(tmp_path / "x.html")])
    assert res.exit_code == 1 and message in res.output
    assert not (tmp_path / "x.html").exists()


def test_report_on_a_missing_store(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["--db", str(tmp_path / "none.db"), "report", "x"])
    # reading never creates a store
    assert res.exit_code == 1 and not (tmp_path / "none.db").exists()


def test_names_with_brackets_are_printed_as_text(db_path: Path, tmp_path: Path) -> None:
    # a run named like rich markup, with a note to print (too few points for a forecast), and
    # an output path with brackets: shown as they are, not eaten or raising MarkupError
    with runcast.init(project="c", name="exp[/x]", db=str(db_path)) as run:
        for s in range(3):
            run.log({"loss": 2.0 - 0.1 * s}, step=s)
    out = tmp_path / "r[1].html"
    res = CliRunner().invoke(
        app,
        ["--db", str(db_path), "report", run.id, "-o", str(out), "--no-whatif"],
    )
    assert res.exit_code == 0, res.output
    text = res.output.replace("\n", "")  # the shared console wraps a long path at its width
    assert f"Wrote {out}" in text and "exp[/x]:" in text
