from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from runcast.cli import app

runner = CliRunner()


def _log(tmp_path: Path) -> Path:
    s = np.arange(0, 3001, 25)
    v = 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6
    path = tmp_path / "log.csv"
    path.write_text("step,loss\n" + "".join(f"{a},{b}\n" for a, b in zip(s, v, strict=True)))
    return path


def test_forecast_json(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["forecast", str(_log(tmp_path)), "-u", "10000", "-m", "ensemble", "-t", "2.4", "--json"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["method"] == "ensemble" and out["until"] == 10000
    lo, hi = out["final"]["interval_80"]
    # the true final value 2.314 is inside the 80% interval
    assert lo < 2.3136 < hi
    assert 0.0 <= out["prob_beats_target"] <= 1.0


def test_a_target_already_reached_says_so(tmp_path: Path) -> None:
    # the log ends at 2.39..., below 3.0 since step 450: "steps to 3.0" would only name the
    # forecast's first step, so the command says when the data reached it
    v = 2.0 + 5.0 * ((np.arange(0, 3001, 25) + 100) / 100.0) ** -0.6
    first = int(np.arange(0, 3001, 25)[np.argmax(v <= 3.0)])
    log = str(_log(tmp_path))
    res = runner.invoke(app, ["forecast", log, "-u", "10000", "-m", "ensemble", "-t", "3.0"])
    assert res.exit_code == 0, res.output
    assert f"3 already reached (by the trend) at step {first}" in res.output
    res = runner.invoke(
        app, ["forecast", log, "-u", "10000", "-m", "ensemble", "-t", "3", "--json"]
    )
    assert json.loads(res.output)["already_reached_at_step"] == first
    res = runner.invoke(app, ["forecast", log, "-u", "10000", "-m", "ensemble", "-t", "2.35"])
    assert "steps to 2.35" in res.output  # not reached yet: the forecast answers


def test_forecast_with_schedule_prints_intervals(tmp_path: Path) -> None:
    spec = '{"kind": "cosine", "peak": 0.001, "end": 0.0001, "warmup": 100, "total": 10001}'
    # the law needs the schedule: it forecasts only if --schedule reached it
    res = runner.invoke(app, ["forecast", str(_log(tmp_path)), "-u", "10000", "--schedule", spec,
                              "-m", "law"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "(law," in res.output and "80% interval" in res.output
    assert "no LR schedule given" not in res.output
    res = runner.invoke(
        app, ["forecast", str(_log(tmp_path)), "-u", "10000", "--schedule", spec, "--json"]
    )
    assert json.loads(res.output)["schedule_known"] is True


def test_a_blind_loss_forecast_says_what_it_cannot_see(tmp_path: Path) -> None:
    from runcast.forecast._api import resolve_method

    res = runner.invoke(app, ["forecast", str(_log(tmp_path)), "-u", "10000"])
    assert res.exit_code == 0, res.output
    # the log's "loss" is a training loss: auto's blind choice for that kind at 30% of the run
    chosen = resolve_method("auto", None, 3000 / 10_000, "train")
    assert f"({chosen}," in res.output
    assert "no LR schedule given: an LR drop after step 3000" in res.output
    assert "pass --schedule" in res.output
    res = runner.invoke(app, ["forecast", str(_log(tmp_path)), "-u", "10000", "--json"])
    out = json.loads(res.output)  # JSON stays JSON: the note is for people
    assert out["schedule_known"] is False and out["method"] == chosen


def test_forecast_bad_until_is_one_red_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["forecast", str(_log(tmp_path)), "--until", "10"])
    assert res.exit_code == 1
    assert "must be after" in res.output


def test_eval_forecast_table(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["eval", "forecast", str(_log(tmp_path)), "--cutoffs", "0.5", "-m", "ensemble,last"]
    )
    assert res.exit_code == 0, res.output
    assert "ensemble" in res.output and "median |err|" in res.output


def test_forecast_a_run_in_the_store_uses_its_recorded_schedule(db_path: Path) -> None:
    import runcast

    spec = {"kind": "cosine", "peak": 1e-3, "end": 1e-4, "warmup": 10, "total": 2001}
    with runcast.init(project="t", name="r1", config={"schedule": spec}, db=db_path) as run:
        for step in range(0, 801, 10):
            run.log({"loss": 2.0 + 5.0 * ((step + 100) / 100.0) ** -0.6}, step=step)
    res = runner.invoke(app, ["forecast", "r1", "--until", "2000", "--db", str(db_path), "--json",
                              "-m", "law"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    # the run's config carries its schedule: the law, which needs one, forecasts
    assert out["method"] == "law" and out["last_observed_step"] == 800


def test_unknown_run_is_a_clear_error(db_path: Path) -> None:
    import runcast

    with runcast.init(project="t", name="r1", db=db_path) as run:
        run.log({"loss": 1.0}, step=0)
    res = runner.invoke(app, ["forecast", "nope", "--until", "10", "--db", str(db_path)])
    assert res.exit_code == 1 and "error" in res.output


def test_a_recorded_lr_that_stops_at_the_last_step_is_not_a_schedule(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    s = np.arange(0, 3001)
    v = 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6
    path.write_text(
        "step,lr,loss\n" + "".join(f"{a},0.001,{b}\n" for a, b in zip(s, v, strict=True))
    )
    res = runner.invoke(app, ["forecast", str(path), "--until", "10000", "--json"])
    # the LR column ends where the log ends: the forecast goes on without a schedule
    assert res.exit_code == 0, res.output
    assert "recorded LR covers steps 0..3000 only" in res.output


def test_a_log_file_that_does_not_exist_is_named_as_such(tmp_path: Path) -> None:
    # not "there is no runcast store": the user meant a file
    res = runner.invoke(app, ["forecast", str(tmp_path / "missing.csv"), "-u", "100"])
    assert res.exit_code == 1
    assert "missing.csv does not exist" in res.output and "store" not in res.output.split(".")[0]
    res = runner.invoke(app, ["forecast", str(tmp_path), "-u", "100"])
    assert res.exit_code == 1 and "is a folder, not a log file" in res.output


@pytest.mark.parametrize("target", ["nan", "inf", "-inf"])
def test_a_target_must_be_finite(tmp_path: Path, target: str) -> None:
    res = runner.invoke(app, ["forecast", str(_log(tmp_path)), "-u", "10000", "-t", target])
    assert res.exit_code == 1 and "--target must be a finite number" in res.output


def test_eval_forecast_checks_the_methods_before_forecasting(tmp_path: Path) -> None:
    res = runner.invoke(app, ["eval", "forecast", str(_log(tmp_path)), "-m", "ensemble,bogus"])
    assert res.exit_code == 1 and "unknown 'bogus'" in res.output
    assert "skipped" not in res.output and "pfn+ensemble" in res.output  # the known ones listed


def test_a_metric_key_with_brackets_is_printed_as_text(tmp_path: Path) -> None:
    s = np.arange(0, 3001, 25)
    path = tmp_path / "log.csv"
    path.write_text("step,val[/x]\n" + "".join(f"{a},{2.0 + 5.0 / (1 + a / 100)}\n" for a in s))
    args = ["forecast", str(path), "-u", "6000", "-k", "val[/x]", "-m", "ensemble"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "val[/x] at step 6000" in res.output


def test_one_noisy_point_below_the_target_is_not_reaching_it(tmp_path: Path) -> None:
    # the trend ends near 2.64; one point at step 2720 dips below 2.4: "reached" means the
    # trend reached it, consistent with the forecast's chance of beating it (it printed
    # "2.4 already reached at step 2720" beside P(beats 2.4) = 63%)
    rng = np.random.default_rng(0)
    s = np.arange(0, 3001)
    v = 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6 + rng.normal(0, 0.03, s.size)
    v[2720] = 2.35
    path = tmp_path / "noisy.csv"
    path.write_text("step,loss\n" + "".join(f"{a},{b}\n" for a, b in zip(s, v, strict=True)))
    args = ["forecast", str(path), "-u", "10000", "-m", "ensemble", "-t", "2.4"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "already reached" not in res.output and "steps to 2.4: median" in res.output
    out = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert out["already_reached_at_step"] is None
    # the value reached so far is the trend at the last step, not the noisy last point
    assert out["reached"] == pytest.approx(2.0 + 5.0 * 31.0**-0.6, abs=0.02)


def _finished_run(tmp_path: Path) -> tuple[Path, float]:
    """A run that annealed its LR to ~0 by its last step, with the LR logged at every step."""
    s = np.arange(0, 3001)
    lr = np.where(s < 2400, 1e-3, 1e-3 * (3000 - s) / 600 + 1e-6)
    area = np.cumsum(lr) / 1e-3
    v = 1.0 + 2.0 * (area / 100 + 1.0) ** -0.5 - 0.1 * (1e-3 - lr) / 1e-3
    path = tmp_path / "done.csv"
    rows = zip(s, lr, v, strict=True)
    path.write_text("step,lr,loss\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    return path, float(v[-1])


def test_a_finished_run_forecast_past_its_lr_holds_its_last_lr(tmp_path: Path) -> None:
    path, last = _finished_run(tmp_path)
    res = runner.invoke(app, ["forecast", str(path), "-u", "6000", "--json"])
    assert res.exit_code == 0, res.output
    assert "holding it there to step 6000" in " ".join(res.output.split())
    out = json.loads(res.output[res.output.index("{") :])
    # with the LR at ~0 the loss stays where it ended (without the LR, the blind forecast
    # carried the cooldown's fall on: a median far below the last value)
    assert out["schedule_known"] is True
    assert out["final"]["median"] == pytest.approx(last, rel=0.03)


def test_a_forecast_far_past_the_data_says_so(tmp_path: Path) -> None:
    res = runner.invoke(app, ["forecast", str(_log(tmp_path)), "-u", "100000000000"])
    assert res.exit_code == 0, res.output
    assert "is 33,322,226x the 3,001 steps observed" in " ".join(res.output.split())
    res = runner.invoke(app, ["forecast", str(_log(tmp_path)), "-u", "30000"])
    assert "steps observed" not in res.output  # 10x: what the calibration covers


def test_too_few_points_is_the_readmes_rule_for_every_method(tmp_path: Path) -> None:
    path = tmp_path / "five.csv"
    path.write_text("step,loss\n" + "".join(f"{i},{3.0 / (1 + i)}\n" for i in range(5)))
    for method in ("auto", "pfn", "ensemble"):
        res = runner.invoke(app, ["forecast", str(path), "-u", "40", "-m", method])
        assert res.exit_code == 1
        # 6 points, as the README says, never an internal method's own minimum
        text = " ".join(res.output.split())
        assert "Forecasting needs at least 6 finite points, but the curve has 5" in text
        assert "pfn forecaster" not in text
