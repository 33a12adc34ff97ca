"""The assembled `runcast` command: every area's commands are registered on the real app."""

from __future__ import annotations

from typer.testing import CliRunner

from runcast import __version__
from runcast.cli import app


def test_every_command_is_on_the_real_app() -> None:
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    # each area registers its own module; a missing one would silently drop its commands
    for command in ("demo", "runs", "import", "forecast", "eval", "law", "plan", "report", "ui"):
        assert command in res.output, command


def test_version() -> None:
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    assert __version__ in res.output


def test_global_db_option_reaches_the_commands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import runcast

    db = tmp_path / "x.db"
    with runcast.init(project="p", name="r1", db=db) as run:
        run.log({"loss": 1.0}, step=0)
    res = CliRunner().invoke(app, ["--db", str(db), "runs", "list"])
    assert res.exit_code == 0
    assert "r1" in res.output  # the run recorded in the store given by the global --db


def test_an_error_quoting_brackets_prints_them_as_text(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the error names the user's file; 'a[b]' and '[/x]' are text, not rich markup (the first
    # lost its brackets, the second raised MarkupError inside the error handler)
    for name in ("a[b].csv", "x[/x].csv"):
        res = CliRunner().invoke(app, ["forecast", str(tmp_path / name), "-u", "10"])
        assert res.exit_code == 1 and res.exception is not None
        assert "MarkupError" not in repr(res.exception)
        assert name in res.output.replace("\n", "")
