"""The torch adapter: exact LRs, exact resume, param groups, and sampling torch schedulers."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.optim import lr_scheduler as tls  # noqa: E402

from runcast import Schedule  # noqa: E402
from runcast.errors import RuncastWarning, ScheduleError  # noqa: E402

SPECS: list[dict[str, Any]] = [
    {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 7, "total": 60},
    {"kind": "wsd", "peak": 1e-3, "decay_fraction": 0.3, "decay_shape": "1-sqrt", "total": 60},
    {"kind": "cyclic", "peak": 1e-2, "period": 13, "period_mult": 1.5, "total": 60},
    {
        "kind": "multistep",
        "peak": 0.1,
        "milestone_fractions": [0.8, 0.9],
        "gamma": 0.316,
        "total": 60,
    },
]


def model_and_opt(lr: float = 0.5) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.AdamW(model.parameters(), lr=lr)


def train(model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any, n: int) -> list[float]:
    seen = []
    for _ in range(n):
        seen.append(opt.param_groups[0]["lr"])
        loss = model(torch.ones(2, 3)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return seen


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["kind"])
def test_lr_is_exactly_the_array(spec: dict[str, Any]) -> None:
    s = Schedule.from_spec(spec)
    model, opt = model_and_opt()
    seen = train(model, opt, s.to_torch(opt), 60)
    assert seen == s.array().tolist()  # bit-exact: the optimizer uses the schedule's own floats


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["kind"])
def test_state_dict_resume_is_exact(spec: dict[str, Any]) -> None:
    s = Schedule.from_spec(spec)
    model, opt = model_and_opt()
    straight = train(model, opt, s.to_torch(opt), 60)

    model, opt = model_and_opt()
    sched = s.to_torch(opt)
    first = train(model, opt, sched, 23)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)  # the state is plain data: loads without pickle

    model2, opt2 = model_and_opt()
    sched2 = s.to_torch(opt2)
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    model2.load_state_dict(model.state_dict())
    rest = train(model2, opt2, sched2, 37)
    assert first + rest == straight  # resuming mid-run continues exactly where it left off


def test_scheduler_state_alone_restores_the_lr() -> None:
    s = Schedule.from_spec(SPECS[0])
    model, opt = model_and_opt()
    sched = s.to_torch(opt)
    train(model, opt, sched, 30)
    _, opt2 = model_and_opt()
    sched2 = s.to_torch(opt2)
    sched2.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["lr"] == s.array()[30]  # no optimizer state needed for the LR


def test_resume_refuses_another_schedule() -> None:
    _, opt = model_and_opt()
    sched = Schedule.from_spec(SPECS[0]).to_torch(opt)
    other = Schedule.from_spec(SPECS[1]).to_torch(model_and_opt()[1])
    with pytest.raises(ScheduleError, match="different schedule"):
        other.load_state_dict(sched.state_dict())


@pytest.mark.parametrize(("relative", "ratio"), [(True, 0.1), (False, 1.0)])
def test_param_groups(relative: bool, ratio: float) -> None:
    w1, w2 = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([{"params": [w1], "lr": 1.0}, {"params": [w2], "lr": 0.1}], lr=1.0)
    s = Schedule.from_spec({"kind": "linear", "peak": 2e-3, "total": 10})
    sched = s.to_torch(opt, relative=relative)
    for t in range(10):
        lr0, lr1 = (g["lr"] for g in opt.param_groups)
        assert lr0 == s.array()[t]  # group 0 follows the schedule exactly
        assert lr1 == pytest.approx(ratio * lr0, rel=1e-15)  # others keep their ratio (or not)
        opt.step()
        sched.step()


def test_relative_groups_need_nonzero_group0() -> None:
    w1, w2 = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([{"params": [w1], "lr": 0.0}, {"params": [w2], "lr": 0.1}], lr=1.0)
    with pytest.raises(ScheduleError, match="relative=False"):
        Schedule.from_spec(SPECS[0]).to_torch(opt)


def test_past_the_end() -> None:
    model, opt = model_and_opt()
    rec = Schedule.from_array([3e-4, 2e-4, 1e-4])
    sched = rec.to_torch(opt)
    assert train(model, opt, sched, 2) == [3e-4, 2e-4]
    opt.step()
    with pytest.warns(RuncastWarning, match="past the recorded schedule"):
        sched.step()  # the usual extra step at the end of a loop: hold and say so
    assert opt.param_groups[0]["lr"] == 1e-4
    spec = Schedule.from_spec({"kind": "cosine", "peak": 1.0, "end": 0.1, "total": 5})
    model, opt = model_and_opt()
    sched = spec.to_torch(opt)
    train(model, opt, sched, 8)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)  # a spec holds its end LR


# --- sampling torch schedulers ------------------------------------------------------------------


def cosine_ref(t: int) -> float:
    return 1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * t / 50)) / 2


FACTORIES = {
    # torch scheduler factory, reference LR at step t (lr of the throwaway optimizer: 1e-3)
    "CosineAnnealingLR": (lambda o: tls.CosineAnnealingLR(o, T_max=50, eta_min=1e-5), cosine_ref),
    "StepLR": (lambda o: tls.StepLR(o, step_size=7, gamma=0.5), lambda t: 1e-3 * 0.5 ** (t // 7)),
    "LinearLR": (
        lambda o: tls.LinearLR(o, start_factor=0.1, total_iters=10),
        lambda t: 1e-3 * (0.1 + 0.9 * min(t, 10) / 10),
    ),
    "OneCycleLR": (
        lambda o: tls.OneCycleLR(o, max_lr=1e-2, total_steps=50, pct_start=0.3),
        None,
    ),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_from_torch_factory(name: str) -> None:
    factory, ref = FACTORIES[name]
    s = Schedule.from_torch(factory, total=50, lr=1e-3)
    lrs = s.array()
    if ref is not None:
        np.testing.assert_allclose(lrs, [ref(t) for t in range(50)], rtol=1e-9)
    else:  # OneCycle: up from max_lr/25 to max_lr at 30% then down to max_lr/25/1e4
        assert lrs[0] == pytest.approx(1e-2 / 25) and lrs.max() == pytest.approx(1e-2)
        assert int(np.argmax(lrs)) == 14 and lrs[-1] == pytest.approx(1e-2 / 25 / 1e4)


def test_from_torch_matches_runcast_cosine() -> None:
    s = Schedule.from_torch(lambda o: tls.CosineAnnealingLR(o, T_max=50, eta_min=1e-5), 50, lr=1e-3)
    mine = Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "end": 1e-5, "total": 50})
    np.testing.assert_allclose(s.array(), mine.array(), rtol=1e-9)  # same schedule, two sources


def test_from_torch_instance_leaves_the_users_objects_alone() -> None:
    model, opt = model_and_opt(lr=1e-3)
    train(model, opt, tls.ConstantLR(opt, factor=1.0, total_iters=1), 2)  # some optimizer state
    sched = tls.SequentialLR(
        opt,
        [tls.LinearLR(opt, start_factor=0.01, total_iters=5), tls.CosineAnnealingLR(opt, T_max=20)],
        milestones=[5],
    )
    before = ([p.detach().clone() for p in model.parameters()], opt.state_dict(), sched.last_epoch)
    lrs = Schedule.from_torch(sched, total=25).array()
    assert lrs[0] == pytest.approx(1e-5) and lrs[5] == pytest.approx(1e-3)
    assert sched.last_epoch == before[2] and opt.param_groups[0]["lr"] == pytest.approx(1e-5)
    for p, q in zip(model.parameters(), before[0], strict=True):
        assert torch.equal(p, q)  # the user's weights are untouched
    assert str(opt.state_dict()) == str(before[1])  # and so is the optimizer's state


def test_round_trip_through_torch() -> None:
    s = Schedule.from_spec(SPECS[2])
    back = Schedule.from_torch(lambda o: s.to_torch(o), total=60)
    np.testing.assert_array_equal(back.array(), s.array())


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda o: tls.ReduceLROnPlateau(o), "depends on the metric"),
        ("stepped", "already been stepped"),
        (lambda o: 3, "returned int"),
        (12, "got int"),
    ],
)
def test_from_torch_errors(make: Any, match: str) -> None:
    _, opt = model_and_opt()
    arg = make
    if make == "stepped":
        arg = tls.StepLR(opt, step_size=2)
        opt.step()
        arg.step()
    elif callable(make) and isinstance(make(opt), tls.ReduceLROnPlateau):
        arg = make(opt)
    with pytest.raises(ScheduleError, match=match):
        Schedule.from_torch(arg, total=10)
