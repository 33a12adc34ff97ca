"""``runcast sync LOCAL TARGET``: the command line over runcast.store.sync."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import runcast
from runcast.cli import app
from runcast.store import open_store

runner = CliRunner()


def test_sync_reports_what_it_copied_and_a_second_sync_copies_nothing(
    tmp_path: Path, store_db: Path | str
) -> None:
    local = tmp_path / "local.db"
    for name in ("a", "b"):
        with runcast.init(project="p", name=name, db=local) as run:
            for step in range(50):
                run.log({"loss": 1.0 / (step + 1)}, step=step)
    res = runner.invoke(app, ["sync", str(local), str(store_db)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())  # rich wraps long lines
    assert "2 new run(s), 0 updated, 0 already there; 100 points copied" in out
    assert f"{run.id} 'b': 50 points, finished" in out  # one line per run copied
    res = runner.invoke(app, ["sync", str(local), str(store_db)])
    out = " ".join(res.output.split())
    assert "0 new run(s), 0 updated, 2 already there; 0 points copied" in out
    with open_store(store_db) as store:
        assert sorted(r.name for r in store.runs("p")) == ["a", "b"]


def test_sync_of_a_missing_local_store_says_so_and_makes_nothing(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["sync", str(tmp_path / "nope.db"), str(tmp_path / "team.db")], terminal_width=200
    )
    assert res.exit_code == 1
    assert "no runcast store" in " ".join(res.output.split())
    assert not (tmp_path / "team.db").exists()


def test_sync_hides_the_password_of_the_target_url(tmp_path: Path) -> None:
    local = tmp_path / "local.db"
    open_store(local).close()
    res = runner.invoke(
        app, ["sync", str(local), "postgresql://ann:s3cret@127.0.0.1:1/x"], terminal_width=200
    )
    assert res.exit_code == 1
    out = " ".join(res.output.split())
    assert "s3cret" not in out and "ann:***@" in out
