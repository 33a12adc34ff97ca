"""The synthetic prior the PFN is trained on: LR schedules, loss curves under them, noise.

Every batch is drawn fresh, vectorised in numpy, in three parts:

1. **Schedules** on the normalised horizon ``[0, 1]``: constant, cosine, linear, WSD (linear,
   exponential or cosine cooldowns), multistep, two-stage and inverse-sqrt, with random warmups,
   decay ends, and sometimes a planned total beyond the forecast horizon.
2. **Curves.** Schedule-aware laws evaluated on the schedule: the multi-power law of Luo et al.
   (2025), ``L = P(S1) - LD(t)`` with a power law in the LR area ``S1`` and a saturating
   annealing bonus ``LD`` summed over every LR drop, and the momentum law of Tissue et al. (2024),
   ``L = P(S1) - C * S2``. Schedule-free parametric families (Domhan et al. 2015: pow, exp,
   log-power/MMF, Janoschek/Weibull, ilog2 and mixtures) for the case where no schedule is given;
   and some schedule-law curves whose schedule is hidden from the model, so that without a
   schedule it stays humble about cooldowns it cannot see.
3. **Observations**: dense (binned per-step curves) or sparse (evaluation curves) sampling up to a
   random cutoff, gaussian or heavy-tailed noise of random size, rare upward spikes.

All curves are decreasing-ish (accuracies are flipped by the caller) and are normalised with
:func:`runcast.forecast.pfn._features.normalise`, which removes any affine scale, so only shapes
need sampling.

Example:
    >>> b = sample_batch(np.random.default_rng(0), batch=8)
    >>> b.obs_feat.shape, b.q_feat.shape, bool(np.isfinite(b.q_z).all())
    ((8, 100, 5), (8, 24, 5), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from runcast.forecast.pfn._features import (
    GRID,
    FloatArray,
    neutral_grid,
    normalise,
    schedule_grid,
    squash,
    token_features,
)

N_OBS = 100
N_QUERY = 24
#: clip range of the squashed (asinh) normalised values: the bar distribution's support
Z_RANGE = (-7.0, 5.0)
Rng = np.random.Generator


@dataclass(frozen=True)
class Batch:
    """A batch of synthetic forecasting tasks, ready for the model."""

    obs_feat: FloatArray  # (B, N_OBS, N_FEATURES) schedule features of observed points
    obs_z: FloatArray  # (B, N_OBS) squashed normalised observed values (0 where padded)
    obs_mask: npt.NDArray[np.bool_]  # (B, N_OBS) True for real points
    q_feat: FloatArray  # (B, N_QUERY, N_FEATURES) features of the query (future) points
    q_z: FloatArray  # (B, N_QUERY) the targets, squashed normalised, clipped to Z_RANGE


def _u(
    rng: Rng,
    lo: float | FloatArray,
    hi: float | FloatArray,
    size: int | tuple[int, int] | None = None,
) -> FloatArray:
    return np.asarray(rng.uniform(lo, hi, size), dtype=np.float64)


def _r(rng: Rng, size: int | tuple[int, int]) -> FloatArray:
    return np.asarray(rng.random(size), dtype=np.float64)


def _logu(rng: Rng, lo: float, hi: float, size: int) -> FloatArray:
    return np.exp(_u(rng, np.log(lo), np.log(hi), size))


def _col(a: npt.ArrayLike) -> FloatArray:
    """Per-row parameters as a column, to broadcast over the grid."""
    return np.asarray(a, dtype=np.float64)[:, None]


def sample_schedules(rng: Rng, batch: int) -> FloatArray:
    """``(batch, GRID)`` block LRs relative to the peak, over the normalised horizon.

    Example:
        >>> lr = sample_schedules(np.random.default_rng(1), 4)
        >>> lr.shape, bool((lr >= 0).all() and np.allclose(lr.max(axis=1), 1.0))
        ((4, 256), True)
    """
    # a planned total beyond the forecast horizon (the user forecasts part of a longer run)
    length = np.where(_r(rng, batch) < 0.2, _u(rng, 1.0, 2.0, batch), 1.0)
    u = ((np.arange(GRID) + 0.5) / GRID)[None, :] / _col(length)
    warm = np.where(_r(rng, batch) < 0.3, 0.0, _logu(rng, 0.003, 0.1, batch))
    t = np.clip((u - _col(warm)) / _col(1.0 - warm), 0.0, 1.0)
    end = np.where(_r(rng, batch) < 0.2, 0.0, _logu(rng, 1e-3, 0.3, batch))
    e = _col(end)
    cosine = e + (1.0 - e) * (1.0 + np.cos(np.pi * t)) / 2.0
    linear = 1.0 - (1.0 - e) * t
    ds = _col(_u(rng, 0.5, 0.95, batch))
    r = np.clip((t - ds) / (1.0 - ds), 0.0, 1.0)
    shape = _col(rng.integers(0, 3, batch))
    geo = np.maximum(e, 1e-3) ** r
    wsd = np.where(shape == 0, 1.0 - (1.0 - e) * r, np.where(shape == 1, geo, 0.0))
    wsd = np.where(shape == 2, e + (1.0 - e) * (1.0 + np.cos(np.pi * r)) / 2.0, wsd)
    m1 = _u(rng, 0.3, 0.7, batch)
    m2 = np.where(_r(rng, batch) < 0.5, _u(rng, m1, 0.95), 2.0)
    gamma = _col(_u(rng, 0.1, 0.5, batch))
    multistep = gamma ** ((t >= _col(m1)).astype(float) + (t >= _col(m2)))
    two = np.where(t >= _col(_u(rng, 0.2, 0.8, batch)), _col(_u(rng, 0.03, 0.9, batch)), 1.0)
    inv_sqrt = 1.0 / np.sqrt(1.0 + _col(_logu(rng, 1.0, 100.0, batch)) * t)
    kinds = np.stack([np.ones_like(t), cosine, linear, wsd, multistep, two, inv_sqrt])
    pick = rng.choice(7, size=batch, p=[0.15, 0.25, 0.1, 0.22, 0.1, 0.12, 0.06])
    lr = kinds[pick, np.arange(batch)]
    ramp = np.where(_col(warm) > 0, np.clip(u / np.maximum(_col(warm), 1e-12), 0.0, 1.0), 1.0)
    lr = np.maximum(lr * ramp, 0.0)
    out: FloatArray = lr / np.maximum(lr.max(axis=1, keepdims=True), 1e-12)
    return out


def _interp_edges(values: FloatArray, x: FloatArray) -> FloatArray:
    """Linear interpolation of per-edge values ``(B, GRID + 1)`` at times ``x`` ``(B, n)``."""
    pos = np.clip(x, 0.0, 1.0) * GRID
    i0 = np.minimum(np.floor(pos).astype(np.int64), GRID - 1)
    w = pos - i0
    rows = np.arange(values.shape[0])[:, None]
    out: FloatArray = values[rows, i0] * (1.0 - w) + values[rows, i0 + 1] * w
    return out


#: the range (log-uniform) of a full anneal's gain, in units of the power law's drop from 10% to
#: 100% of the run: what the shipped weights were trained on
ANNEAL_AMP = (0.1, 2.0)


def law_curves(
    rng: Rng, grid: FloatArray, x: FloatArray, anneal_amp: tuple[float, float] = ANNEAL_AMP
) -> FloatArray:
    """Clean values at ``x`` of schedule-aware law curves (multi-power or momentum law).

    ``grid`` is :func:`schedule_grid` of the schedules; shapes only (``L0 = 0``, ``A = 1``).
    ``anneal_amp``: the range of the annealing bonus (:data:`ANNEAL_AMP`).

    Example:
        >>> x = np.linspace(0.05, 1.0, 20)[None].repeat(8, 0)
        >>> y = law_curves(np.random.default_rng(0), schedule_grid(np.ones((8, GRID))), x)
        >>> bool((np.diff(y, axis=1) < 0).all())  # constant LR: a pure power law in time
        True
    """
    b = grid.shape[0]
    lr, s1e, s2e = grid[:, 0, :-1], grid[:, 1, :], grid[:, 2, :]
    alpha = _u(rng, 0.1, 1.0, b)[:, None]
    s0 = _logu(rng, 1e-3, 0.2, b)[:, None]
    power = (_interp_edges(s1e, x) + s0) ** -alpha
    span = (0.1 + s0) ** -alpha - (1.0 + s0) ** -alpha  # the power law's drop over 10%..100%
    amp = span * _logu(rng, anneal_amp[0], anneal_amp[1], b)[:, None]
    # multi-power law annealing bonus at every edge g: sum over earlier LR drops k of
    # drop_k * (1 - (C * lr_k^-gamma * area(k..g) + 1)^-beta)   (Luo et al. 2025, eq. 5)
    drop = np.zeros_like(lr)
    drop[:, 1:] = np.maximum(lr[:, :-1] - lr[:, 1:], 0.0)
    c = _logu(rng, 10.0, 3000.0, b)[:, None, None]
    beta = _u(rng, 0.3, 1.2, b)[:, None, None]
    gam = _u(rng, 0.0, 0.6, b)[:, None, None]
    area = np.maximum(s1e[:, :, None] - s1e[:, None, :-1], 0.0)  # (B, edge g, block k)
    sat = 1.0 - (c * np.maximum(lr, 1e-3)[:, None, :] ** -gam * area + 1.0) ** -beta
    ld_mpl = np.einsum("bk,bgk->bg", drop, sat)
    s2_end = np.maximum(s2e[:, -1:], 1e-9)
    ld_mom = s2e / s2_end * np.where(s2e[:, -1:] > 1e-9, 1.0, 0.0)
    use_mpl = (_r(rng, b) < 0.7)[:, None]
    ld = np.where(use_mpl, ld_mpl, ld_mom)
    out: FloatArray = power - amp * _interp_edges(ld, x)
    return out


def family_curves(rng: Rng, x: FloatArray) -> FloatArray:
    """Clean values at ``x`` of schedule-free parametric families (Domhan et al. 2015), shapes only.

    Example:
        >>> x = np.linspace(0.01, 1, 50)[None].repeat(64, 0)
        >>> y = family_curves(np.random.default_rng(2), x)
        >>> bool(np.isfinite(y).all() and (np.diff(y, axis=1) <= 1e-9).mean() > 0.9)
        True
    """
    b = x.shape[0]

    def one() -> FloatArray:
        pw = (x + _col(_logu(rng, 1e-3, 0.3, b))) ** -_col(_u(rng, 0.05, 1.5, b))
        ex = np.exp(-x * _col(_logu(rng, 0.5, 30.0, b)))
        lp = 1.0 / (1.0 + (x / _col(_logu(rng, 0.01, 2.0, b))) ** _col(_u(rng, 0.5, 4.0, b)))
        jw = np.exp(-((x / _col(_logu(rng, 0.02, 3.0, b))) ** _col(_u(rng, 0.3, 3.0, b))))
        il = 1.0 / np.log(x * _col(_logu(rng, 10.0, 1e4, b)) + np.e)
        fams = np.stack([pw, ex, lp, jw, il])
        fams = fams / np.maximum(np.ptp(fams, axis=2, keepdims=True), 1e-12)
        out: FloatArray = fams[rng.choice(5, b, p=[0.35, 0.15, 0.2, 0.15, 0.15]), np.arange(b)]
        return out

    y = one()
    mix = (_r(rng, b) < 0.3)[:, None]
    y = np.where(mix, y + _logu(rng, 0.1, 1.0, b)[:, None] * one(), y)
    # a few eval losses turn back up late (overfitting)
    up = (_r(rng, b) < 0.05)[:, None]
    xo = _u(rng, 0.3, 0.9, b)[:, None]
    bend = _logu(rng, 0.05, 2.0, b)[:, None] * np.maximum(x - xo, 0.0) ** 2 * np.ptp(y, 1)[:, None]
    out: FloatArray = np.where(up, y + bend, y)
    return out


def _positions(rng: Rng, batch: int) -> tuple[FloatArray, npt.NDArray[np.bool_], FloatArray]:
    """Observed times ``(B, N_OBS)``, their mask, and the cutoff (the last observed time)."""
    cut = _u(rng, 0.03, 0.95, batch)
    x0 = cut * _logu(rng, 0.002, 0.4, batch)
    dense = _r(rng, batch) < 0.5
    n = np.where(dense, N_OBS, np.round(_logu(rng, 4.0, N_OBS + 0.49, batch))).astype(np.int64)
    i = np.arange(N_OBS)[None, :]
    frac = np.minimum(i / np.maximum(n - 1, 1)[:, None], 1.0)
    lin = x0[:, None] + (cut - x0)[:, None] * frac
    geo = x0[:, None] * (cut / x0)[:, None] ** frac
    rnd = np.sort(_u(rng, x0[:, None], cut[:, None], (batch, N_OBS)), axis=1)
    rnd = np.where(i < (n - 1)[:, None], rnd, cut[:, None])  # pad, and end at the cutoff
    rnd[:, 0] = x0
    rnd = np.sort(np.where(i < n[:, None], rnd, cut[:, None]), axis=1)
    style = np.where(dense, 0, rng.choice(3, batch, p=[0.5, 0.3, 0.2]))[:, None]
    x = np.where(style == 0, lin, np.where(style == 1, geo, rnd))
    mask = i < n[:, None]
    x = np.where(mask, x, cut[:, None])
    return x, mask, cut


def _noise(rng: Rng, shape: tuple[int, int], sigma: FloatArray, df: FloatArray) -> FloatArray:
    """Gaussian noise, or student-t where ``df`` is finite, scaled by ``sigma`` per row."""
    g = rng.standard_normal(shape)
    t = rng.standard_t(np.where(np.isfinite(df), df, 30.0)[:, None], shape)
    heavy = np.isfinite(df)[:, None]
    out: FloatArray = sigma[:, None] * np.where(heavy, np.clip(t, -50.0, 50.0) * 0.7, g)
    return out


def sample_batch(
    rng: Rng, batch: int = 64, n_query: int = N_QUERY, anneal_amp: tuple[float, float] = ANNEAL_AMP
) -> Batch:
    """Draw ``batch`` forecasting tasks from the prior (see the module docstring);
    ``anneal_amp`` is :func:`law_curves`'."""
    lr = sample_schedules(rng, batch)
    real = schedule_grid(lr)
    kind = rng.choice(3, batch, p=[0.6, 0.2, 0.2])  # 0 law+schedule, 1 law hidden, 2 family
    grid = np.where((kind == 0)[:, None, None], real, neutral_grid(batch))
    x, mask, cut = _positions(rng, batch)
    xq = cut[:, None] + (1.0 - cut)[:, None] * _r(rng, (batch, n_query))
    xq[:, -1] = 1.0  # the final value is the question most asked: always ask it
    xall = np.concatenate([x, xq, 0.5 * cut[:, None]], axis=1)
    fams = family_curves(rng, xall)  # drawn first: the shipped weights' order of draws
    y = np.where((kind == 2)[:, None], fams, law_curves(rng, real, xall, anneal_amp))
    # noise relative to the clean drop over the second half of the observed window
    drop = np.abs(y[:, -1] - y[:, N_OBS - 1]) + 1e-6 * np.abs(y[:, N_OBS - 1])
    sigma = drop * np.where(_r(rng, batch) < 0.1, 0.0, _logu(rng, 0.003, 0.5, batch))
    df = np.where(_r(rng, batch) < 0.3, _u(rng, 1.5, 5.0, batch), np.inf)
    y_obs = y[:, :N_OBS] + _noise(rng, (batch, N_OBS), sigma, df)
    spiky = (_r(rng, batch) < 0.2)[:, None] & (_r(rng, (batch, N_OBS)) < 0.03)
    y_obs = y_obs + spiky * drop[:, None] * _u(rng, 0.2, 3.0, (batch, N_OBS))
    y_q = y[:, N_OBS:-1] + _noise(rng, (batch, n_query), sigma, df)
    ref, scale = normalise(y_obs, mask)
    obs_z = np.where(mask, np.clip(squash((y_obs - ref[:, None]) / scale[:, None]), -10, 10), 0.0)
    q_z = np.clip(squash((y_q - ref[:, None]) / scale[:, None]), *Z_RANGE)
    return Batch(
        obs_feat=token_features(grid, x),
        obs_z=obs_z,
        obs_mask=mask,
        q_feat=token_features(grid, xq),
        q_z=q_z,
    )
