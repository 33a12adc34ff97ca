"""``runcast scale fit/predict/optimal``: a table or runs in, a saved law, predictions out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import runcast
from runcast.cli import _scale
from runcast.scaling import ScalingLaw


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    _scale.register(app)

    @app.callback()
    def _root() -> None:  # a group, so the commands are invoked as `scale fit`
        pass

    return app


def law_loss(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    return 1.8 + 480 / n**0.35 + 2000 / d**0.37


@pytest.fixture
def table(tmp_path: Path) -> Path:
    n = np.repeat([1e8, 3e8, 1e9], 4)
    d = np.tile([2e9, 5e9, 1e10, 2e10], 3)
    rows = "\n".join(f"{a},{b},{c}" for a, b, c in zip(n, d, law_loss(n, d), strict=True))
    path = tmp_path / "points.csv"
    path.write_text("params,tokens,loss\n" + rows + "\n")
    return path


def test_fit_predict_optimal(app: typer.Typer, table: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    law_path = tmp_path / "law.json"
    res = runner.invoke(
        app,
        [
            "scale",
            "fit",
            str(table),
            "--n-col",
            "params",
            "--d-col",
            "tokens",
            "--boot",
            "20",
            "-o",
            str(law_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "alpha" in res.output and "saved to" in res.output
    law = ScalingLaw.load(law_path)
    assert law.params["alpha"] == pytest.approx(0.35, abs=0.02)

    res = runner.invoke(
        app, ["scale", "predict", str(law_path), "-n", "3e9,1e10", "-d", "6e10", "--json"]
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    # the predicted loss of each (N, D), with its 80% interval around it
    truth = law_loss(np.array([3e9, 1e10]), np.array([6e10, 6e10]))
    for r, t in zip(rows, truth, strict=True):
        assert r["loss"] == pytest.approx(t, rel=0.01)
        assert r["interval_80"][0] <= r["loss"] <= r["interval_80"][1]

    res = runner.invoke(app, ["scale", "optimal", str(law_path), "--flops", "1e21", "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    assert 6 * row["N"] * row["D"] == pytest.approx(1e21)
    assert row["N_interval_80"][0] <= row["N"] <= row["N_interval_80"][1]
    res = runner.invoke(app, ["scale", "optimal", str(law_path), "--flops", "1e21"])
    assert "tokens/param" in res.output


def test_fit_from_runs_writes_html(app: typer.Typer, db_path: Path, tmp_path: Path) -> None:
    for size in (1e8, 3e8, 1e9):
        with runcast.init(
            project="sizes",
            name=f"m{size:g}",
            db=db_path,
            config={"n_params": size, "tokens_per_step": 1e6},
        ) as run:
            for s in range(1000, 20001, 1000):
                run.log({"loss": float(law_loss(np.array(size), np.array(s * 1e6)))}, step=s)
    html = tmp_path / "scaling.html"
    res = CliRunner().invoke(
        app,
        [
            "scale",
            "fit",
            "--project",
            "sizes",
            "--db",
            str(db_path),
            "--boot",
            "10",
            "--html",
            str(html),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["params"]["beta"] == pytest.approx(0.37, abs=0.03)
    assert out["info"]["n_sizes"] == 3 and html.stat().st_size > 100_000


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["scale", "predict", "{law}", "-n", "abc", "-d", "1e9"], "--n must be numbers"),
        (["scale", "predict", "{law}", "-n", "1e9,2e9,3e9", "-d", "1e9,2e9"], "as many --n"),
        (["scale", "fit", "{table}", "--n-col", "nope"], "no column 'nope'"),
        # the command's options are named, not the library's arguments (n=, d=)
        (["scale", "fit", "{table}"], "name them with --n-col, --d-col and --loss-col"),
        (
            [
                "scale",
                "fit",
                "{table}",
                "--form",
                "kaplan",
                "--n-col",
                "params",
                "--d-col",
                "tokens",
            ],
            "Unknown form",
        ),
        (["scale", "optimal", "{missing}", "--flops", "1e20"], "not a saved scaling law"),
        (["scale", "fit", "--drop-first", "half", "--db", "{db}"], "--drop-first must be"),
        (
            ["scale", "fit", "{table}", "--n-col", "params", "--d-col", "tokens", "--fix", "a"],
            "--fix takes NAME=VALUE pairs",
        ),
        (
            ["scale", "fit", "{table}", "--n-col", "params", "--d-col", "tokens", "--fix", "k=1"],
            "no parameter 'k' to fix",
        ),
    ],
)
def test_errors_are_one_line(
    app: typer.Typer, table: Path, tmp_path: Path, args: list[str], msg: str
) -> None:
    law_path = tmp_path / "law.json"
    runner = CliRunner()
    runner.invoke(
        app,
        [
            "scale",
            "fit",
            str(table),
            "--n-col",
            "params",
            "--d-col",
            "tokens",
            "--boot",
            "0",
            "-o",
            str(law_path),
        ],
    )
    subs = {
        "{law}": str(law_path),
        "{table}": str(table),
        "{missing}": str(tmp_path / "x.json"),
        "{db}": str(tmp_path / "none.db"),
    }
    res = runner.invoke(app, [subs.get(a, a) for a in args])
    assert res.exit_code == 1
    assert msg in res.output and "Traceback" not in res.output


def test_fit_with_fixed_exponents(app: typer.Typer, table: Path) -> None:
    base = ["scale", "fit", str(table), "--n-col", "params", "--d-col", "tokens", "--boot", "5"]
    res = CliRunner().invoke(app, [*base, "--fix", "chinchilla", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    # Epoch AI's exponents are held; E, A and B are fitted to the table
    assert out["params"]["alpha"] == 0.3478 and out["params"]["beta"] == 0.3658
    assert out["info"]["fixed"] == {"alpha": 0.3478, "beta": 0.3658}
    res = CliRunner().invoke(app, [*base, "--fix", "alpha=0.35", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["params"]["alpha"] == 0.35
    assert out["params"]["beta"] == pytest.approx(0.37, abs=0.02)


def test_fit_from_runs_reports_overfitting_on_repeated_data(
    app: typer.Typer, db_path: Path
) -> None:
    # three sizes, each trained once on fresh data and once for 40 epochs of 5e8 tokens; the
    # 40-epoch runs' loss turns up by 0.1 (log) after 12 epochs
    for size in (1e8, 3e8, 1e9):
        for unique, epochs in ((2e10, 1.0), (5e8, 40.0)):
            tps = unique * epochs / 10
            with runcast.init(
                project="repeat",
                name=f"m{size:g}-{epochs:g}",
                db=db_path,
                config={"n_params": size, "tokens_per_step": tps, "unique_tokens": unique},
            ) as run:
                for s in range(1, 11):
                    d = s * tps
                    reps = max(d / unique - 1, 0.0)
                    dprime = min(d, unique) * (1 + 15 * (1 - np.exp(-reps / 15)))
                    rise = 0.1 * float(np.clip(np.log(d / unique / 12) / np.log(40 / 12), 0, 1))
                    run.log(
                        {"loss": float(law_loss(np.array(size), dprime)) * np.exp(rise)}, step=s
                    )
    args = ["scale", "fit", "--project", "repeat", "--db", str(db_path), "--boot", "0"]
    args += ["--fix", "chinchilla"]  # the exponents held: a quicker fit, the same rise
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())  # the console wraps long lines
    assert "runs of 40 epochs of repeated data ended 6.8% above their lowest loss" in said
