"""Schedule-free detection and eval_mode: the wrong mode really gives different weights."""

from __future__ import annotations

import pytest
import torch

schedulefree = pytest.importorskip("schedulefree")
from lightning.pytorch.core.optimizer import LightningOptimizer  # noqa: E402

from runcast.integrations import (  # noqa: E402
    eval_mode,
    in_train_mode,
    is_schedule_free,
    set_mode,
    unwrap_optimizer,
)


def _trained(
    cls: type = schedulefree.AdamWScheduleFree,
) -> tuple[torch.nn.Linear, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = cls(model.parameters(), lr=0.05)
    opt.train()
    x = torch.randn(16, 3)
    for _ in range(10):  # RAdam rectification leaves the first steps without an update
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    return model, opt


@pytest.mark.parametrize(
    "cls",
    [schedulefree.AdamWScheduleFree, schedulefree.SGDScheduleFree, schedulefree.RAdamScheduleFree],
)
def test_eval_mode_swaps_weights_and_restores(cls: type) -> None:
    model, opt = _trained(cls)
    y = model.weight.detach().clone()
    with eval_mode(opt):
        assert in_train_mode(opt) is False
        x = model.weight.detach().clone()
    assert in_train_mode(opt) is True
    assert not torch.allclose(x, y, atol=1e-5)  # evaluating in train mode would use y: wrong
    assert torch.allclose(model.weight, y, atol=1e-6)  # back to the gradient point
    # x is the schedule-free average: x = (y - (1 - b1) z) / b1
    b1 = opt.param_groups[0].get("betas", (opt.param_groups[0].get("momentum"),))[0]
    z = opt.state[model.weight]["z"]
    assert torch.allclose(x, (y - (1 - b1) * z) / b1, atol=1e-5)


def test_eval_mode_keeps_eval_if_already_eval_and_nests() -> None:
    _, opt = _trained()
    opt.eval()
    with eval_mode(opt), eval_mode(opt):
        pass
    assert in_train_mode(opt) is False  # it was in eval before: stays there
    opt.train()
    with eval_mode(opt):
        with eval_mode(opt):
            assert in_train_mode(opt) is False
        assert in_train_mode(opt) is False  # the inner block does not flip the outer one
    assert in_train_mode(opt) is True


def test_detection_through_wrappers_and_plain_optimizers() -> None:
    _, opt = _trained()
    wrapped = LightningOptimizer(opt)
    assert unwrap_optimizer(wrapped) is opt
    assert is_schedule_free(wrapped) and in_train_mode(wrapped) is True
    assert set_mode(wrapped, train=False) is True and in_train_mode(opt) is False
    sgd = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    assert not is_schedule_free(sgd) and in_train_mode(sgd) is None and set_mode(sgd, True) is None


def test_eval_mode_restores_on_error() -> None:
    _, opt = _trained()
    with pytest.raises(RuntimeError), eval_mode(opt):
        raise RuntimeError("evaluation failed")
    assert in_train_mode(opt) is True  # training can go on after a failed evaluation
