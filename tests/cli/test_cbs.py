"""``runcast cbs``: the branched CBS measurement from a training script and a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import runcast
from runcast.cli import app

torch = pytest.importorskip("torch")

SCRIPT = """
import torch
BATCH_SIZE = 2

def build():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.05)

def train(model, opt, batch_size, steps):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(steps):
        x = torch.randn(batch_size, 3, generator=g)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step(); out.append(loss.item())
    return out
"""


def _setup(tmp_path: Path, with_run: bool) -> tuple[Path, Path, str | None]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    rid = None
    if with_run:
        with runcast.init(project="c", name="base", db=tmp_path / "r.db") as run:
            for s in range(10):
                run.log({"loss": 1.0}, step=s)
        rid = run.id
    ckpt = tmp_path / "ckpt.pt"
    torch.save(
        {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 9, "run": rid}, ckpt
    )
    return script, ckpt, rid


def test_cbs_command_prints_cost_then_the_interval_and_records(tmp_path: Path) -> None:
    script, ckpt, rid = _setup(tmp_path, with_run=True)
    res = CliRunner().invoke(
        app,
        [
            "cbs",
            str(script),
            str(ckpt),
            "--ks",
            "1,2,4",
            "--window",
            "64",
            "--rule",
            "linear",
            "--db",
            str(tmp_path / "r.db"),
        ],
    )
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    # the cost comes first, before any branch trains
    assert out.index("measure_cbs: 3 branches") < out.index("CBS: at least")
    assert "of 64 examples each: 192 examples" in out
    with runcast.open_store(tmp_path / "r.db") as store:
        kids = [r for r in store.runs("c") if r.parent_id == rid]
        assert len(kids) == 3 and {r.fork_step for r in kids} == {10}
        assert store.curve(rid, "cbs_lo").step.tolist() == [9]


def test_cbs_command_errors(tmp_path: Path) -> None:
    script, ckpt, _ = _setup(tmp_path, with_run=False)
    res = CliRunner().invoke(app, ["cbs", str(tmp_path / "nope.py"), str(ckpt)])
    assert res.exit_code == 1 and "does not exist" in res.output
    bad = tmp_path / "bad.py"
    bad.write_text("def build(): pass\n")
    res = CliRunner().invoke(app, ["cbs", str(bad), str(ckpt), "--window", "64"])
    assert res.exit_code == 1 and "must define train()" in res.output
    res = CliRunner().invoke(app, ["cbs", str(script), str(ckpt), "--ks", "1,x"])
    assert res.exit_code == 1 and "--ks must be whole numbers" in res.output
    res = CliRunner().invoke(app, ["cbs", str(script), str(ckpt)])  # no window, no run size
    assert res.exit_code == 1 and "run_examples" in res.output


def test_example_script_runs(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "docs" / "cbs_example.py"
    import importlib.util

    spec = importlib.util.spec_from_file_location("cbs_example", example)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model, opt = mod.build()
    mod.train(model, opt, batch_size=4, steps=5)
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "c.pt")
    res = CliRunner().invoke(
        app, ["cbs", str(example), str(tmp_path / "c.pt"), "--ks", "1,2", "--window", "16"]
    )
    assert res.exit_code == 0, res.output
    assert "CBS: at least" in res.output
