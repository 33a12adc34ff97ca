"""TrainingMonitor's noise scale: micro-batches against their accumulated gradient, and one rank
against the all-reduced gradient under DDP (two real gloo processes)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import runcast
from runcast.errors import InvalidInputError, RuncastWarning
from runcast.integrations.torch import TrainingMonitor
from runcast.steer import GradientNoiseScale

torch = pytest.importorskip("torch")

SCRIPT = Path(__file__).parent / "_ddp_scripts" / "noise_ranks.py"


def _data(seed: int, n: int, d: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, x @ torch.randn(d, 1, generator=g) + 0.5 * torch.randn(n, 1, generator=g)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))


def _reference(model: torch.nn.Module, xs: list, ys: list) -> tuple[float, float]:
    """mean |g_i|^2 over micro-batches and |mean g_i|^2, by autograd on each micro-batch."""
    grads = []
    for x, y in zip(xs, ys, strict=True):
        loss = torch.nn.functional.mse_loss(model(x), y)
        gs = torch.autograd.grad(loss, list(model.parameters()))
        grads.append(torch.cat([g.flatten() for g in gs]))
    small = float(torch.stack([g.square().sum() for g in grads]).mean())
    big = float(torch.stack(grads).mean(0).square().sum())
    return small, big


@pytest.mark.parametrize("scaled", [True, False])
def test_accumulation_feeds_the_two_batch_estimate(tmp_path: Path, scaled: bool) -> None:
    model, twin = _model(), _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gns = GradientNoiseScale(horizon=None)
    ref = GradientNoiseScale(horizon=None)
    with runcast.init(db=tmp_path / "r.db", name="acc") as run:
        mon = TrainingMonitor(model, opt, run, noise_scale=gns, batch_size=8)
        for step in range(5):
            x, y = _data(step, 32)
            xs, ys = list(x.split(8)), list(y.split(8))
            # a separate copy: autograd on the monitored model would fire its hooks too
            twin.load_state_dict(model.state_dict())
            ref.update(*_reference(twin, xs, ys), 8, 32)
            for xm, ym in zip(xs, ys, strict=True):
                loss = torch.nn.functional.mse_loss(model(xm), ym)
                # a loss divided by the micro-batch count (or not) scales both norms alike
                (loss / 4 if scaled else loss).backward()
            out = mon.record(step, loss)
            opt.step()
            opt.zero_grad()
    # the hooks saw exactly what autograd gives for each micro-batch: the same estimate
    assert gns.updates == 5
    assert gns.b_simple == pytest.approx(ref.b_simple, rel=1e-4)
    assert float(out["noise_scale"]) == pytest.approx(ref.b_simple, rel=1e-4)
    with runcast.open_store(tmp_path / "r.db") as store:
        curves = store.curves(run.id, ["noise_scale", "batch_size"])
    assert curves["batch_size"].value.tolist() == [32.0] * 5  # 4 micro-batches of 8
    assert curves["noise_scale"].value[-1] == pytest.approx(ref.b_simple, rel=1e-4)


def test_one_backward_per_step_warns_once_and_logs_no_noise_scale() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = TrainingMonitor(model, opt, noise_scale=GradientNoiseScale(), batch_size=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(3):
            x, y = _data(step, 16)
            torch.nn.functional.mse_loss(model(x), y).backward()
            out = mon.record(step)
            opt.zero_grad()
    assert "noise_scale" not in out and out["batch_size"] == 16.0
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuncastWarning)]
    assert len(msgs) == 1 and "2+ micro-batches" in msgs[0]


def test_every_still_feeds_every_step() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    gns = GradientNoiseScale()
    mon = TrainingMonitor(model, opt, every=3, noise_scale=gns, batch_size=4)
    for step in range(6):
        x, y = _data(step, 8)
        for xm, ym in zip(x.split(4), y.split(4), strict=True):
            torch.nn.functional.mse_loss(model(xm), ym).backward()
        mon.record(step)
        opt.zero_grad()
    assert gns.updates == 6  # recorded on 2 calls, estimated on all 6


@pytest.mark.parametrize("size", [None, 0, -2, True, "8"])
def test_noise_scale_needs_a_batch_size(size: object) -> None:
    model = _model()
    with pytest.raises(InvalidInputError, match="batch_size must be"):
        TrainingMonitor(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            noise_scale=GradientNoiseScale(),
            batch_size=size,  # type: ignore[arg-type]
        )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ddp_rank_against_all_reduce(
    tmp_path: Path, free_port: Callable[[], int], launcher_free_env: Callable[[], dict[str, str]]
) -> None:
    db = tmp_path / "runcast.db"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(db), str(tmp_path), str(free_port())],
        capture_output=True,
        text=True,
        env=launcher_free_env(),
        timeout=150,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    for r in (r0, r1):
        # each rank's estimate is its own gradient against the all-reduced mean, exactly
        assert r["b_simple"] == pytest.approx(r["expected"], rel=1e-4)
        assert r["updates"] == 4 and r["batch_size"] == 16.0  # 2 ranks x 8 examples
        assert r["training_equal"]  # the hook's all-reduce is DDP's: same weights as DDP's
    assert r0["b_simple"] != pytest.approx(r1["b_simple"])  # two ranks, two local gradients
    with runcast.open_store(db) as store:
        (info,) = store.runs("noise")
        curve = store.curve(info.id, "noise_scale")
    assert curve.step.tolist() == [0, 1, 2, 3]
    assert curve.value[-1] == pytest.approx(r0["b_simple"], rel=1e-6)  # rank 0 recorded it
