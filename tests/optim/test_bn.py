"""recalibrate_bn: BatchNorm statistics at x, modes and weights left as found, bad input."""

from __future__ import annotations

import pytest
import schedulefree
import torch

from runcast.errors import InvalidInputError
from runcast.optim import ScheduleFreePlus, recalibrate_bn


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1)
    )


def _train(model: torch.nn.Module, opt: object, n: int = 20) -> None:
    g = torch.Generator().manual_seed(2)
    for _ in range(n):
        x = torch.randn(32, 3, generator=g) * 2 + 1
        loss = (model(x) - x[:, :1]).pow(2).mean()
        opt.zero_grad()  # type: ignore[attr-defined]
        loss.backward()
        if isinstance(opt, ScheduleFreePlus):
            opt.step(loss=loss)
        else:
            opt.step()  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["schedulefree", "sfplus"])
def test_statistics_are_those_of_x_exactly(kind: str) -> None:
    model = _model()
    opt = (
        schedulefree.AdamWScheduleFree(model.parameters(), lr=0.05)
        if kind == "schedulefree"
        else ScheduleFreePlus(model.parameters(), warmup_steps=2, warm_start_steps=2)
    )
    opt.train()
    _train(model, opt)
    y = model[0].weight.detach().clone()
    batches = [torch.randn(16, 3) * 2 + 1 for _ in range(5)]
    used = recalibrate_bn(model, [(b, None) for b in batches], opt)
    assert used == 5
    assert opt.param_groups[0]["train_mode"] and model.training  # modes as found
    # the weights too (y is rebuilt from x and z: exact for ScheduleFree+, to rounding for
    # the schedulefree package)
    assert torch.allclose(model[0].weight.detach(), y, rtol=0, atol=1e-6)
    opt.eval()
    with torch.no_grad():
        h = model[0](torch.cat(batches))
    # exact mean and (unbiased) variance of all batches at x, not an EMA at y
    assert torch.allclose(model[1].running_mean, h.mean(0), atol=1e-5)
    per_batch = torch.stack([model[0](b).detach().var(0, unbiased=True) for b in batches])
    assert torch.allclose(model[1].running_var, per_batch.mean(0), atol=1e-4)
    assert model[1].momentum == 0.1  # restored


def test_bad_input_keeps_the_statistics() -> None:
    model = _model()
    model.train()
    model(torch.randn(8, 3))
    before = model[1].running_mean.clone()
    with pytest.raises(InvalidInputError, match="no batches"):
        recalibrate_bn(model, [])
    assert torch.equal(model[1].running_mean, before)
    with pytest.raises(RuntimeError):
        recalibrate_bn(model, [torch.randn(4, 7)])  # wrong width: the model's own error
    assert torch.equal(model[1].running_mean, before)
    with pytest.raises(InvalidInputError, match="max_batches"):
        recalibrate_bn(model, [torch.randn(4, 3)], max_batches=0)
    assert recalibrate_bn(torch.nn.Linear(2, 2), [torch.randn(4, 2)]) == 0  # no BatchNorm
    assert recalibrate_bn(model, (torch.randn(4, 3) for _ in range(9)), max_batches=3) == 3
