"""TrainingMonitor: per-step signals equal direct computation, stay on device, reach the store."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import runcast
from runcast.errors import InvalidInputError
from runcast.integrations.torch import TrainingMonitor

nn = torch.nn


def _step(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    loss = model(x).pow(2).mean()
    loss.backward()
    return loss


@pytest.mark.parametrize(
    ("model", "x", "expected"),
    [
        # post-norm: Linear -> LayerNorm makes the Linear's weight scale-invariant
        (
            nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1)),
            torch.randn(5, 4),
            ["0.weight"],
        ),
        # pre-norm: LayerNorm -> Linear does not
        (nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 1)), torch.randn(5, 4), []),
        # conv -> batch norm, and an activation in between breaks it
        (
            nn.Sequential(
                nn.Conv2d(1, 2, 3),
                nn.BatchNorm2d(2),
                nn.Conv2d(2, 2, 3),
                nn.ReLU(),
                nn.BatchNorm2d(2),
            ),
            torch.randn(2, 1, 7, 7),
            ["0.weight"],
        ),
    ],
)
def test_scale_invariant_weights_found_by_tracing(
    model: nn.Module, x: torch.Tensor, expected: list[str]
) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = TrainingMonitor(model, opt)
    _step(model, x)
    m = mon.record(0)
    assert mon.scale_invariant_names == expected
    assert ("eff_lr" in m) == bool(expected)


def test_numbers_match_direct_computation() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    opt = torch.optim.SGD(
        [{"params": model[0].parameters(), "lr": 0.2}, {"params": model[1:].parameters()}], lr=0.1
    )
    mon = TrainingMonitor(model, opt)
    loss = _step(model, torch.randn(16, 4))
    m = mon.record(3, loss)
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.allclose(m["grad_norm"], grads.norm(), rtol=1e-6)
    assert torch.allclose(m["param_norm"], params.norm(), rtol=1e-6)
    # the scale-invariant weight sits in the first param group (lr 0.2)
    assert torch.allclose(m["eff_lr"], 0.2 / model[0].weight.detach().norm() ** 2, rtol=1e-6)
    assert m["lr"] == 0.2  # "lr" is the first param group's LR (a Python float, no sync)
    for key in ("loss", "grad_norm", "param_norm", "eff_lr"):
        assert isinstance(m[key], torch.Tensor) and m[key].dim() == 0  # no .item(): no sync


def test_logs_every_n_to_the_store(db_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3), nn.Linear(3, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with runcast.init(project="t", db=db_path) as run:
        mon = TrainingMonitor(model, opt, run, every=2)
        for step in range(10):
            opt.zero_grad()
            loss = _step(model, torch.randn(4, 3))
            mon.record(step, loss)
            opt.step()
    store = runcast.open_store(db_path)
    (info,) = store.runs(project="t")
    assert store.curve(info.id, "grad_norm").step.tolist() == [0, 2, 4, 6, 8]  # every=2
    assert set(store.keys(info.id)) >= {"loss", "lr", "grad_norm", "param_norm", "eff_lr"}


def test_explicit_scale_invariant_and_bad_every() -> None:
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    mon = TrainingMonitor(model, opt, scale_invariant=[model.weight])
    _step(model, torch.randn(2, 3))
    assert mon.scale_invariant_names == ["weight"]
    assert torch.allclose(mon.record(0)["eff_lr"], 0.5 / model.weight.detach().norm() ** 2)
    with pytest.raises(InvalidInputError, match="every"):
        TrainingMonitor(model, opt, every=0)


def test_a_frozen_model_and_a_loss_that_is_not_a_number_are_clear_errors() -> None:
    frozen = nn.Linear(3, 1).requires_grad_(False)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(InvalidInputError, match="no trainable parameters"):
        TrainingMonitor(frozen, opt)
    model = nn.Linear(3, 1)
    mon = TrainingMonitor(model, torch.optim.SGD(model.parameters(), lr=0.1))
    _step(model, torch.randn(2, 3))
    with pytest.raises(InvalidInputError, match=r"loss must be a tensor or a number.*str"):
        mon.record(0, loss="0.5 nats")
    assert mon.record(1, loss=0.5)["loss"] == 0.5  # a plain float is fine


def test_a_zero_weight_has_no_effective_lr_yet() -> None:
    # a zero-initialised weight before a norm: LR / 0 is not an effective LR; the mean is over
    # the others, and with none left it is NaN, never inf
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    opt = torch.optim.SGD([*a.parameters(), *b.parameters()], lr=0.2)
    with torch.no_grad():
        a.weight.zero_()
    mon = TrainingMonitor(a, opt, scale_invariant=[a.weight, b.weight])
    eff = mon.record(0)["eff_lr"]
    assert torch.allclose(eff, 0.2 / b.weight.detach().norm() ** 2)
    only_zero = TrainingMonitor(a, opt, scale_invariant=[a.weight])
    assert torch.isnan(only_zero.record(0)["eff_lr"])
