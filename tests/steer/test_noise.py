"""GradientNoiseScale: the two-batch estimator against a noise scale known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runcast.errors import InvalidInputError
from runcast.steer import GradientNoiseScale


def _linear_regression(
    d: int, noise: float, rng: np.random.Generator, n: int = 20_000
) -> tuple[np.ndarray, float, float]:
    """Per-example gradients of a least-squares loss at a fixed point, with their exact
    |G|^2 and tr(Sigma) over the finite data set (sampling with replacement is then iid)."""
    x = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d)
    y = x @ w_true + noise * rng.standard_normal(n)
    w = w_true + 0.3 * rng.standard_normal(d)  # near the optimum: noise scale ~100
    per_example = x * (x @ w - y)[:, None]
    g = per_example.mean(axis=0)
    trace = float(((per_example - g) ** 2).sum(axis=1).mean())
    return per_example, float(g @ g), trace


def _feed(gns: GradientNoiseScale, grads: np.ndarray, rng: np.random.Generator, n: int) -> None:
    for _ in range(n):
        idx = rng.integers(0, len(grads), size=256)
        big = grads[idx].mean(axis=0)
        small = grads[idx[:16]].mean(axis=0)  # nested, as a micro-batch is in its batch
        gns.update(float(small @ small), float(big @ big), 16, 256)


@pytest.mark.parametrize("horizon", [None, 500.0])
def test_estimate_is_close_to_the_exact_noise_scale(horizon: float | None) -> None:
    rng = np.random.default_rng(0)
    grads, g2, trace = _linear_regression(d=8, noise=3.0, rng=rng)
    truth = trace / g2
    assert 25 < truth < 250  # the regime the estimator is judged in
    gns = GradientNoiseScale(horizon=horizon)
    _feed(gns, grads, rng, 1000)
    # 1,000 updates: within 10% (the plain mean: a few percent), and both terms too
    assert abs(gns.b_simple / truth - 1) < 0.10
    assert abs(gns.grad_sq / g2 - 1) < 0.15
    assert abs(gns.trace_sigma / trace - 1) < 0.10


def test_exact_expectations_give_the_exact_ratio() -> None:
    gns = GradientNoiseScale(horizon=10)
    for _ in range(5):
        gns.update(1 + 40 / 4, 1 + 40 / 32, 4, 32)  # E|G_B|^2 = |G|^2 + tr(Sigma)/B
    assert gns.b_simple == pytest.approx(40.0)
    assert gns.grad_sq == pytest.approx(1.0) and gns.trace_sigma == pytest.approx(40.0)


def test_horizon_forgets_old_updates() -> None:
    # noise scale 10 for 200 updates, then 100: a short horizon follows, the plain mean lags
    short, plain = GradientNoiseScale(horizon=20), GradientNoiseScale(horizon=None)
    for b in [10.0] * 200 + [100.0] * 200:
        for gns in (short, plain):
            gns.update(1 + b / 2, 1 + b / 8, 2, 8)
    assert short.b_simple == pytest.approx(100.0, rel=1e-3)
    # the plain mean: (sum of tr(Sigma)) / (sum of |G|^2) = (200*10 + 200*100) / 400
    assert plain.b_simple == pytest.approx(55.0)


def test_tensor_inputs_stay_tensors_until_read() -> None:
    torch = pytest.importorskip("torch")
    gns = GradientNoiseScale()
    gns.update(torch.tensor(3.0), torch.tensor(1.5), 4, 32)
    held = gns.value()
    assert isinstance(held, torch.Tensor)  # loggable without a device sync
    ref = GradientNoiseScale()
    ref.update(3.0, 1.5, 4, 32)
    assert float(held) == pytest.approx(ref.b_simple)


def test_not_positive_grad_sq_is_nan_not_a_negative_scale() -> None:
    gns = GradientNoiseScale()
    assert math.isnan(gns.b_simple) and math.isnan(gns.grad_sq)  # nothing yet
    gns.update(1.0, 1.0, 4, 32)  # |G|^2 = 1, tr(Sigma) = 0: fine
    assert gns.b_simple == 0.0
    gns2 = GradientNoiseScale()
    gns2.update(10.0, 0.0, 4, 32)  # the big batch's norm far below: |G|^2 estimate < 0
    assert gns2.grad_sq < 0 and math.isnan(gns2.b_simple)


def test_state_dict_resumes_exactly() -> None:
    rng = np.random.default_rng(1)
    a = GradientNoiseScale(horizon=50)
    pairs = [(float(rng.uniform(2, 3)), float(rng.uniform(1, 1.2))) for _ in range(40)]
    for s, b in pairs[:20]:
        a.update(s, b, 8, 64)
    b_ = GradientNoiseScale(horizon=3)
    b_.load_state_dict(a.state_dict())
    assert b_.horizon == 50.0
    for s, b in pairs[20:]:
        a.update(s, b, 8, 64)
        b_.update(s, b, 8, 64)
    assert b_.b_simple == a.b_simple and b_.updates == a.updates == 40


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((1.0, 0.5, 8, 8), "smaller than b_big"),
        ((1.0, 0.5, 0, 8), "b_small must be a batch size"),
        ((1.0, 0.5, 4, True), "b_big must be a batch size"),
        ((-1.0, 0.5, 4, 8), "sqnorm_small must be a squared norm"),
        ((1.0, float("nan"), 4, 8), "sqnorm_big must be a squared norm"),
    ],
)
def test_bad_updates_are_refused_and_change_nothing(args: tuple, match: str) -> None:
    gns = GradientNoiseScale()
    gns.update(2.0, 1.5, 4, 8)
    before = gns.state_dict()
    with pytest.raises(InvalidInputError, match=match):
        gns.update(*args)
    assert gns.state_dict() == before


@pytest.mark.parametrize("horizon", [0, 0.5, "100", True, float("nan")])
def test_bad_horizon(horizon: object) -> None:
    with pytest.raises(InvalidInputError, match="horizon must be"):
        GradientNoiseScale(horizon=horizon)  # type: ignore[arg-type]


def test_bad_state_dict() -> None:
    with pytest.raises(InvalidInputError, match="Not a GradientNoiseScale state_dict"):
        GradientNoiseScale().load_state_dict({"horizon": 3})
