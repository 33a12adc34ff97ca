"""Schedule features and normalisation: fast vectorised code checked against plain loops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from runcast.forecast.pfn._features import (
    GRID,
    MOMENTUM_TAU,
    lr_blocks_from_array,
    neutral_grid,
    normalise,
    schedule_grid,
    squash,
    token_features,
    unsquash,
)


def _reference_grid(lr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S1 and S2 at the block edges by the plain recursions of the momentum law."""
    n = lr.size
    lam = np.exp(-1.0 / (MOMENTUM_TAU * n))
    s1, s2, m = [0.0], [0.0], 0.0
    for k in range(n):
        drop = max(lr[k - 1] - lr[k], 0.0) if k else 0.0
        m = lam * m + drop
        s1.append(s1[-1] + lr[k] / n)
        s2.append(s2[-1] + m / n)
    return np.array(s1), np.array(s2)


def _schedules() -> dict[str, np.ndarray]:
    u = (np.arange(GRID) + 0.5) / GRID
    return {
        "constant": np.ones(GRID),
        "cosine": 0.05 + 0.95 * (1 + np.cos(np.pi * u)) / 2,
        "wsd": np.where(u < 0.8, 1.0, 1.0 - (u - 0.8) / 0.2 * 0.99),
        "warmup_step": np.where(u < 0.1, u / 0.1, np.where(u < 0.6, 1.0, 0.3)),
    }


@pytest.mark.parametrize("name", list(_schedules()))
def test_schedule_grid_matches_plain_recursion(name: str) -> None:
    lr = _schedules()[name]
    g = schedule_grid(lr[None, :])
    s1, s2 = _reference_grid(lr)
    # the discounted-cumsum closed form must equal the momentum recursion it replaces
    np.testing.assert_allclose(g[0, 1], s1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g[0, 2], s2, rtol=1e-7, atol=1e-10)
    assert g[0, 3].min() == 1.0  # a real schedule is flagged as known


def test_constant_and_neutral_grids() -> None:
    g = neutral_grid(2)
    # no schedule: S1 is plain normalised time, no annealing, flag off
    np.testing.assert_allclose(g[1, 1], np.linspace(0.0, 1.0, GRID + 1), atol=1e-12)
    assert np.abs(g[:, 2]).max() == 0.0
    assert g[:, 3].max() == 0.0


@pytest.mark.parametrize("x", [0.0, 0.1234, 0.5, 0.99, 1.0])
def test_token_features_interpolate_exactly(x: float) -> None:
    lr = _schedules()["warmup_step"]
    f = token_features(schedule_grid(lr[None, :]), np.array([[x]]))[0, 0]
    # the integral of a blockwise-constant LR is piecewise linear: interpolation is exact
    k = min(int(x * GRID), GRID - 1)
    s1 = lr[:k].sum() / GRID + lr[k] * (x * GRID - k) / GRID
    assert f[0] == x
    assert f[1] == lr[k]
    assert f[2] == pytest.approx(s1, abs=1e-12)


@pytest.mark.parametrize("until", [256, 1000, 24000, 143001])
def test_lr_blocks_are_block_means(until: int) -> None:
    lrs = 1e-3 * (0.1 + 0.9 * (1 + np.cos(np.pi * np.arange(until + 1) / (until + 1))) / 2)
    blocks = lr_blocks_from_array(lrs, until)
    edges = np.linspace(0, until + 1, GRID + 1)
    # a reference on whole steps: the mean of the steps whose midpoint falls in each block
    mid = np.arange(until + 1) + 0.5
    ref = np.array([lrs[(mid >= a) & (mid < b)].mean() for a, b in itertools.pairwise(edges)])
    assert blocks.max() == 1.0  # the peak block is 1, as in the prior
    np.testing.assert_allclose(blocks, ref / ref.max(), rtol=2e-2)


@pytest.mark.parametrize(("a", "b"), [(1.0, 0.0), (0.01, 3.0), (250.0, -7.5)])
def test_normalise_is_affine_equivariant(a: float, b: float) -> None:
    rng = np.random.default_rng(0)
    y = 3.0 + 2.0 * np.linspace(1, 30, 40) ** -0.5 + 0.01 * rng.standard_normal(40)
    mask = np.ones((1, 40), bool)
    ref, scale = normalise(y[None], mask)
    ref2, scale2 = normalise(a * y[None] + b, mask)
    # the model sees (y - ref) / scale, so any affine rescaling of a loss must cancel out
    assert ref2[0] == pytest.approx(a * ref[0] + b, rel=1e-9)
    assert scale2[0] == pytest.approx(a * scale[0], rel=1e-9)


def test_normalise_floors_flat_noisy_curves_and_respects_mask() -> None:
    rng = np.random.default_rng(1)
    y = 2.0 + 0.05 * rng.standard_normal((1, 60))
    ref, scale = normalise(y, np.ones((1, 60), bool))
    # no trend: the scale is the noise floor (~2 * 0.05), not a vanishing drop
    assert 0.05 < scale[0] < 0.2
    padded = np.concatenate([y, np.full((1, 40), 99.0)], axis=1)
    mask = np.arange(100)[None] < 60
    ref2, scale2 = normalise(padded, mask)
    assert (ref2[0], scale2[0]) == (ref[0], scale[0])  # padding is ignored


def test_squash_roundtrip() -> None:
    v = np.array([-300.0, -1.0, 0.0, 0.5, 40.0])
    np.testing.assert_allclose(unsquash(squash(v)), v, rtol=1e-12)


def test_nanmedian_rows_matches_numpy() -> None:
    import warnings

    from runcast.forecast.pfn._features import nanmedian_rows

    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 33))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[5] = np.nan  # an all-NaN row: NaN, as numpy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmedian(a, axis=1)
    # the fast sort-based median gives numpy's answer on ragged rows (odd and even counts)
    np.testing.assert_allclose(nanmedian_rows(a), ref, rtol=0, atol=0, equal_nan=True)
