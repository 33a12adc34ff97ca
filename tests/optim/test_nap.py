"""NormProjector: which weights it finds, that it holds their norm, its effective LR, its state."""

from __future__ import annotations

import pytest
import torch

from runcast.errors import InvalidInputError
from runcast.optim import NormProjector


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 16),  # feeds LayerNorm: projected
        torch.nn.LayerNorm(16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 16),  # feeds ReLU: left alone
        torch.nn.ReLU(),
        torch.nn.Linear(16, 1),
    )


def _steps(model: torch.nn.Module, opt: torch.optim.Optimizer, nap: NormProjector | None, n: int):
    g = torch.Generator().manual_seed(1)
    for _ in range(n):
        x = torch.randn(32, 4, generator=g)
        opt.zero_grad()
        (model(x) - x[:, :1]).pow(2).mean().backward()
        opt.step()
        if nap is not None:
            nap.step()


def test_projects_only_weights_feeding_a_norm_back_to_their_start_norm() -> None:
    model = _model()
    start = {n: float(p.detach().norm()) for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.0)
    nap = NormProjector(model, opt)
    _steps(model, opt, nap, 30)
    assert nap.names == ["0.weight"]
    assert float(model[0].weight.detach().norm()) == pytest.approx(start["0.weight"], rel=1e-6)
    # the control: without projection that norm drifts (so the test can fail), and the weight
    # NaP leaves alone drifts too
    assert abs(float(model[3].weight.norm()) / start["3.weight"] - 1) > 0.01
    free = _model()
    adam = torch.optim.AdamW(free.parameters(), lr=0.05, weight_decay=0.0)
    _steps(free, adam, None, 30)
    assert abs(float(free[0].weight.norm()) / start["0.weight"] - 1) > 0.01


def test_given_norm_and_effective_lr_per_layer() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    nap = NormProjector(model, opt, norm=2.0)
    _steps(model, opt, nap, 1)
    assert float(model[0].weight.norm()) == pytest.approx(2.0, rel=1e-6)
    assert nap.metrics() == {"nap/eff_lr/0.weight": pytest.approx(0.1 / 4.0)}
    sched.step()  # the effective LR follows the schedule exactly: lr / norm**2
    assert nap.metrics()["nap/eff_lr/0.weight"] == pytest.approx(0.05 / 4.0)
    assert NormProjector(model).metrics() == {}  # no optimizer, no LR to report


def test_state_round_trip_and_errors() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    nap = NormProjector(model, opt)
    with pytest.raises(InvalidInputError, match="first forward"):
        nap.step()
    _steps(model, opt, nap, 2)
    state = nap.state_dict()
    other = NormProjector(model, opt)
    other.load_state_dict(state)
    assert other.names == ["0.weight"] and other.state_dict() == state
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    other.step()
    assert float(model[0].weight.norm()) == pytest.approx(state["targets"]["0.weight"], rel=1e-6)
    with pytest.raises(InvalidInputError, match="does not have"):
        other.load_state_dict({"targets": {"nope.weight": 1.0}})
    with pytest.raises(InvalidInputError, match="positive"):
        NormProjector(model, norm=-1.0)
    with pytest.raises(InvalidInputError, match=r"nn\.Module"):
        NormProjector(object())
