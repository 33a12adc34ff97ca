"""``runcast compare``: time to a target across runs, ratios, scores, forecasts, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import runcast
from runcast.cli import app


def _loss(s: np.ndarray, floor: float, scale: float) -> np.ndarray:
    return floor + 2.0 / (1.0 + s / scale)


@pytest.fixture
def db(db_path: Path) -> Path:
    steps = np.arange(0, 400, 10)
    # fast reaches 1.5 at step 20 (1 + 2/(1 + s/20) <= 1.5 from s = 60), slow later, and
    # "short" stops at step 150 before reaching it: its planned 1000 steps are forecast
    for name, scale, last, total in (
        ("fast", 20.0, 400, 400),
        ("slow", 8.0, 400, 400),
        ("short", 8.0, 150, 1000),
    ):
        with runcast.init(
            project="c", name=name, config={"max_steps": total}, db=str(db_path)
        ) as r:
            for s, v in zip(steps, _loss(steps, 1.0, scale), strict=True):
                if s < last:
                    r.log({"val_loss": float(v)}, step=int(s))
    return db_path


def _run(db: Path, *args: str) -> dict:
    res = CliRunner().invoke(app, ["--db", str(db), "compare", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_steps_ratios_and_scores(db: Path) -> None:
    out = _run(db, "fast", "slow", "--metric", "val_loss", "--target", "1.5")
    fast, slow = out["runs"]
    # 1 + 2/(1 + s/20) <= 1.5  <=>  s >= 60; scale 8: s >= 24, first logged at 30
    assert (fast["step"], slow["step"]) == (60.0, 30.0)
    assert slow["ratio_steps"] == 1.0 and fast["ratio_steps"] == 2.0
    assert fast["score_steps"] == pytest.approx((4 - 2) / 3)  # AlgoPerf, r_max = 4
    assert not fast["forecast"] and fast["seconds"] is not None and fast["seconds"] >= 0


def test_a_run_short_of_the_target_is_forecast_and_marked(db: Path, tmp_path: Path) -> None:
    # scale 8 reaches 1.2 at s >= 72 but "short" has 150 steps, so target 1.1 (s >= 152)
    out = _run(
        db, "slow", "short", "-m", "val_loss", "-t", "1.1", "--html", str(tmp_path / "p.html")
    )
    slow, short = out["runs"]
    assert slow["step"] == 160.0 and not slow["forecast"]
    assert short["forecast"] is True  # not reached yet: a forecast, said so
    assert short["step"] is None or 140 < short["step"] <= 1000  # after its last point
    assert "forecast" in (tmp_path / "p.html").read_text()
    # with no horizon to forecast to it is a plain miss: infinite, scores 0
    out = _run(db, "short", "slow", "-t", "1.1", "--until", "100")
    assert out["runs"][0]["step"] is None and out["runs"][0]["score_steps"] == 0.0


def test_table_and_unknown_metric(db: Path) -> None:
    res = CliRunner().invoke(app, ["--db", str(db), "compare", "fast", "slow", "-t", "1.5"])
    assert res.exit_code == 0, res.output
    assert "Time to val_loss" in res.output and "reached" in res.output
    res = CliRunner().invoke(app, ["--db", str(db), "compare", "fast", "-m", "acc", "-t", "1"])
    assert res.exit_code == 1 and "no metric 'acc'" in res.output
