"""EarlyStopping in a plain PyTorch loop: a real MLP that overfits 24 noisy points."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import runcast
from runcast.cli import app
from runcast.errors import InvalidInputError
from runcast.integrations.torch import BestWeights, EarlyStopping
from runcast.steer import EarlyStopper


def overfitting_task(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """y = x0 + noise: 24 training points a wide MLP memorises, 256 held-out points."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(24, 8, generator=g)
    y = x[:, :1] + 0.7 * torch.randn(24, 1, generator=g)
    xv = torch.randn(256, 8, generator=g)
    yv = xv[:, :1] + 0.7 * torch.randn(256, 1, generator=g)
    return x, y, xv, yv


def mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 128), torch.nn.Tanh(), torch.nn.Linear(128, 1))


def val_loss(model: torch.nn.Module, xv: torch.Tensor, yv: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(model(xv), yv))


def train(es: EarlyStopping, model: torch.nn.Module, steps: int = 600) -> int:
    torch.set_num_threads(1)
    x, y, xv, yv = overfitting_task()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        es.train_step(step, loss.item())
        if step % 10 == 9 and es.evaluate(step, val_loss(model, xv, yv)):
            return step
    return steps


def test_stops_an_overfitting_run_and_restores_the_best_weights() -> None:
    model = mlp()
    es = EarlyStopping(model, EarlyStopper(window=3))
    stopped_at = train(es, model)
    # the validation loss bottoms out early and rises as the MLP memorises: stopped well
    # before the 600 steps, on a turn, not on one bad evaluation
    assert stopped_at < 300 and es.decision is not None
    assert es.decision.reason.startswith("validation turned")
    assert es.best_step is not None and es.best_step < stopped_at
    _, _, xv, yv = overfitting_task()
    final = val_loss(model, xv, yv)
    assert es.restore() == es.best_step
    # the restored weights give exactly the best validation loss, better than where it stopped
    assert val_loss(model, xv, yv) == pytest.approx(es.stopper.best_value, rel=1e-6)
    assert val_loss(model, xv, yv) < final


def test_state_dict_carries_the_rule_and_the_weights() -> None:
    model = mlp()
    es = EarlyStopping(model, EarlyStopper(window=3))
    train(es, model, steps=120)
    state = es.state_dict()
    other = mlp(seed=1)
    again = EarlyStopping(other, EarlyStopper(window=3))
    again.load_state_dict(state)
    assert again.best_step == es.best_step and again.restore() == es.best_step
    _, _, xv, yv = overfitting_task()
    assert val_loss(other, xv, yv) == pytest.approx(es.stopper.best_value, rel=1e-6)


def test_best_weights_copy_is_independent_of_training() -> None:
    m = torch.nn.Linear(2, 1)
    original = m.weight.detach().clone()
    keep = BestWeights()
    keep.keep(m, step=3)
    with torch.no_grad():
        m.weight.add_(1.0)  # training moves the weights in place
    # the kept copy is the weights of step 3, not a view of the trained ones
    assert torch.equal(keep.state["weight"], original)  # type: ignore[index]
    assert keep.restore(m) == 3 and torch.equal(m.weight.detach(), original)
    assert BestWeights().restore(m) is None  # nothing kept yet


def test_refuses_what_is_not_a_module() -> None:
    with pytest.raises(InvalidInputError, match=r"torch\.nn\.Module"):
        EarlyStopping([1, 2, 3])  # type: ignore[arg-type]


def test_the_run_records_the_best_step_and_runs_show_prints_it(tmp_path: Path) -> None:
    db = tmp_path / "es.db"
    run = runcast.init(project="es", name="mlp", db=db)
    model = mlp()
    es = EarlyStopping(model, EarlyStopper(window=3), run=run, metric="val_loss")
    stopped_at = train(es, model)
    run.finish()
    assert es.decision is not None and es.best_step is not None
    entry = runcast.open_store(db).run(run.id).config["runcast_best"]
    # the store holds the step whose weights to restore, its value, and why the run stopped
    assert entry["metric"] == "val_loss" and entry["mode"] == "min"
    assert entry["step"] == es.best_step and entry["value"] == es.stopper.best_value
    assert entry["stop_step"] == stopped_at and entry["stop_reason"] == es.decision.reason
    res = CliRunner().invoke(app, ["runs", "show", "mlp", "--db", str(db)], terminal_width=400)
    assert res.exit_code == 0, res.output
    assert f"best val_loss {es.stopper.best_value:.6g} at step {es.best_step}" in res.output
    assert f"early-stopped at step {stopped_at}: validation turned" in res.output
