from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import runcast
from runcast.cli import app
from runcast.errors import StoreError
from runcast.store import open_store

runner = CliRunner()


@pytest.fixture
def two_runs(db_path: Path) -> tuple[str, str]:
    with runcast.init(project="a", name="first", db=db_path, config={"lr": 0.1}) as r1:
        for s in range(3):
            r1.log({"loss": 2.0 - s * 0.5, "lr": 0.1})
    with runcast.init(project="b", name="second", db=db_path) as r2:
        r2.log({"loss": 1.0})
    return r1.id, r2.id


def test_list_shows_runs_newest_first(db_path: Path, two_runs: tuple[str, str]) -> None:
    res = runner.invoke(app, ["runs", "list", "--db", str(db_path)], terminal_width=200)
    assert res.exit_code == 0, res.output
    first, second = two_runs
    assert res.output.index(second) < res.output.index(first)
    assert "2 run(s)" in res.output and "finished" in res.output


def test_list_filters_and_prints_json(db_path: Path, two_runs: tuple[str, str]) -> None:
    res = runner.invoke(app, ["--db", str(db_path), "runs", "list", "-p", "a", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == ["first"]
    assert rows[0]["n_points"] == 6 and rows[0]["last_step"] == 2


def test_list_of_an_empty_store(db_path: Path) -> None:
    open_store(db_path).close()
    res = runner.invoke(app, ["runs", "list", "--db", str(db_path)])
    assert res.exit_code == 0 and "No runs" in res.output


def test_show_prints_config_and_metrics(db_path: Path, two_runs: tuple[str, str]) -> None:
    res = runner.invoke(app, ["runs", "show", "first", "--db", str(db_path)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert two_runs[0] in res.output and "lr" in res.output and "0.1" in res.output
    data = json.loads(
        runner.invoke(app, ["runs", "show", two_runs[0], "--json", "--db", str(db_path)]).output
    )
    assert data["metrics"]["loss"]["n_points"] == 3
    assert data["metrics"]["loss"]["last_value"] == 1.0


@pytest.mark.parametrize(
    "command", [["show", "ghost"], ["rm", "ghost", "-y"], ["export", "ghost", "x.csv"]]
)
def test_an_unknown_run_is_one_red_line_and_exit_1(
    db_path: Path, two_runs: tuple[str, str], command: list[str]
) -> None:
    res = runner.invoke(app, ["runs", *command, "--db", str(db_path)])
    assert res.exit_code == 1
    assert "No run 'ghost'" in res.output and "Traceback" not in res.output


def test_a_missing_store_is_not_created_by_reading(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    res = runner.invoke(app, ["runs", "list", "--db", str(db)])
    assert res.exit_code == 1 and "no runcast store" in res.output
    assert not db.exists()


def test_rm_asks_and_deletes(db_path: Path, two_runs: tuple[str, str]) -> None:
    first, second = two_runs
    res = runner.invoke(app, ["runs", "rm", first, "--db", str(db_path)], input="n\n")
    assert res.exit_code == 1  # declined: aborted, nothing deleted
    with open_store(db_path) as store:
        assert len(store.runs()) == 2
    res = runner.invoke(app, ["runs", "rm", first, "--db", str(db_path)], input="y\n")
    assert res.exit_code == 0, res.output
    with open_store(db_path) as store:
        assert [r.id for r in store.runs()] == [second]


def test_rm_with_one_bad_id_deletes_nothing(db_path: Path, two_runs: tuple[str, str]) -> None:
    res = runner.invoke(app, ["runs", "rm", two_runs[0], "ghost", "-y", "--db", str(db_path)])
    assert res.exit_code == 1
    with open_store(db_path) as store:
        assert len(store.runs()) == 2


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export(db_path: Path, tmp_path: Path, two_runs: tuple[str, str], suffix: str) -> None:
    out = tmp_path / f"first{suffix}"
    res = runner.invoke(
        app, ["runs", "export", "first", str(out), "-k", "loss", "--db", str(db_path)]
    )
    assert res.exit_code == 0, res.output
    assert out.exists()
    if suffix == ".csv":
        assert out.read_text().splitlines() == ["step,loss", "0,2.0", "1,1.5", "2,1.0"]


def test_export_bad_format_is_a_clear_error(
    db_path: Path, tmp_path: Path, two_runs: tuple[str, str]
) -> None:
    res = runner.invoke(
        app, ["runs", "export", "first", str(tmp_path / "x.xlsx"), "--db", str(db_path)]
    )
    assert res.exit_code == 1 and "format must be 'csv' or 'parquet'" in res.output


def test_list_with_an_unknown_status_is_an_error_not_an_empty_list(
    db_path: Path, two_runs: tuple[str, str]
) -> None:
    res = runner.invoke(app, ["runs", "list", "--status", "done", "--db", str(db_path)])
    assert res.exit_code == 1 and "--status must be one of" in res.output  # was 'No runs'


def test_rm_refuses_a_run_that_is_still_running_unless_forced(db_path: Path) -> None:
    # deleting it left its process logging into a run that was gone, failing at finish()
    run = runcast.init(name="live", db=db_path)
    run.log({"loss": 1.0})
    run.flush()
    res = runner.invoke(app, ["runs", "rm", "live", "-y", "--db", str(db_path)])
    assert res.exit_code == 1 and "still running" in res.output and "--force" in res.output
    run.log({"loss": 0.5})
    run.finish()  # the run and its points are intact
    with open_store(db_path) as store:
        assert store.curve(run.id, "loss").value.tolist() == [1.0, 0.5]
    live = runcast.init(name="live2", db=db_path)
    res = runner.invoke(app, ["runs", "rm", "live2", "-y", "--force", "--db", str(db_path)])
    assert res.exit_code == 0, res.output
    with open_store(db_path) as store:
        assert [r.name for r in store.runs()] == ["live"]
    with pytest.raises(StoreError, match="No run"):  # forced: its process finds it gone
        live.finish()


@pytest.mark.parametrize(
    "command",
    [["list"], ["show", "x[/b]"], ["export", "x[/b]", "out.csv"], ["rm", "x[/b]", "-y"]],
)
def test_names_with_brackets_are_shown_as_text_not_markup(
    db_path: Path, tmp_path: Path, command: list[str]
) -> None:
    # rich read "[/bold]" in a run's name as a closing tag: every command raised MarkupError
    with runcast.init(name="x[/b]", project="p[/]", config={"k[/i]": "v[/b]"}, db=db_path) as r:
        r.log({"loss[/red]": 1.0})
    if command[0] == "export":
        command = [*command[:2], str(tmp_path / "out.csv")]
    res = runner.invoke(app, ["runs", *command, "--db", str(db_path)], terminal_width=300)
    assert res.exit_code == 0, res.output
    assert "x[/b]" in res.output  # the name as it was given


@pytest.mark.filterwarnings("ignore:Run .* NaN or inf:runcast.RuncastWarning")
def test_json_output_is_strict_json_with_null_for_nan(db_path: Path) -> None:
    # json.dumps wrote NaN, which jq and JavaScript refuse
    with runcast.init(name="n", config={"x": float("nan")}, db=db_path) as r:
        r.log({"loss": float("nan")})
    for command in (["list", "--json"], ["show", "n", "--json"]):
        res = runner.invoke(app, ["runs", *command, "--db", str(db_path)])
        data = json.loads(res.output, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
        run = data[0] if isinstance(data, list) else data
        assert run["config"] == {"x": None}
    assert data["metrics"]["loss"]["last_value"] is None


LONG = "gpt2-tiny-cosine-lr3e-4-warmup30-bs16-seed0-run-with-a-long-name"


def _name_column(output: str) -> str:
    """The text of the table's name column, read off by position and joined."""
    lines = output.splitlines()
    head = next(i for i, ln in enumerate(lines) if " name " in ln)
    start = lines[head].index(" name ") + 1
    end = lines[head].index(" project ")
    return "".join(ln[start:end].strip() for ln in lines[head + 2 :])


def test_list_never_cuts_a_name_at_80_columns(db_path: Path) -> None:
    with runcast.init(name=LONG, project="hf-runs", db=db_path) as r:
        r.log({"loss": 1.0}, step=0)
    res = runner.invoke(app, ["runs", "list", "--db", str(db_path)], terminal_width=80)
    assert res.exit_code == 0, res.output
    # the whole name, folded onto more lines (it was "gpt2-ti…"), and no column lost
    assert "…" not in res.output and _name_column(res.output) == LONG
    assert "finished" in res.output and "0s" in res.output
    assert max(len(line) for line in res.output.splitlines()) <= 80


@pytest.mark.filterwarnings("ignore:Run .* NaN or inf:runcast.RuncastWarning")
def test_show_puts_metrics_first_and_folds_a_big_config(db_path: Path) -> None:
    config = {f"arg{i:03d}": i for i in range(120)} | {"hub_token": None, "push_to": "None"}
    with runcast.init(name="hf", config=config, db=db_path) as r:
        r.log({"loss": 2.0}, step=0)
        r.log({"loss": float("nan")}, step=1)
    args = ["runs", "show", "hf", "--db", str(db_path)]
    res = runner.invoke(app, args, terminal_width=120)
    assert res.exit_code == 0, res.output
    # the metrics come first; 122 TrainingArguments-like rows are one line, not a wall
    assert res.output.index("metrics") < res.output.index("config")
    assert f"config: 122 keys (runcast runs show {r.id} --config lists them)" in res.output
    assert "arg000" not in res.output
    # a metric whose last point is missing says so, not "nan"
    assert "nan" not in res.output.lower()
    res = runner.invoke(app, [*args, "--config"], terminal_width=120)
    assert "arg000" in res.output and "arg119" in res.output
    # missing config values are shown as missing, not as null or the text "None"
    row = next(ln for ln in res.output.splitlines() if "hub_token" in ln)
    assert "—" in row and "null" not in row
    row = next(ln for ln in res.output.splitlines() if "push_to" in ln)
    assert "—" in row and "None" not in row


def test_show_lists_a_small_config_as_it_is(db_path: Path) -> None:
    with runcast.init(name="s", config={"lr": 3e-4, "optim": "adamw"}, db=db_path) as r:
        r.log({"loss": 2.0}, step=0)
    res = runner.invoke(app, ["runs", "show", "s", "--db", str(db_path)], terminal_width=120)
    assert "0.0003" in res.output and "adamw" in res.output and '"adamw"' not in res.output
