"""Training tasks cut from real curves, and fine-tuning the PFN on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import runcast
from runcast import Curve
from runcast.errors import InvalidInputError
from runcast.forecast.pfn import _real
from runcast.forecast.pfn._features import squash
from runcast.forecast.pfn._method import encode
from runcast.forecast.pfn._real import RealCurve, real_batch

torch = pytest.importorskip("torch")

from runcast.forecast.pfn._model import ModelConfig, bar_nll  # noqa: E402
from runcast.forecast.pfn.train import _tensors, finetune, load_model, train  # noqa: E402


def _sparse(total: int = 3000, every: int = 50) -> Curve:
    s = np.arange(every, total + 1, every)
    return Curve(s, 2.0 + 4.0 * (s / every) ** -0.5)


def test_a_task_is_the_observed_part_encoded_as_a_forecast_sees_it() -> None:
    curve = _sparse()
    b = real_batch(np.random.default_rng(3), [RealCurve(curve, None, "a")], batch=1)
    n = int(b.obs_mask[0].sum())
    # the observed points are the curve's first n, encoded by the inference path itself
    enc = encode(Curve(curve.step[:n], curve.value[:n]), curve.last_step, None, "down")
    assert np.allclose(b.obs_z[0, :n], enc.obs_z[0])
    assert np.allclose(b.obs_feat[0, :n, 0], curve.step[:n] / curve.last_step)
    # the last question is the final value, in the same normalised space
    want = squash((curve.value[-1] - enc.ref[0]) / enc.scale[0])
    assert b.q_z[0, -1] == pytest.approx(want)
    assert b.q_feat[0, -1, 0] == 1.0


def test_a_dense_curves_targets_are_its_trend_not_single_noisy_steps() -> None:
    s = np.arange(0, 20_000)
    trend = 2.0 + 4.0 * (1.0 + s / 10.0) ** -0.5
    noisy = trend * np.exp(np.random.default_rng(0).normal(0.0, 0.2, s.size))
    k, q = 4000, np.array([5000, 9000, 15000, 19999])
    _, _, om, qf, qz = _real.task(Curve(s, noisy), None, k, q)
    assert int(om.sum()) == 100  # binned, as a forecast bins a dense curve
    enc = encode(Curve(s[:k], noisy[:k]), int(s[-1]), None, "down")
    got = enc.ref[0] + enc.scale[0] * np.sinh(qz)
    # medians over a bin's width (40 steps) sit within a few % of the trend; single steps'
    # scatter is 20%
    assert np.all(np.abs(got / trend[q] - 1.0) < 0.06)
    assert np.allclose(qf[:, 0], q / s[-1])


def test_every_group_weighs_the_same_whatever_its_number_of_runs() -> None:
    sched = runcast.Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "total": 3001})
    few = [RealCurve(_sparse(), sched, "few")]
    many = [RealCurve(_sparse(3000, 60), None, "many") for _ in range(50)]
    b = real_batch(np.random.default_rng(0), few + many, batch=600)
    shown = b.obs_feat[:, 0, 4]  # the has-schedule flag: only "few" has a schedule
    # half the tasks come from "few", and 1 - HIDE_SCHEDULE of those show its schedule
    assert shown.mean() == pytest.approx(0.5 * (1.0 - _real.HIDE_SCHEDULE), abs=0.05)


def test_a_pool_without_a_usable_loss_curve_is_refused_with_the_reason() -> None:
    neg = RealCurve(Curve(np.arange(20), -np.linspace(1, 2, 20)), None, "a")
    with pytest.raises(InvalidInputError, match="positive points"):
        real_batch(np.random.default_rng(0), [neg], batch=2)


def test_fine_tuning_lowers_the_loss_on_the_real_curves(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    base = tmp_path / "base.npz"
    train(steps=20, out=base, batch=16, cfg=ModelConfig(32, 1, 2, 64, 16), bin_batches=2,
          log=lambda s: None)  # fmt: skip
    s = np.arange(40, 4001, 40)
    # curves that the prior rarely draws: a plateau, then a late fall
    pool = [RealCurve(Curve(s, 3.0 - 1.0 / (1.0 + np.exp(-(s - 2500 - 50 * k) / 150))), None,
                      "late") for k in range(5)]  # fmt: skip

    def nll(path: Path) -> float:
        model, borders, _ = load_model(path)
        of, oz, om, qf, qz = _tensors(real_batch(np.random.default_rng(9), pool, batch=64))
        with torch.no_grad():
            return float(bar_nll(model(of, oz, om, qf), qz, torch.as_tensor(borders).float()))

    out = tmp_path / "ft.npz"
    res = finetune(pool, out, base=base, steps=40, batch=16, lr=3e-3, log=lambda s: None)
    assert len(res.losses) == 40
    assert nll(out) < nll(base) - 0.2
    # the fine-tuned file is a weights file inference reads, and it says what it was tuned on
    from runcast.forecast.pfn._infer import load_weights

    assert load_weights(out).config["finetuned"]["groups"] == ["late"]


def test_a_real_share_outside_0_1_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="real_share"):
        finetune([], tmp_path / "x.npz", real_share=0.0)


def test_use_weights_switches_the_default_weights_and_back(tmp_path: Path) -> None:
    from runcast.forecast.pfn import _infer

    shipped = _infer.WEIGHTS
    small = tmp_path / "small.npz"
    train(steps=1, out=small, batch=4, cfg=ModelConfig(16, 1, 2, 32, 8), bin_batches=1,
          log=lambda s: None)  # fmt: skip
    try:
        _infer.load_weights()  # the shipped default, now cached
        _infer.use_weights(small)
        assert _infer.load_weights().config["d_model"] == 16  # not the cached shipped one
    finally:
        _infer.use_weights(shipped)
    assert _infer.load_weights().config["d_model"] == 96
