"""The synthetic prior: shapes, ranges, determinism, and the schedule effects it must carry."""

from __future__ import annotations

import numpy as np
import pytest

from runcast.forecast.pfn._features import GRID, N_FEATURES, schedule_grid
from runcast.forecast.pfn._prior import (
    N_OBS,
    Z_RANGE,
    family_curves,
    law_curves,
    sample_batch,
    sample_schedules,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_schedules_are_peak_normalised_lrs(seed: int) -> None:
    lr = sample_schedules(np.random.default_rng(seed), 256)
    assert lr.shape == (256, GRID)
    assert lr.min() >= 0.0
    np.testing.assert_allclose(lr.max(axis=1), 1.0)
    # the mix holds both schedules that anneal and ones that stay at the peak
    decayed = lr[:, -1] < 0.5
    assert 0.3 < decayed.mean() < 0.95


@pytest.mark.parametrize("seed", [0, 7])
def test_batch_is_well_formed(seed: int) -> None:
    b = sample_batch(np.random.default_rng(seed), batch=128)
    assert b.obs_feat.shape == (128, N_OBS, N_FEATURES)
    assert np.isfinite(b.obs_feat).all() and np.isfinite(b.obs_z).all()
    n = b.obs_mask.sum(axis=1)
    assert n.min() >= 4 and n.max() == N_OBS  # sparse and dense tasks both present
    last_x = b.obs_feat[..., 0].max(axis=1)
    # queries lie strictly in the future of the observed part, and the horizon x=1 is asked
    assert (b.q_feat[..., 0] >= last_x[:, None]).all()
    assert (b.q_feat[:, -1, 0] == 1.0).all()
    assert Z_RANGE[0] <= b.q_z.min() and b.q_z.max() <= Z_RANGE[1]
    # the last observed point sits near ref, so its squashed value is near zero on most curves
    last_z = b.obs_z[np.arange(128), n - 1]
    assert np.median(np.abs(last_z)) < 0.5
    # the future mostly lies below the present (losses fall)
    assert np.median(b.q_z[:, -1]) < 0.0


def test_batches_are_deterministic_given_the_seed() -> None:
    a = sample_batch(np.random.default_rng(3), batch=16)
    b = sample_batch(np.random.default_rng(3), batch=16)
    np.testing.assert_array_equal(a.q_z, b.q_z)
    np.testing.assert_array_equal(a.obs_feat, b.obs_feat)


def test_schedule_flag_mix() -> None:
    b = sample_batch(np.random.default_rng(4), batch=256)
    flag = b.obs_feat[:, 0, 4]
    # ~60% of tasks show their schedule; the rest see the neutral "unknown schedule" features
    assert 0.5 < flag.mean() < 0.7


def _wsd(decay_start: float) -> np.ndarray:
    u = (np.arange(GRID) + 0.5) / GRID
    return np.where(u < decay_start, 1.0, 1.0 - 0.99 * (u - decay_start) / (1 - decay_start))


def test_law_curves_follow_the_schedule() -> None:
    x = np.linspace(0.01, 1.0, 200)[None].repeat(64, 0)
    const = law_curves(np.random.default_rng(5), schedule_grid(np.ones((64, GRID))), x)
    wsd = law_curves(np.random.default_rng(5), schedule_grid(np.tile(_wsd(0.7), (64, 1))), x)
    before = x[0] < 0.69
    # same parameters: identical until the cooldown starts ...
    np.testing.assert_allclose(wsd[:, before], const[:, before], rtol=1e-9)
    # ... then the cooldown ends lower than constant LR on most draws (the annealing bonus)
    assert (wsd[:, -1] < const[:, -1]).mean() > 0.8
    # under a constant LR a law curve only falls
    assert (np.diff(const, axis=1) <= 1e-12).all()


def test_family_curves_mostly_fall() -> None:
    x = np.linspace(0.01, 1.0, 100)[None].repeat(256, 0)
    y = family_curves(np.random.default_rng(6), x)
    assert np.isfinite(y).all()
    falling = (np.diff(y, axis=1) <= 1e-12).all(axis=1)
    # all but the few "overfitting" draws (5% turn up late) are monotone decreasing
    assert falling.mean() > 0.85


def test_the_anneal_gain_range_scales_only_the_cooldown() -> None:
    # WSD: constant LR, then a linear cooldown to 0 over the last 20%
    lr = np.ones((16, GRID))
    lr[:, int(0.8 * GRID) :] = np.linspace(1.0, 0.0, GRID - int(0.8 * GRID))
    grid = schedule_grid(lr)
    x = np.linspace(0.05, 1.0, 40)[None].repeat(16, 0)
    ys = [law_curves(np.random.default_rng(3), grid, x, (a, a)) for a in (0.1, 0.2, 0.4)]
    small, big = ys[0] - ys[1], ys[1] - ys[2]  # 0.1 and 0.2 of the span times the bonus
    before = x[0] < 0.79
    assert np.abs(small[:, before]).max() < 1e-12  # no bonus before the LR drops
    assert (small[:, -1] > 0).all()  # a larger range, a larger gain at the end
    np.testing.assert_allclose(big[:, ~before], 2.0 * small[:, ~before], rtol=1e-9, atol=1e-15)
