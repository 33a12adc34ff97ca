"""measure_cbs: the branching rule, the LR rule, restoring the checkpoint, and the store."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import runcast
from runcast.errors import InvalidInputError
from runcast.steer import measure_cbs

torch = pytest.importorskip("torch")


def _setup() -> tuple[Any, Any]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    # a step taken: the optimizer has state that a branch must not leak into the next
    model(torch.randn(4, 3)).pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
    return model, opt


class _Scripted:
    """A train callable whose loss depends on the batch size only: CBS known by design."""

    def __init__(self, cbs: int) -> None:
        self.cbs = cbs
        self.seen: list[tuple[int, int, float]] = []

    def __call__(self, model: Any, opt: Any, batch_size: int, steps: int) -> list[float]:
        self.seen.append((batch_size, steps, opt.param_groups[0]["lr"]))
        with torch.no_grad():
            model.weight.add_(1.0)  # the branch changes the model: it must be restored
        # 0.02 worse per doubling past the CBS, plus noise below the tolerance
        end = 2.0 + 0.02 * max(0.0, math.log2(batch_size / self.cbs)) + 0.003 * (steps % 2)
        return [end] * steps


def test_interval_brackets_a_known_cbs_and_restores_the_checkpoint() -> None:
    model, opt = _setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt_before = opt.state_dict()["state"][0]["exp_avg"].clone()
    train = _Scripted(cbs=32)
    lines: list[str] = []
    res = measure_cbs(model, opt, train, batch_size=8, window=1024, echo=lines.append)
    # 8, 16, 32 end at 2.0 (+ noise < tolerance); 64 is 0.02 worse than the best: fails
    assert res.interval == (32, 64)
    assert [b.passed for b in res.branches] == [True, True, True, False, False]
    assert [b.steps for b in res.branches] == [128, 64, 32, 16, 8]
    # Adam: the LR grows as sqrt(k)
    assert [round(lr, 6) for _, _, lr in train.seen] == [0.01, 0.014142, 0.02, 0.028284, 0.04]
    assert res.cost == 5 * 1024
    assert lines == [
        "measure_cbs: 5 branches (batch 8..128, 128..8 steps) of 1,024 examples each: "
        "5,120 examples."
    ]
    # the checkpoint is back: weights, optimizer moments and LR
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], opt_before)
    assert opt.param_groups[0]["lr"] == 0.01


def test_all_passing_gives_an_open_interval_and_sgd_scales_linearly() -> None:
    model, _ = _setup()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train = _Scripted(cbs=10_000)
    res = measure_cbs(
        model, opt, train, batch_size=4, ks=(1, 2, 4), window=64, rule="linear", echo=None
    )
    assert res.interval == (16, None)
    assert [lr for _, _, lr in train.seen] == pytest.approx([0.1, 0.2, 0.4])


def test_default_window_is_a_fixed_share_of_the_run() -> None:
    model, opt = _setup()
    lines: list[str] = []
    res = measure_cbs(
        model, opt, _Scripted(64), batch_size=8, run_examples=200_000, echo=lines.append
    )
    assert res.window == 1800  # 0.9% of the run
    assert res.cost / 200_000 <= 0.05  # the documented cost bound
    assert lines[0].endswith("4.5% of the run's 200,000.")


def test_ema_of_the_losses_is_compared() -> None:
    model, opt = _setup()

    def train(model: Any, opt: Any, batch_size: int, steps: int) -> list[float]:
        # the larger batch ends on a lucky last step; smoothed, it is worse
        return [1.0] * (steps - 2) + ([1.1, 1.0] if batch_size > 4 else [1.0, 1.0])

    res = measure_cbs(model, opt, train, batch_size=4, ks=(1, 2), window=32, echo=None)
    assert res.branches[1].loss == pytest.approx(1.025)  # 0.5 * (0.5*1 + 0.5*1.1) + 0.5 * 1
    assert res.interval == (4, 8)
    ev = measure_cbs(
        model, opt, train, batch_size=4, ks=(1, 2), window=32, echo=None, evaluate=lambda m: 3.0
    )
    assert ev.interval == (8, None) and ev.branches[1].loss == 3.0


def test_real_training_the_larger_batch_passes_on_noiseless_data() -> None:
    torch.manual_seed(1)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(512, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

    def train(model: Any, opt: Any, batch_size: int, steps: int) -> list[float]:
        g = torch.Generator().manual_seed(0)
        out = []
        for _ in range(steps):
            idx = torch.randint(0, 512, (batch_size,), generator=g)
            loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    res = measure_cbs(
        model, opt, train, batch_size=2, ks=(1, 2, 4, 8, 64), window=256, rule="linear", echo=None
    )
    # linear scaling holds while the LR is stable (k <= 8) and breaks at LR 3.2 (diverges)
    assert res.lo == 16 and res.hi == 128
    assert res.branches[-1].loss > 10 * res.branches[0].loss


def test_branches_are_recorded_as_forks_of_the_checkpoint_run(tmp_path: Path) -> None:
    model, opt = _setup()
    db = tmp_path / "r.db"
    run = runcast.init(project="p", name="base", db=db)
    for s in range(100):
        run.log({"loss": 3.0 - s / 100}, step=s)
    res = measure_cbs(
        model,
        opt,
        _Scripted(16),
        batch_size=8,
        ks=(1, 2, 4),
        window=256,
        run=run,
        step=99,
        echo=None,
    )
    run.finish()
    with runcast.open_store(db) as store:
        kids = {r.name: r for r in store.runs("p") if r.parent_id == run.id}
        assert sorted(kids) == ["base/cbs@99/k1", "base/cbs@99/k2", "base/cbs@99/k4"]
        k2 = kids["base/cbs@99/k2"]
        assert k2.fork_step == 100 and k2.config["batch_size"] == 16 and k2.config["passed"]
        loss = store.curve(k2.id, "loss")
        assert loss.step.tolist() == list(range(100, 116))  # 16 steps after the checkpoint
        assert loss.value.tolist() == pytest.approx(list(res.branches[1].losses))
        assert store.curve(run.id, "cbs_lo").value.tolist() == [16.0]
        assert store.curve(run.id, "cbs_hi").step.tolist() == [99]
        assert store.curve(run.id, "cbs_hi").value.tolist() == [32.0]
        assert store.curve(run.id, "loss").step.tolist() == list(range(100))  # untouched
    assert {b.run_id for b in res.branches} == {r.id for r in kids.values()}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ks": (2, 1)}, "ks must be"),
        ({"ks": (1,)}, "ks must be"),
        ({"ks": (1, 2.5)}, "ks must be"),
        ({"rule": "adam"}, "rule must be"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"window": None}, "Give window= .* or run_examples="),
        ({"window": 10}, r"must hold at least one step of the largest batch \(128\)"),
        ({"ema": 1.0}, "ema must be"),
        ({"tolerance": -0.1}, "tolerance must be"),
        ({"run": "abc"}, "needs the checkpoint's step="),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    model, opt = _setup()
    args: dict[str, Any] = {"batch_size": 8, "window": 1024, "echo": None, **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        measure_cbs(model, opt, _Scripted(8), **args)


def test_train_returning_the_wrong_losses_is_an_error_and_restores() -> None:
    model, opt = _setup()
    before = model.weight.detach().clone()

    def bad(model: Any, opt: Any, batch_size: int, steps: int) -> list[float]:
        with torch.no_grad():
            model.weight.mul_(3)
        return [float("nan")] * steps

    with pytest.raises(InvalidInputError, match="must return 32 finite per-step losses"):
        measure_cbs(model, opt, bad, batch_size=2, ks=(1, 2), window=64, echo=None)
    assert torch.equal(model.weight, before)
