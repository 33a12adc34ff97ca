"""The forms: log loss and its analytic gradient (checked against finite differences), D'."""

from __future__ import annotations

import numpy as np
import pytest

from runcast.scaling._forms import FORMS, Inputs, effective_log_data

RNG = np.random.default_rng(0)
X = Inputs(
    np.log(RNG.uniform(1e7, 1e10, 40)),
    np.log(RNG.uniform(1e8, 1e12, 40)),
    RNG.uniform(1e8, 1e11, 40),
)
THETAS = {
    "chinchilla": np.array([0.6, 6.2, 7.6, 0.35, 0.37]),
    "data_constrained": np.array([0.6, 6.2, 7.6, 0.35, 0.37, np.log(15.0)]),
}


@pytest.mark.parametrize("name", list(FORMS))
def test_gradient_matches_finite_differences(name: str) -> None:
    form, theta = FORMS[name], THETAS[name]
    _, jac = form.log_loss_grad(theta, X)
    assert jac is not None
    for j in range(form.size):
        h = np.zeros_like(theta)
        h[j] = 1e-6
        num = (form.log_loss(theta + h, X) - form.log_loss(theta - h, X)) / 2e-6
        # protects the L-BFGS fit: a wrong gradient stops it far from the minimum
        np.testing.assert_allclose(jac[:, j], num, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", list(FORMS))
def test_log_loss_is_the_law(name: str) -> None:
    form, theta = FORMS[name], THETAS[name]
    p = form.to_params(theta)
    log_d = form.log_data(theta, X)
    direct = p["E"] + p["A"] / np.exp(X.log_n) ** p["alpha"] + p["B"] / np.exp(log_d) ** p["beta"]
    # the log-sum-exp form is the same number as the plain formula
    np.testing.assert_allclose(np.exp(form.log_loss(theta, X)), direct, rtol=1e-12)
    assert form.to_theta(p) == pytest.approx(theta)


def test_effective_data_counts_repeats_less() -> None:
    u = np.full(4, 1e9)
    d, _ = effective_log_data(np.log([5e8, 1e9, 2e9, 1e12]), u, np.log(15.0))
    dp = np.exp(d)
    # within one epoch every token counts; the second epoch almost fully (R/R* small);
    # 1000 epochs saturate at U (1 + R*)
    assert dp[0] == pytest.approx(5e8) and dp[1] == pytest.approx(1e9)
    assert 1.9e9 < dp[2] < 2e9
    assert dp[3] == pytest.approx(16e9, rel=1e-6)


def test_grid_is_hoffmanns() -> None:
    # 5 x 6 x 6 x 5 x 5 starts, and three half-lives for the data-constrained form
    assert FORMS["chinchilla"].grid().shape == (4500, 5)
    assert FORMS["data_constrained"].grid().shape == (13500, 6)
