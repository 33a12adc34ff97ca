from __future__ import annotations

import numpy as np
import pytest

from runcast import Curve
from runcast.forecast._ensemble import bayes_linear, design_sums, fit_ensemble, posterior
from runcast.forecast._prep import prepare


def _truth(s: np.ndarray) -> np.ndarray:
    return 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6


def test_bayes_linear_matches_numpy_least_squares_with_a_weak_prior() -> None:
    rng = np.random.default_rng(0)
    g = np.sort(rng.uniform(0.1, 1.0, 30))[::-1]
    y = 0.3 + 1.7 * g + 0.01 * rng.standard_normal(30)
    mc, ma, *_ = bayes_linear(design_sums(g[None, :], y, np.ones(30)), 1e-4)
    ref = np.linalg.lstsq(np.c_[np.ones(30), g], y, rcond=None)[0]
    # with the noise this small the prior hardly matters: the posterior mean is the LS fit
    np.testing.assert_allclose([mc[0], ma[0]], ref, rtol=1e-3)


def test_posterior_is_normalised_over_all_families() -> None:
    s = np.arange(0, 3001, 25)
    post = posterior(prepare(Curve(s, _truth(s)), until=10_000))
    assert post.prob.sum() == pytest.approx(1.0)
    assert 0 < len(post.family_weights()) <= 8


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_extrapolates_a_power_law(noise: float) -> None:
    s = np.arange(0, 3001, 25)
    v = _truth(s) + noise * np.random.default_rng(1).standard_normal(s.size)
    p = prepare(Curve(s, v), until=10_000)
    raw = fit_ensemble(p, n_paths=300, seed=0)
    final = p.to_values(np.median(raw.paths, axis=0))[-1]
    # the final value 3.3x past the data lands within 2% of the truth
    assert final == pytest.approx(_truth(np.array([10_000]))[0], rel=0.02)


def test_seed_makes_it_reproducible() -> None:
    s = np.arange(0, 3001, 25)
    p = prepare(Curve(s, _truth(s)), until=10_000)
    a, b = fit_ensemble(p, seed=3), fit_ensemble(p, seed=3)
    np.testing.assert_array_equal(a.paths, b.paths)
