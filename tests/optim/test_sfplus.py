"""ScheduleFreePlus: the fast path against the plain one, the step-size rule, modes, resume, DDP."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from runcast.errors import InvalidInputError
from runcast.integrations import eval_mode, in_train_mode, is_schedule_free
from runcast.optim import ScheduleFreePlus


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 12), torch.nn.LayerNorm(12), torch.nn.GELU(), torch.nn.Linear(12, 3)
    )


def _groups(model: torch.nn.Module) -> list[dict[str, object]]:
    # two groups with their own multiplier and decay, so the group handling is compared too
    first, second = list(model[:2].parameters()), list(model[3].parameters())
    return [{"params": first, "weight_decay": 0.1}, {"params": second, "lr": 0.5}]


def _batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randn(16, 5, generator=g)
        out.append((x, torch.stack([x[:, 0] * x[:, 1], x[:, 2].sin(), x[:, 3:].sum(1)], 1)))
    return out


def _train(model: torch.nn.Module, opt: ScheduleFreePlus, batches: list, switch: bool = False):
    for i, (x, y) in enumerate(batches):
        loss = (model(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step(loss=loss)
        if switch and i % 37 == 0:  # evaluate now and then: eval/train round trips
            opt.eval()
            opt.train()


def test_fast_and_reference_agree_step_by_step_for_200_steps() -> None:
    kw = {"warmup_steps": 20, "anneal_steps": 150, "warm_start_steps": 30, "r": 0.5}
    fast_model, ref_model = _model(), _model()
    fast = ScheduleFreePlus(_groups(fast_model), foreach=True, **kw)
    ref = ScheduleFreePlus(_groups(ref_model), foreach=False, **kw)
    fast.train()
    ref.train()
    worst = 0.0
    for i, (x, y) in enumerate(_batches(200)):
        for model, opt in ((fast_model, fast), (ref_model, ref)):
            loss = (model(x) - y).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step(loss=loss)
        for pf, pr in zip(fast_model.parameters(), ref_model.parameters(), strict=True):
            # y (the parameters) and the state x, z, moments, at every one of the 200 steps
            worst = max(worst, float((pf - pr).detach().abs().max()))
            for key in ("z", "x", "exp_avg", "exp_avg_sq"):
                sf, sr = fast.state[pf][key], ref.state[pr][key]
                assert torch.allclose(sf, sr, rtol=1e-6, atol=1e-6), (i, key)
        # the two sum in another order (dot products vs g * (z - x)): float32 rounding, which
        # is relative to the loss, not to the step (small when loss and <g, z - x> cancel)
        assert fast.metrics()["sfp/step_size"] == pytest.approx(
            ref.metrics()["sfp/step_size"], abs=1e-6
        )
    assert worst < 1e-6
    assert fast.global_state["step"] == 200
    # the run did move: a comparison of two frozen models would prove nothing
    assert float((fast_model[0].weight - _model()[0].weight).detach().abs().max()) > 1e-2


def test_first_step_is_the_polyak_step_of_the_formula() -> None:
    model = _model()
    opt = ScheduleFreePlus(model.parameters(), warmup_steps=4, betas=(0.9, 0.95))
    opt.train()
    x, y = _batches(1)[0]
    loss = (model(x) - y).pow(2).mean()
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    before = [p.detach().clone() for p in model.parameters()]
    opt.step(loss=loss)
    l1 = sum(float(g.abs().sum()) for g in grads)
    # step 1: z = x, so <g, z - x> = 0; warmup 1/4; the bias-corrected L1 average is ||g||_1
    alpha = 0.25 * float(loss) / (l1 * math.sqrt(math.pi / 2))
    m = opt.metrics()
    assert m["sfp/step_size"] == pytest.approx(alpha, rel=1e-6)  # float32 sums
    assert m["sfp/inner"] == 0.0
    assert m["sfp/avg_weight"] == 1.0  # warm start: x follows z
    assert m["sfp/beta"] == pytest.approx(0.9 + 0.065 / 1000)
    # Adam's first step moves every coordinate by alpha * sign(g) (m/sqrt(v) = g/|g|)
    for p, b, g in zip(model.parameters(), before, grads, strict=True):
        st = opt.state[p]
        expect = b - alpha * g / (g.abs() + 1e-8)
        assert torch.allclose(st["z"], expect, atol=1e-7)
        assert torch.allclose(st["x"], st["z"])  # c = 1 in the warm start


def test_lr_multiplies_the_step_and_loss_floor_shrinks_it() -> None:
    steps = {}
    for name, kw in {"base": {}, "half": {"lr": 0.5}, "floor": {"loss_floor": 0.1}}.items():
        model = _model()
        opt = ScheduleFreePlus(model.parameters(), warmup_steps=0, **kw)
        opt.train()
        x, y = _batches(1)[0]
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step(loss=loss)
        z = opt.state[model[0].weight]["z"]
        steps[name] = (float((z - _model()[0].weight).abs().max()), float(loss))
    assert steps["half"][0] == pytest.approx(0.5 * steps["base"][0], rel=1e-5)
    loss = steps["base"][1]
    assert steps["floor"][0] == pytest.approx(steps["base"][0] * (loss - 0.1) / loss, rel=1e-5)


def test_loss_is_required_and_a_closure_gives_it() -> None:
    model = _model()
    opt = ScheduleFreePlus(model.parameters())
    opt.train()
    x, y = _batches(1)[0]
    (model(x) - y).pow(2).mean().backward()
    with pytest.raises(InvalidInputError, match=r"step\(loss=loss\)"):
        opt.step()
    assert not opt.state  # nothing moved

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        return loss

    out = opt.step(closure)
    assert float(out) == pytest.approx(opt.metrics()["sfp/loss"])
    with pytest.raises(InvalidInputError, match="not both"):
        opt.step(closure, loss=out)
    with pytest.raises(InvalidInputError, match="finite"):
        opt.step(loss=float("nan"))
    assert opt.global_state["step"] == 1  # the refused steps did not count
    with pytest.raises(InvalidInputError, match="one-element tensor"):
        opt.step(loss=torch.ones(3))


def test_eval_mode_is_required_and_modes_hold_x_and_y() -> None:
    model = _model()
    opt = ScheduleFreePlus(model.parameters(), warmup_steps=2, warm_start_steps=2)
    assert is_schedule_free(opt) and in_train_mode(opt) is False  # starts in eval, as schedulefree
    x, y = _batches(1)[0]
    (model(x) - y).pow(2).mean().backward()
    with pytest.raises(InvalidInputError, match="train mode"):
        opt.step(loss=1.0)
    opt.train()
    _train(model, opt, _batches(10))
    p = model[0].weight
    st = opt.state[p]
    beta = opt.global_state["beta"]
    assert torch.allclose(p, beta * st["x"] + (1 - beta) * st["z"], atol=1e-7)
    assert not torch.allclose(st["x"], st["z"])  # averaging is on: x and z differ
    with eval_mode(opt):  # runcast's integrations switch it like the schedulefree package's
        assert torch.equal(p.detach(), st["x"])
    assert in_train_mode(opt)
    assert torch.allclose(p, beta * st["x"] + (1 - beta) * st["z"], atol=1e-7)


@pytest.mark.parametrize("mode_at_save", ["train", "eval"])
def test_state_dict_resume_reproduces_the_uninterrupted_run(mode_at_save: str) -> None:
    batches = _batches(120)
    kw = {"warmup_steps": 10, "anneal_steps": 80, "warm_start_steps": 15}
    full_model = _model()
    full = ScheduleFreePlus(_groups(full_model), **kw)
    full.train()
    _train(full_model, full, batches)

    model = _model()
    opt = ScheduleFreePlus(_groups(model), **kw)
    opt.train()
    _train(model, opt, batches[:60])
    if mode_at_save == "eval":
        opt.eval()
    saved = {"model": model.state_dict(), "opt": opt.state_dict()}
    saved = {k: {kk: _clone(vv) for kk, vv in v.items()} for k, v in saved.items()}
    _train(model, opt, batches[60:61]) if mode_at_save == "train" else None  # moves on; ignored

    resumed_model = _model(seed=5)  # other weights: the load must overwrite all of them
    resumed = ScheduleFreePlus(_groups(resumed_model), **kw)
    resumed_model.load_state_dict(saved["model"])
    resumed.load_state_dict(saved["opt"])
    resumed.train()
    _train(resumed_model, resumed, batches[60:])
    for a, b in zip(full_model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(a, b)  # bit for bit
        for key in ("x", "z", "exp_avg", "exp_avg_sq"):
            assert torch.equal(full.state[a][key], resumed.state[b][key])
    assert full.global_state == resumed.global_state


def _clone(v: object) -> object:
    import copy

    return copy.deepcopy(v)


def test_load_refuses_another_optimizers_state() -> None:
    model = _model()
    opt = ScheduleFreePlus(model.parameters())
    adam = torch.optim.Adam(model.parameters())
    with pytest.raises(InvalidInputError, match="schedule_free_plus"):
        opt.load_state_dict(adam.state_dict())


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"lr": -1.0}, "lr"),
        ({"betas": (1.0, 0.9)}, r"betas\[0\]"),
        ({"beta_max": 1.5}, "beta_max"),
        ({"warmup_steps": -3}, "warmup_steps"),
        ({"warm_start_steps": 2.5}, "warm_start_steps"),
        ({"loss_floor": float("inf")}, "loss_floor"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_bad_settings_name_the_value(kw: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        ScheduleFreePlus(_model().parameters(), **kw)  # type: ignore[arg-type]


def test_untuned_it_trains_as_well_as_tuned_adamw_on_a_small_regression() -> None:
    batches = _batches(300)
    val_x, val_y = _batches(1, seed=9)[0]
    model = _model()
    opt = ScheduleFreePlus(model.parameters())
    opt.train()
    _train(model, opt, batches)
    opt.eval()
    with torch.no_grad():
        sfp = float((model(val_x) - val_y).pow(2).mean())
    best = math.inf
    for lr in (3e-3, 1e-2, 3e-2):
        m = _model()
        adam = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(adam, T_max=300)
        for x, y in batches:
            adam.zero_grad()
            (m(x) - y).pow(2).mean().backward()
            adam.step()
            sched.step()
        with torch.no_grad():
            best = min(best, float((m(val_x) - val_y).pow(2).mean()))
    with torch.no_grad():
        start = float((_model()(val_x) - val_y).pow(2).mean())
    assert sfp < 0.5 * start  # it learned
    assert sfp < 1.25 * best  # and is near the best of a 3-point cosine LR grid


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ddp_replicas_stay_identical_only_with_the_loss_averaged(
    tmp_path: Path,
    free_port: Callable[[], int],
    launcher_free_env: Callable[[], dict[str, str]],
) -> None:
    script = Path(__file__).parent / "_scripts" / "ddp_ranks.py"
    results = {}
    for average in (1, 0):
        out = tmp_path / f"avg{average}"
        out.mkdir()
        proc = subprocess.run(
            [sys.executable, str(script), str(out), str(free_port()), str(average)],
            capture_output=True,
            text=True,
            env=launcher_free_env(),
            timeout=150,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[average] = [torch.load(out / f"rank{r}.pt") for r in (0, 1)]
    r0, r1 = results[1]
    for key in ("x", "y"):
        for a, b in zip(r0[key], r1[key], strict=True):
            assert torch.equal(a, b)  # identical after 100 steps on different data
    assert r0["metrics"] == r1["metrics"]
    # the control: each rank stepping with its own loss drifts apart (the test can fail)
    d0, d1 = results[0]
    drift = max(float((a - b).abs().max()) for a, b in zip(d0["x"], d1["x"], strict=True))
    assert drift > 1e-4
