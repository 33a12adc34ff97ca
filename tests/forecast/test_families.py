from __future__ import annotations

import numpy as np
import pytest

from runcast.forecast._families import FAMILIES, evaluate


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_basis_falls_and_is_finite_on_its_grid(name: str) -> None:
    fam = FAMILIES[name]
    x = np.linspace(0.1, 10.0, 50)
    g = fam.basis(x, fam.grid)
    assert g.shape == (fam.grid.shape[0], x.size)
    assert np.isfinite(g).all()
    # a + falling basis: the model is a loss that never rises (a >= 0)
    assert (np.diff(g, axis=1) <= 1e-12).all()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_vectorised_basis_matches_row_by_row(name: str) -> None:
    fam = FAMILIES[name]
    x = np.array([0.2, 1.0, 3.0])
    rows = fam.grid[:: max(1, fam.grid.shape[0] // 5)]
    fast = fam.basis(x, rows)
    slow = np.vstack([fam.basis(x, r[None, :]) for r in rows])
    np.testing.assert_allclose(fast, slow, rtol=1e-12)


def test_evaluate_pow3_by_hand() -> None:
    out = evaluate(
        "pow3", np.array([1.0, 4.0]), np.array([[0.5]]), np.array([2.0]), np.array([3.0])
    )
    # 2 + 3 * 4^-0.5 = 3.5
    np.testing.assert_allclose(out, [[5.0, 3.5]])
