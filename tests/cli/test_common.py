"""What every command shares: the one schedule parser, warnings as notes, option names in
errors, and --help placeholders that name what to type."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from runcast.cli import app
from runcast.cli._common import friendly_errors, parse_schedule
from runcast.errors import RuncastWarning, ScheduleError

runner = CliRunner()
BAD_JSON = '{"kind": "cosine", "peak": 1e-3 "total": 10}'


def _log(tmp_path: Path) -> Path:
    s = np.arange(0, 3001, 25)
    path = tmp_path / "log.csv"
    v = 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6
    path.write_text("step,loss\n" + "".join(f"{a},{b}\n" for a, b in zip(s, v, strict=True)))
    return path


def _commands(tmp_path: Path, spec: str) -> dict[str, list[str]]:
    log = str(_log(tmp_path))
    return {
        "forecast": ["forecast", log, "--until", "10000", "--schedule", spec],
        "law fit": ["law", "fit", log, "--schedule", spec],
        "law predict": ["law", "predict", str(tmp_path / "law.json"), "--schedule", spec],
        "plan": ["plan", "--budget", "1000", "--law", str(tmp_path / "law.json"), "-s", spec],
    }


@pytest.mark.parametrize("command", ["forecast", "law fit", "law predict", "plan"])
def test_malformed_json_is_one_error_line_saying_where(tmp_path: Path, command: str) -> None:
    res = runner.invoke(app, _commands(tmp_path, BAD_JSON)[command])
    # every command: one error line naming the place, no traceback (forecast printed a
    # JSONDecodeError traceback)
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    text = " ".join(res.output.split())
    want = "error: --schedule is not valid JSON: Expecting ',' delimiter at line 1, column 33"
    assert want in text
    assert "Traceback" not in res.output


@pytest.mark.parametrize("command", ["forecast", "law fit", "law predict", "plan"])
def test_a_missing_schedule_file_is_named_as_a_file(tmp_path: Path, command: str) -> None:
    missing = str(tmp_path / "missing.json")
    res = runner.invoke(app, _commands(tmp_path, missing)[command])
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    # not "Unknown schedule kind 'missing.json'"
    assert f"--schedule {missing}: the file does not exist" in text
    assert "Unknown schedule kind" not in text


def test_the_parser_reads_json_files_catalog_entries_and_spec_strings(tmp_path: Path) -> None:
    spec = '{"kind": "cosine", "peak": 0.001, "total": 100}'
    (tmp_path / "s.json").write_text(spec)
    (tmp_path / "entry.json").write_text('{"name": "x", "schedule": ' + spec + "}")
    (tmp_path / "s.txt").write_text("cosine:peak=1e-3,total=100")
    (tmp_path / "bad.json").write_text('{"kind": "cosine",\n "peak": }')
    want = parse_schedule(spec).array()
    for text in (str(tmp_path / "s.json"), str(tmp_path / "entry.json"),
                 str(tmp_path / "s.txt"), "cosine:peak=1e-3,total=100"):  # fmt: skip
        np.testing.assert_array_equal(parse_schedule(text).array(), want)
    # a file's error names the file and the line
    with pytest.raises(ScheduleError, match=r"bad.json is not valid JSON: .* line 2, column 10"):
        parse_schedule(str(tmp_path / "bad.json"))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ScheduleError, match="must be a JSON object"):
        parse_schedule(str(tmp_path / "list.json"))


def test_warnings_print_as_note_lines(tmp_path: Path) -> None:
    # a forecast 3 million times past its data warns; the CLI shows it as a note, without
    # Python's file path and source line
    res = runner.invoke(app, ["forecast", str(_log(tmp_path)), "--until", "10000000000"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "note: until=10000000000 is 3,332,223x the 3,001 steps observed" in text
    assert "RuncastWarning" not in res.output and ".py:" not in res.output
    # once, though the forecast's mixture forecasts twice inside
    assert text.count("steps observed") == 1


def test_friendly_errors_leaves_the_warning_machinery_as_it_was() -> None:
    before = warnings.showwarning
    with friendly_errors():
        warnings.warn("inside", RuncastWarning, stacklevel=1)
    assert warnings.showwarning is before


def test_errors_name_the_options_not_python_arguments(tmp_path: Path) -> None:
    path = tmp_path / "it.csv"
    path.write_text("it,loss\n" + "".join(f"{i},{3.0 / (1 + i)}\n" for i in range(0, 200, 10)))
    res = runner.invoke(app, ["forecast", str(path), "--until", "1000"])
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    # "Pass step='<column>'" named a Python argument; the command has --step
    assert "Pass --step COLUMN." in text and "step=" not in text
    res = runner.invoke(app, ["forecast", str(path), "--until", "1000", "--step", "it"])
    assert res.exit_code == 0, res.output
    assert "from 20 points to step 190" in res.output
    res = runner.invoke(app, ["import", "csv", str(path), "--db", str(tmp_path / "r.db")])
    assert "Pass --step COLUMN." in " ".join(res.output.split())
    # the law needs a schedule this log does not carry: said with --schedule and --method
    args = ["forecast", str(path), "--until", "1000", "--step", "it", "--method", "law"]
    text = " ".join(runner.invoke(app, args).output.split())
    assert "pass --schedule SPEC" in text and "use --method ensemble" in text
    assert "schedule=" not in text and "method=" not in text


def test_a_gzipped_log_with_another_step_column(tmp_path: Path) -> None:
    import gzip

    rows = "iteration,loss\n" + "".join(f"{i},{3.0 / (1 + i)}\n" for i in range(0, 200, 10))
    path = tmp_path / "log.csv.gz"
    path.write_bytes(gzip.compress(rows.encode()))
    # .gz logs go through the same reader as plain ones (it required a 'step' column)
    res = runner.invoke(app, ["forecast", str(path), "--until", "1000", "-m", "ensemble"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    "command", [["forecast"], ["law", "fit"], ["plan"], ["runs", "export"], ["import", "csv"]]
)
def test_help_names_what_to_type_not_python_types(command: list[str]) -> None:
    res = runner.invoke(app, [*command, "--help"])
    assert res.exit_code == 0, res.output
    # typer showed `--json <bool>` on a flag, `<list[Path]>`, `<int>` and `{source}`
    assert not re.search(r"<(bool|int|str|float|Path|list\[\w+\])>", res.output), res.output
    assert "{" not in res.output.split("\n\n")[1]  # the usage line
    if command == ["forecast"]:
        assert "Usage: runcast forecast [OPTIONS] SOURCE" in res.output
        assert re.search(r"--until\s+-u\s+INTEGER", res.output)
        assert re.search(r"--json\s+Print JSON", res.output)  # a flag takes no value
