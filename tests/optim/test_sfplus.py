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


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_fast_and_reference_agree_step_by_step_for_200_steps(
    dtype: torch.dtype, tol: float
) -> None:
    # the two keep different state (the reference z and x, the fast path y and a scaled
    # d = z - x) and reach y by different algebra: in float64 they agree to rounding (a wrong
    # formula would show at 1e-3), in float32 to what 200 steps of float32 rounding leave
    kw = {"warmup_steps": 20, "anneal_steps": 150, "warm_start_steps": 30, "r": 0.5}
    fast_model, ref_model = _model().to(dtype), _model().to(dtype)
    fast = ScheduleFreePlus(_groups(fast_model), foreach=True, **kw)
    ref = ScheduleFreePlus(_groups(ref_model), foreach=False, **kw)
    fast.train()
    ref.train()
    worst = 0.0
    for i, (x, y) in enumerate(_batches(200)):
        for model, opt in ((fast_model, fast), (ref_model, ref)):
            loss = (model(x.to(dtype)) - y.to(dtype)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step(loss=loss)
            if i % 37 == 0:  # eval/train round trips on both paths
                opt.eval()
                opt.train()
        for pf, pr in zip(fast_model.parameters(), ref_model.parameters(), strict=True):
            # x, y (the parameters) and z, and the moments, at every one of the 200 steps
            a, b = fast.iterates(pf), ref.iterates(pr)
            assert torch.equal(a["y"], pf.detach())
            for key in ("x", "y", "z"):
                worst = max(worst, float((a[key] - b[key]).abs().max()))
            for key in ("exp_avg", "exp_avg_sq"):
                sf, sr = fast.state[pf][key], ref.state[pr][key]
                assert torch.allclose(sf, sr, rtol=tol, atol=tol), (i, key)
        assert fast.metrics()["sfp/step_size"] == pytest.approx(
            ref.metrics()["sfp/step_size"], rel=tol, abs=tol
        )
    assert worst < tol
    assert fast.global_state["step"] == 200
    assert fast.global_state["scale"] < 1.0  # the scaled buffer was exercised
    # the run did move: a comparison of two frozen models would prove nothing
    assert float((fast_model[0].weight - _model()[0].weight).detach().abs().max()) > 1e-2


def test_cpu_blocks_and_blas_norms_change_no_number(monkeypatch: pytest.MonkeyPatch) -> None:
    from runcast.optim import _sfplus_math

    def run(block: int, large: int, foreach: bool = True) -> list[torch.Tensor]:
        monkeypatch.setattr(_sfplus_math, "_BLOCK", block)
        monkeypatch.setattr(_sfplus_math, "_LARGE", large)
        model = _model().double()
        opt = ScheduleFreePlus(_groups(model), warmup_steps=3, foreach=foreach)
        opt.train()
        for x, y in _batches(30):
            loss = (model(x.double()) - y.double()).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step(loss=loss)
        return [t for p in model.parameters() for t in (p.detach(), opt.state[p]["exp_avg_sq"])]

    # blocks of 7 elements split every weight matrix into views and gather the small tensors;
    # from 10 elements the L1 norms are BLAS's; the fused kernels everywhere else
    plain = run(block=1 << 30, large=1 << 30)
    blocked = run(block=7, large=1 << 30)
    assert all(torch.equal(a, b) for a, b in zip(plain, blocked, strict=True))  # elementwise
    blas = run(block=7, large=10)
    reference = run(block=1 << 30, large=1 << 30, foreach=False)
    for a, b in zip(blas, reference, strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_fast_path_keeps_one_buffer_and_rescales_it() -> None:
    # memory: d and Adam's two moments, no x or z (as the schedulefree package)
    model = _model()
    opt = ScheduleFreePlus(model.parameters(), warmup_steps=2, warm_start_steps=2)
    opt.train()
    _train(model, opt, _batches(3))
    assert set(opt.state[model[0].weight]) == {"d", "exp_avg", "exp_avg_sq"}
    # the scale s of d = s * D shrinks as (1 - c); below 1e-3 the buffer takes it back
    ref_model = _model()
    ref = ScheduleFreePlus(
        ref_model.parameters(), warmup_steps=2, warm_start_steps=2, foreach=False
    )
    ref.train()
    _train(ref_model, ref, _batches(3))
    opt.global_state["scale"] *= 2e-4  # as if many steps had shrunk it
    for st in opt.state.values():
        st["d"] /= 2e-4  # the same d
    _train(model, opt, _batches(5, seed=3))
    _train(ref_model, ref, _batches(5, seed=3))
    assert opt.global_state["scale"] > 1e-3  # rescaled
    for pf, pr in zip(model.parameters(), ref_model.parameters(), strict=True):
        a, b = opt.iterates(pf), ref.iterates(pr)
        for key in ("x", "y", "z"):
            assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_a_parameter_without_a_gradient_keeps_its_iterates() -> None:
    for foreach in (True, False):
        model = _model()
        opt = ScheduleFreePlus(
            model.parameters(), warmup_steps=2, warm_start_steps=2, foreach=foreach
        )
        opt.train()
        _train(model, opt, _batches(6))
        head = model[3].weight
        before = opt.iterates(head)
        x, y = _batches(1, seed=4)[0]
        loss = (model(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        head.grad = None  # frozen for this step
        opt.step(loss=loss)
        after = opt.iterates(head)
        for key in ("x", "z"):
            assert torch.allclose(before[key], after[key], atol=1e-7), (foreach, key)


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
        it = opt.iterates(p)
        expect = b - alpha * g / (g.abs() + 1e-8)
        assert torch.allclose(it["z"], expect, atol=1e-7)
        assert torch.equal(it["x"], it["z"])  # c = 1 in the warm start
        assert torch.equal(it["y"], it["z"])


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
        z = opt.iterates(model[0].weight)["z"]
        steps[name] = (float((z - _model()[0].weight).abs().max()), float(loss))
    assert steps["half"][0] == pytest.approx(0.5 * steps["base"][0], rel=1e-5)
    loss = steps["base"][1]
    assert steps["floor"][0] == pytest.approx(steps["base"][0] * (loss - 0.1) / loss, rel=1e-5)


def test_max_step_caps_the_polyak_step_and_the_warmup_scales_the_cap() -> None:
    sizes = {}
    for cap in (None, 1e-4):
        model = _model()
        opt = ScheduleFreePlus(model.parameters(), warmup_steps=2, max_step=cap)
        opt.train()
        _train(model, opt, _batches(1))
        sizes[cap] = opt.metrics()["sfp/step_size"]
    assert sizes[None] > 1e-3  # the uncapped Polyak step of this problem
    assert sizes[1e-4] == pytest.approx(0.5 * 1e-4)  # warmup 1/2 times the cap
    with pytest.raises(InvalidInputError, match="max_step"):
        ScheduleFreePlus(_model().parameters(), max_step=0.0)


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
    it = opt.iterates(p)
    beta = opt.global_state["beta"]
    assert torch.allclose(p, beta * it["x"] + (1 - beta) * it["z"], atol=1e-7)
    assert not torch.allclose(it["x"], it["z"])  # averaging is on: x and z differ
    y = p.detach().clone()
    with eval_mode(opt):  # runcast's integrations switch it like the schedulefree package's
        assert torch.allclose(p.detach(), it["x"], atol=1e-7)
    assert in_train_mode(opt)
    assert torch.equal(p.detach(), y)  # y comes back bit for bit


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
        for key in ("d", "exp_avg", "exp_avg_sq"):
            assert torch.equal(full.state[a][key], resumed.state[b][key])
    assert full.global_state == resumed.global_state


@pytest.mark.parametrize("mode_at_save", ["train", "eval"])
def test_either_path_resumes_the_others_state(mode_at_save: str) -> None:
    batches = _batches(80)
    kw = {"warmup_steps": 5, "anneal_steps": 50, "warm_start_steps": 8}
    for saved_with in (True, False):
        models = [_model().double() for _ in range(3)]
        first = ScheduleFreePlus(_groups(models[0]), foreach=saved_with, **kw)
        first.train()
        _train(models[0], first, [(x.double(), y.double()) for x, y in batches[:40]])
        if mode_at_save == "eval":
            first.eval()
        saved = {"model": _clone(models[0].state_dict()), "opt": _clone(first.state_dict())}
        runs = []
        for model, foreach in ((models[1], saved_with), (models[2], not saved_with)):
            opt = ScheduleFreePlus(_groups(model), foreach=foreach, **kw)
            # a copy each: the optimizer takes the saved tensors as its state, and steps them
            model.load_state_dict(_clone(saved["model"]))  # type: ignore[arg-type]
            opt.load_state_dict(_clone(saved["opt"]))  # type: ignore[arg-type]
            opt.train()
            _train(model, opt, [(x.double(), y.double()) for x, y in batches[40:]])
            runs.append([opt.iterates(p) for p in model.parameters()])
        for same, other in zip(*runs, strict=True):
            for key in ("x", "y", "z"):
                assert torch.allclose(same[key], other[key], rtol=1e-10, atol=1e-10)


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
