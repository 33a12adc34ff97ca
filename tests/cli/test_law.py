"""``runcast law fit`` / ``runcast law predict``: files in, a saved law, predictions out."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from runcast import Schedule
from runcast.cli import _law
from runcast.forecast.laws import Law, MultiPowerLaw

COSINE = "cosine:peak=3e-4,end=3e-5,warmup=500,total=12000"
CONSTANT = "constant:peak=3e-4,warmup=500,total=12000"
WSD = "wsd:peak=3e-4,end=3e-5,warmup=500,total=12000,decay_start=10000"
TRUTH = MultiPowerLaw.published("25M")


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    _law.register(app)

    @app.callback()
    def _root() -> None:  # a group, so the commands are invoked as `law fit`
        pass

    return app


def write_csv(path: Path, spec: str, with_lr: bool = False) -> Path:
    sched = Schedule.from_string(spec)
    steps = np.arange(0, 12000) if with_lr else np.arange(500, 12000, 100)
    loss = TRUTH.predict(sched, np.maximum(steps, 1))
    lrs = sched.array()
    lines = ["step,lr,loss"] + [
        f"{s},{float(lrs[s])!r},{float(v)!r}" for s, v in zip(steps, loss, strict=True)
    ]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_fit_then_predict(app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    a = write_csv(tmp_path / "cos.csv", COSINE)
    b = write_csv(tmp_path / "const.csv", CONSTANT)
    out = tmp_path / "law.json"
    args = ["law", "fit", str(a), str(b), "-s", COSINE, "-s", CONSTANT, "--law", "mpl"]
    res = runner.invoke(app, [*args, "-o", str(out)])
    assert res.exit_code == 0, res.output
    # the table names the law's parameters and the leave-one-out check ran on 2 curves
    assert "alpha" in res.output and "held-out relative error" in res.output
    law = Law.load(out)
    assert law.name == "mpl"
    res = runner.invoke(app, ["law", "predict", str(out), "-s", WSD, "--steps", "6000,11999",
                              "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    truth = TRUTH.predict(Schedule.from_string(WSD), [6000, 11999])
    # fitted on cosine + constant, the WSD prediction matches the true law to 0.3%
    np.testing.assert_allclose(data["median"], truth, rtol=3e-3)
    lo, hi = data["final"]["interval_80"]
    assert lo < data["median"][-1] < hi


def test_predict_with_an_unpinned_law_gives_its_prediction_and_no_interval(
    app: typer.Typer, tmp_path: Path, unpinned_law: Law
) -> None:
    path = unpinned_law.save(tmp_path / "law.json")
    spec = "cosine:peak=3e-3,end=3e-4,warmup=50,total=3000"
    res = CliRunner().invoke(app, ["law", "predict", str(path), "-s", spec])
    text = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    point = float(unpinned_law.predict(Schedule.from_string(spec), [2999])[0])
    # the law's own prediction, said to carry no interval, after the note why
    assert f"final loss at step 2999: {point:.4f} (no interval)" in text
    assert "note:" in text and "unpinned" in text


def test_fit_from_a_recorded_lr_column(app: typer.Typer, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "run.csv.gz", COSINE, with_lr=True)
    res = CliRunner().invoke(app, ["law", "fit", str(path), "--law", "momentum", "--json"])
    assert res.exit_code == 0, res.output
    # the per-step lr column became the schedule; the momentum law was fitted on binned points
    data = json.loads(res.output)
    assert data["law"] == "momentum" and data["info"]["n_points"] == 256


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-s", COSINE, "-s", CONSTANT, "-s", WSD], "once per file"),
        (["--metric", "acc"], "no 'acc' column"),
        ([], "no schedule given"),
        (["-s", "cosine:peak=1e-3", "--law", "nope"], "total"),
        (["-s", CONSTANT, "--law", "nope"], "Unknown law 'nope'"),
    ],
)
def test_fit_errors_are_one_line(
    app: typer.Typer, tmp_path: Path, extra: list[str], message: str
) -> None:
    path = tmp_path / "run.csv"
    path.write_text("step,loss\n500,4.0\n600,3.9\n")
    res = CliRunner().invoke(app, ["law", "fit", str(path), *extra])
    # a RuncastError is printed as one "error:" line with the fix, exit status 1
    assert res.exit_code == 1
    assert "error:" in res.output and message in res.output.replace("\n", " ")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("log.csv", "step,loss,lr\n0,2.5,1e-3\n1, ,1e-3\n2,2.0,\n"),
        ("log.jsonl", '{"step": 0, "loss": 2.5, "lr": 0.001}\n{"step": 1, "lr": 0.001}\n'
         '{"step": 2, "loss": 2.0}\n'),
    ],
)  # fmt: skip
def test_read_rows_and_column_read_csv_and_jsonl_alike(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    rows = _law.read_rows(path, "loss")
    # blank or absent cells are NaN, numbers (strings in CSV, numbers in JSONL) are floats
    np.testing.assert_array_equal(_law.column(rows, "step", path), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(_law.column(rows, "loss", path), [2.5, np.nan, 2.0])
    np.testing.assert_array_equal(_law.column(rows, "lr", path), [1e-3, 1e-3, np.nan])


def test_column_names_the_bad_cell(tmp_path: Path) -> None:
    from runcast.errors import ImportFormatError

    path = tmp_path / "bad.csv"
    path.write_text("step,loss\n0,2.5\n1,oops\n")
    rows = _law.read_rows(path, "loss")
    with pytest.raises(ImportFormatError, match=r"row 2: column 'loss' holds 'oops'"):
        _law.column(rows, "loss", path)
    with pytest.raises(ImportFormatError, match="no 'acc' column"):
        _law.read_rows(path, "acc")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("list.jsonl", "[1, 2]\n[3, 4]\n", r"each line must be a JSON object"),
        ("bad.jsonl", '{"step": 1, "loss": 2}\n{not json\n', r"a line is not JSON"),
        ("bin.csv", b"\xff\xfe\x00step,loss\n\x80", r"not a UTF-8 text log"),
        ("frac.csv", "step,loss\n0.5,3.0\n1.5,2.9\n", r"steps must be whole numbers"),
    ],
)
def test_malformed_logs_are_one_line_errors(
    app: typer.Typer, tmp_path: Path, name: str, content: str | bytes, match: str
) -> None:
    # found by fuzzing the CLI: TypeError (', '.join of a list's ints), JSONDecodeError and
    # UnicodeDecodeError tracebacks; fractional steps were truncated (0.5 became step 0) silently
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    res = CliRunner().invoke(app, ["law", "fit", str(path), "-s", COSINE])
    assert res.exit_code == 1 and res.exception is not None  # typer.Exit(1), not a traceback
    assert isinstance(res.exception, SystemExit), res.exception
    assert "error:" in res.output and len(" ".join(res.output.split()).split(match)) == 2


@pytest.mark.parametrize(
    ("schedule", "match"),
    [
        ("bad.json", r"bad\.json is not valid JSON: .* line 1, column 2"),
        ("cosine:peak=3e-4,total=1e12", r"past the 1e\+08"),
    ],
)
def test_malformed_schedules_are_one_line_errors(
    app: typer.Typer, tmp_path: Path, schedule: str, match: str
) -> None:
    # found by fuzzing: a .json schedule file with bad JSON raised JSONDecodeError, and a total of
    # 1e12 steps a MemoryError (numpy asked for 7 TiB)
    (tmp_path / "bad.json").write_text("{nope")
    law = TRUTH.save(tmp_path / "law.json")
    spec = str(tmp_path / schedule) if schedule.endswith(".json") else schedule
    res = CliRunner().invoke(app, ["law", "predict", str(law), "-s", spec])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.exception
    assert re.search(match, " ".join(res.output.split())), res.output


def _fuzz_files(tmp: Path) -> tuple[list[str], list[str]]:
    """Logs and saved laws, good and malformed, for the command-line fuzz test."""
    spec = "cosine:peak=3e-4,end=3e-5,warmup=100,total=1500"
    good = write_csv(tmp / "good.csv", COSINE)
    logs = {
        "empty.csv": "", "header.csv": "step,loss\n", "nostep.csv": "x,loss\n1,2\n",
        "text.csv": "step,loss\n1,abc\n", "neg.csv": "step,loss\n-5,2\n1,1\n",
        "blank.csv": "step,loss\n,1\n5,2\n", "huge.csv": "step,loss\n1,2\n1e20,1\n",
        "list.jsonl": "[1]\n", "str.jsonl": '"a"\n', "bad.jsonl": "{x\n",
        "negloss.csv": "step,loss\n" + "".join(f"{s},{s / 1e4 - 3}\n" for s in range(600, 1500)),
        "lrbad.csv": "step,loss,lr\n0,3,abc\n",
        "short.csv": "".join(f"{s},{3 - s / 1e4}\n" for s in range(600, 700, 20)),
    }  # fmt: skip
    for name, text in logs.items():
        (tmp / name).write_text(text)
    (tmp / "bin.csv").write_bytes(b"\xff\xfe\x00\x01")
    laws = {
        "good.json": TRUTH.to_dict(),
        "neg.json": {**TRUTH.to_dict(), "params": {"L0": -1}},
        "big.json": {**TRUTH.to_dict(), "params": {**TRUTH.params, "B": 1e5}},
        "list.json": [1],
    }
    for name, data in laws.items():
        (tmp / name).write_text(json.dumps(data))
    (tmp / "broken.json").write_text("{nope")
    # the sound ones weigh more: the fuzz must reach the fits, predictions and plans too
    files = [str(good)] * 6 + [str(tmp / n) for n in [*logs, "bin.csv", "missing.csv"]]
    saved = (
        [str(tmp / "good.json")] * 4
        + [str(tmp / n) for n in laws]
        + [str(tmp / "broken.json"), spec]
    )
    return files, saved


SCHEDULES = [
    *[COSINE] * 6, "cosine:peak=3e-4", "{bad", "cosine:peak", "nope:peak=1", "", ":",
    "constant:peak=0,total=12000", "cosine:peak=nan,total=12000", "cosine:peak=3e-4,total=10",
    "cosine:peak=3e-4,total=1e12", '{"kind": "recorded", "lrs": [1e-3]}',
]  # fmt: skip


def test_random_command_lines_end_in_a_result_or_a_one_line_error(tmp_path: Path) -> None:
    from runcast.cli import _plan

    app = typer.Typer()
    _law.register(app)
    _plan.register(app)
    app.callback()(lambda: None)  # a group: `law fit`, `plan`
    files, laws = _fuzz_files(tmp_path)
    rng = np.random.default_rng(0)

    def pick(options: list[Any]) -> Any:
        return options[int(rng.integers(len(options)))]

    runner, done = CliRunner(), 0
    for _ in range(60):
        cmd = pick(["fit", "predict", "plan"])
        if cmd == "fit":
            args = ["law", "fit", pick(files), "-s", pick(SCHEDULES), "--law", pick(["mpl", "x"])]
        elif cmd == "predict":
            steps = pick([[], ["--steps", pick(["100,11999", "abc", "-5", ",", "99999999999"])]])
            args = ["law", "predict", pick(laws), "-s", pick(SCHEDULES), *steps]
        else:
            args = ["plan", "--budget", pick(["3000", "3000", "1", "-5", "abc", "100000000000"]),
                    "--law", pick(laws), "--peak", pick(["3e-4", "3e-4", "0", "nan", "abc"]),
                    "--warmup", pick(["0", "0", "-1", "5000"]), "--no-free-form"]  # fmt: skip
        res = runner.invoke(app, args)
        # 0: a result; 2: click's usage error; 1: runcast's one-line error, never a traceback
        assert res.exit_code in (0, 1, 2), (args, res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.exception)
        if res.exit_code == 1:
            assert "error:" in res.output, (args, res.output)
        done += res.exit_code == 0
    assert done >= 4  # some command lines are sound and get their answer
