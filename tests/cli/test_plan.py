"""``runcast plan``: from curve files or a saved law to a planned schedule, and its errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from runcast.cli import _plan

COSINE = "cosine:peak=3e-4,end=3e-5,warmup=2160,total=24000"
CONSTANT = "constant:peak=3e-4,warmup=2160,total=24000"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    _plan.register(app)

    @app.callback()
    def _root() -> None:  # a group, so the command is invoked as `plan`
        pass

    return app


@pytest.fixture
def law_file(tmp_path: Path) -> Path:
    from runcast.forecast.laws import MultiPowerLaw

    return MultiPowerLaw.published("25M").save(tmp_path / "law.json")


def write_curve(path: Path, spec: str) -> Path:
    from runcast import Schedule
    from runcast.forecast.laws import MultiPowerLaw

    steps = np.arange(2200, 24000, 400)
    loss = MultiPowerLaw.published("25M").predict(Schedule.from_string(spec), steps)
    rows = "\n".join(f"{s},{v:.6f}" for s, v in zip(steps, loss, strict=True))
    path.write_text("step,loss\n" + rows + "\n")
    return path


def test_plan_from_saved_law(app: typer.Typer, law_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    args = [
        "plan",
        "--law",
        str(law_file),
        "--budget",
        "24000",
        "--peak",
        "3e-4",
        "--warmup",
        "2160",
        "--no-free-form",
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # rich wraps lines to the terminal's width
    assert "Predicted gain over the baseline: +0.05" in text  # MPL 25M: WSD beats cosine
    assert "P(gain > 0) = 1.00" in text and "wsd" in text
    saved = json.loads(out.read_text())
    assert saved["schedule"]["kind"] == "wsd" and saved["schedule"]["total"] == 24000


def test_plan_fits_files_and_notes_extrapolation(app: typer.Typer, tmp_path: Path) -> None:
    a = write_curve(tmp_path / "cos.csv", COSINE)
    b = write_curve(tmp_path / "const.csv", CONSTANT)
    base = [
        "plan",
        str(a),
        str(b),
        "-s",
        COSINE,
        "-s",
        CONSTANT,
        "--budget",
        "24000",
        "--law",
        "mpl",
        "--no-free-form",
    ]
    res = CliRunner().invoke(app, base)
    text = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    # unconstrained, the plan anneals below every LR the fitted runs saw: the CLI says so
    assert "below the lowest LR of the fitted runs (3.01e-05)" in text
    res = CliRunner().invoke(app, [*base, "--floor", "3e-5", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["schedule"]["end"] >= 3e-5  # the floor keeps the plan where the law was fitted
    # peak and warmup default to the given schedules'; the fit recovers the law's answer
    assert data["schedule"]["peak"] == 3e-4 and data["schedule"]["warmup"] == 2160
    assert 0.03 < data["gain"] < 0.08 and data["prob_gain"] > 0.9


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--budget", "24000"], "give its schedule with --schedule"),
        (["--budget", "24000", "-s", COSINE, "-s", COSINE, "-s", COSINE], "3 --schedule for 1"),
        (["--budget", "1", "-s", COSINE], "--budget N"),
        (["--budget", "24000", "-s", "cosine:peak=3e-4,total=100"], "plans 100 steps"),
    ],
)
def test_plan_errors(app: typer.Typer, tmp_path: Path, extra: list[str], match: str) -> None:
    f = write_curve(tmp_path / "cos.csv", COSINE)
    res = CliRunner().invoke(app, ["plan", str(f), *extra])
    assert res.exit_code == 1  # a clear one-line error, not a traceback
    assert match in " ".join(res.output.split())


def test_plan_needs_curves_or_law(app: typer.Typer) -> None:
    res = CliRunner().invoke(app, ["plan", "--budget", "100", "--peak", "1e-3"])
    assert res.exit_code == 1 and "--law FILE.json" in res.output


def test_read_curve_errors(tmp_path: Path) -> None:
    from runcast.errors import ImportFormatError

    bad = tmp_path / "bad.csv"
    bad.write_text("step,acc\n1,0.5\n")
    with pytest.raises(ImportFormatError, match="no 'loss' column"):
        _plan.read_curve(bad, "loss", None)
    with pytest.raises(ImportFormatError, match="no such file"):
        _plan.read_curve(tmp_path / "missing.csv", "loss", None)


def test_read_curve_takes_jsonl_with_an_lr_column(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    lines = [{"step": s, "loss": 3.0 - 0.1 * s, "lr": 1e-3 * (1 - s / 4)} for s in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    curve = _plan.read_curve(path, "loss", None)
    # the lr column (every step from 0) became the schedule; values kept in order
    assert curve.schedule is not None
    np.testing.assert_allclose(curve.schedule.array(), [1e-3, 7.5e-4, 5e-4, 2.5e-4])
    np.testing.assert_allclose(curve.value, [3.0, 2.9, 2.8, 2.7])


def test_plan_takes_peak_and_warmup_from_an_lr_column(app: typer.Typer, tmp_path: Path) -> None:
    # found by fuzzing: a run logged with its per-step 'lr' needed --peak ("Give the peak LR"),
    # and planned with no warmup, though its own LRs said both
    from runcast import Schedule
    from runcast.forecast.laws import MultiPowerLaw

    sched = Schedule.from_string("cosine:peak=3e-4,end=3e-5,warmup=200,total=3000")
    lrs = sched.array()
    loss = MultiPowerLaw.published("25M").predict(sched, np.arange(1, 3000))
    rows = "".join(f"{s},{float(loss[s - 1])!r},{float(lrs[s])!r}\n" for s in range(1, 3000))
    path = tmp_path / "run.csv"
    path.write_text(f"step,loss,lr\n0,{float(loss[0])!r},0.0\n" + rows)
    res = CliRunner().invoke(
        app, ["plan", str(path), "--budget", "3000", "--no-free-form", "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    # the run's peak, and its warmup to where the LR first reached 99% of it (step 198 of 200)
    assert data["schedule"]["peak"] == pytest.approx(3e-4) and data["schedule"]["warmup"] == 198


def test_plan_with_a_law_taking_schedules_below_zero_warns_of_none_it_ruled_out(
    app: typer.Typer, tmp_path: Path
) -> None:
    # found by fuzzing: with a law whose annealing gain takes the loss below 0, the planner
    # printed the law's "predicts a loss of -20.6" warning for a schedule it then ruled out
    from runcast.forecast.laws import MultiPowerLaw

    big = MultiPowerLaw({**MultiPowerLaw.published("25M").params, "B": 1e5})
    law = big.save(tmp_path / "big.json")
    base = "cosine:peak=3e-4,end=3e-4,total=3000"
    args = ["plan", "--budget", "3000", "--law", str(law), "--peak", "3e-4", "--no-free-form"]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        res = CliRunner().invoke(app, [*args, "--warmup", "0", "--baseline", base, "--json"])
    assert res.exit_code == 0, res.output
    # nothing about the schedules the search left out (the command prints warnings as notes),
    # and the plan is a positive loss
    assert not [w for w in said if "predicts a loss of -" in str(w.message)]
    assert "predicts a loss of -" not in res.output
    assert json.loads(res.output)["loss"] > 0


def test_plan_says_when_it_assumes_no_warmup(app: typer.Typer, law_file: Path) -> None:
    args = ["plan", "--law", str(law_file), "--budget", "2000", "--peak", "3e-4", "--no-free-form"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    # a saved law has no schedule to take the warmup from: the plan's "warmup: 0" is said
    assert "note: no --warmup and no schedule to take it from: planning with no warmup" in text
    assert '"warmup": 0' in text
    res = CliRunner().invoke(app, [*args, "--warmup", "100"])
    assert res.exit_code == 0 and "no --warmup" not in res.output


def _stored_run(db: Path, config: dict[str, object]) -> str:
    import runcast
    from runcast import Schedule
    from runcast.forecast.laws import MultiPowerLaw

    sched = Schedule.from_string(COSINE)
    steps = np.arange(2200, 24000, 400)
    loss = MultiPowerLaw.published("25M").predict(sched, steps)
    with runcast.init(project="p", name="cos", db=db, config=config) as run:
        for s, v in zip(steps, loss, strict=True):
            run.log({"loss": float(v)}, step=int(s))
    return str(run.id)


def test_plan_and_law_fit_take_runs_in_the_store(app: typer.Typer, tmp_path: Path) -> None:
    from runcast.cli import _law

    db = tmp_path / "r.db"
    run_id = _stored_run(db, {"schedule": COSINE})
    base = ["plan", "--db", str(db), "--budget", "24000", "--law", "mpl", "--no-free-form"]
    # the run's recorded schedule (config['schedule']) comes with it: no --schedule needed
    res = CliRunner().invoke(app, [*base, run_id, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["schedule"]["peak"] == 3e-4 and data["gain"] > 0
    # by name too, and the same run through `runcast law fit`
    law_app = typer.Typer()
    _law.register(law_app)
    fit = CliRunner().invoke(law_app, ["law", "fit", "cos", "--db", str(db), "--law", "mpl"])
    assert fit.exit_code == 0, fit.output
    assert "fit on" in " ".join(fit.output.split())


def test_a_stored_run_without_a_schedule_asks_for_one(app: typer.Typer, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    run_id = _stored_run(db, {})  # no plan, no config['schedule'], no lr logged
    args = ["plan", run_id, "--db", str(db), "--budget", "24000", "--law", "mpl"]
    res = CliRunner().invoke(app, args)
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "recorded no schedule" in text and "--schedule" in text
    # given one, it plans
    res = CliRunner().invoke(app, [*args, "-s", COSINE, "--no-free-form", "--json"])
    assert res.exit_code == 0, res.output
    missing = CliRunner().invoke(app, ["plan", "nosuch", "--db", str(db), "--budget", "9"])
    assert missing.exit_code == 1 and "No run 'nosuch'" in " ".join(missing.output.split())
