"""checkpoint/restore: x in the saved model, and an exact resume in either mode."""

from __future__ import annotations

import pytest
import schedulefree
import torch

from runcast.errors import InvalidInputError
from runcast.optim import ScheduleFreePlus, checkpoint, restore


def _setup(kind: str) -> tuple[torch.nn.Module, object]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    if kind == "schedulefree":
        opt: object = schedulefree.AdamWScheduleFree(model.parameters(), lr=0.02, warmup_steps=3)
    else:
        opt = ScheduleFreePlus(model.parameters(), warmup_steps=3)
    opt.train()  # type: ignore[attr-defined]
    return model, opt


def _steps(model: torch.nn.Module, opt: object, start: int, stop: int) -> None:
    for i in range(start, stop):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(16, 4, generator=g)
        loss = (model(x) - x.sum(1, keepdim=True).tanh()).pow(2).mean()
        opt.zero_grad()  # type: ignore[attr-defined]
        loss.backward()
        if isinstance(opt, ScheduleFreePlus):
            opt.step(loss=loss)
        else:
            opt.step()  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["schedulefree", "sfplus"])
def test_checkpoint_holds_x_and_resume_is_exact(kind: str) -> None:
    full_model, full_opt = _setup(kind)
    _steps(full_model, full_opt, 0, 40)

    model, opt = _setup(kind)
    _steps(model, opt, 0, 20)
    ckpt = checkpoint(model, opt, step=20)
    assert opt.param_groups[0]["train_mode"]  # type: ignore[attr-defined]
    opt.eval()  # type: ignore[attr-defined]
    x = {k: v.clone() for k, v in model.state_dict().items()}
    opt.train()  # type: ignore[attr-defined]
    assert all(torch.equal(ckpt["model"][k], x[k]) for k in x)  # x, not y
    assert not torch.equal(ckpt["model"]["0.weight"], model[0].weight.detach())

    resumed_model, resumed_opt = _setup(kind)
    assert restore(ckpt, resumed_model, resumed_opt) == {"step": 20}
    assert resumed_opt.param_groups[0]["train_mode"]  # type: ignore[attr-defined]
    _steps(resumed_model, resumed_opt, 20, 40)
    for a, b in zip(full_model.parameters(), resumed_model.parameters(), strict=True):
        # bit-exact for ScheduleFree+; the schedulefree package rebuilds y from x in float
        # arithmetic, so its resume is exact to rounding
        tol = 0.0 if kind == "sfplus" else 1e-6
        assert torch.allclose(a, b, rtol=0, atol=tol)


def test_restore_refuses_what_it_cannot_load() -> None:
    model, opt = _setup("sfplus")
    with pytest.raises(InvalidInputError, match="checkpoint"):
        restore({"weights": 1}, model, opt)
    ckpt = checkpoint(model, opt)
    with pytest.raises(InvalidInputError, match="1 optimizer state"):
        restore(ckpt, model)
