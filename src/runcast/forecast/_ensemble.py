"""The schedule-agnostic Bayesian ensemble of parametric curve families (method ``"ensemble"``).

The posterior over Domhan et al.'s families is computed on a grid, not sampled by MCMC: each
family is ``c + a * g(x; theta)``; for every grid cell ``theta`` the linear parameters
``(c, a)`` are integrated out in closed form (a Gaussian linear model with a flat prior), which
gives the cell's marginal likelihood exactly. Cells of all families are weighted by
``prior x marginal likelihood`` (Bayesian model averaging, each family an equal prior share);
paths are drawn by sampling cells by weight and ``(c, a)`` from their Gaussian conditional. On a
200-point curve the whole posterior takes a few milliseconds; the emcee baseline (``"mcmc"``)
samples the same model class and takes seconds.

The noise scale is the best fit's residual SD (floored by the measured observation noise of a
bin), so a curve that no family fits well gets a wide, not an overconfident, posterior. What the
families cannot know (a schedule's cooldown, a plateau ending) is covered by the calibrated
model-discrepancy term added in :mod:`runcast.forecast._calibrate`.

Example:
    >>> import numpy as np, runcast
    >>> from runcast.forecast._prep import prepare
    >>> s = np.arange(100, 3001, 50)
    >>> p = prepare(runcast.Curve(s, 2.0 + 5.0 * (s / 100.0) ** -0.6), until=10_000)
    >>> raw = fit_ensemble(p, n_paths=200, seed=0)
    >>> final = p.to_values(np.median(raw.paths[:, -1:], axis=0))[0]
    >>> bool(abs(final - (2.0 + 5.0 * 100.0 ** -0.6)) < 0.05)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from runcast.forecast._calibrate import RawForecast
from runcast.forecast._families import FAMILIES, FloatArray
from runcast.forecast._prep import Prepared

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Posterior:
    """The grid posterior: one entry per cell of every family, concatenated."""

    family: IntArray  # index into ``names``
    cell: IntArray  # row of the family's grid
    names: tuple[str, ...]
    norm: FloatArray  # each cell's basis scale (g / norm has max 1 on the fitted points)
    c: FloatArray
    a: FloatArray
    var_c: FloatArray
    var_a: FloatArray
    cov_ca: FloatArray
    prob: FloatArray  # normalised posterior weights
    sigma2: float

    def family_weights(self) -> dict[str, float]:
        """Posterior mass of each family (those above 0.1%)."""
        w = np.bincount(self.family, weights=self.prob, minlength=len(self.names))
        return {n: round(float(v), 4) for n, v in zip(self.names, w, strict=True) if v >= 1e-3}


#: prior SDs of the linear parameters in normalised units (the observed curve falls by ~1 to 0):
#: the asymptote ``c`` lies within a few spreads of the last value, the amplitude ``a`` is O(1)
#: to O(10). A proper prior matters: with a flat one, a basis that barely varies over the
#: observed part (so ``a`` is unidentified) would get unbounded evidence.
PRIOR_SD_C = 2.0
PRIOR_SD_A = 10.0


@dataclass(frozen=True)
class Sums:
    """Weighted sums of one family's design ``[1, g]`` against the data, per grid cell."""

    s0: float
    s1: FloatArray
    s2: FloatArray
    sy: float
    sgy: FloatArray
    syy: float

    def least_squares_sse(self) -> FloatArray:
        """The residual sum of squares of the unregularised fit ``y ~ c + a g``."""
        det = np.maximum(self.s0 * self.s2 - self.s1 * self.s1, 1e-300)
        a = (self.s0 * self.sgy - self.s1 * self.sy) / det
        c = (self.sy - a * self.s1) / self.s0
        return np.asarray(np.maximum(self.syy - c * self.sy - a * self.sgy, 0.0))


def design_sums(G: FloatArray, y: FloatArray, w: FloatArray) -> Sums:
    """The sums that every linear fit of ``y ~ c + a g`` (one per row of ``G``) needs."""
    return Sums(float(w.sum()), G @ w, (G * G) @ w, float(w @ y), G @ (w * y), float(w @ (y * y)))


def bayes_linear(
    s: Sums, sigma2: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Posterior of ``(c, a)`` under the Gaussian prior, and each cell's log evidence.

    Returns ``(mean_c, mean_a, var_c, var_a, cov_ca, log_evidence)`` for every cell.

    Example:
        >>> G = np.array([[1.0, 0.5, 0.25, 0.125]])
        >>> s = design_sums(G, 0.5 + 2.0 * G[0], np.ones(4))
        >>> mc, ma, *_ = bayes_linear(s, 1e-8)
        >>> round(float(mc[0]), 4), round(float(ma[0]), 4)
        (0.5, 2.0)
    """
    pc, pa = 1.0 / PRIOR_SD_C**2, 1.0 / PRIOR_SD_A**2
    # posterior precision [[p00, p01], [p01, p11]] = X'WX / sigma2 + prior precision
    p00 = s.s0 / sigma2 + pc
    p01 = s.s1 / sigma2
    p11 = s.s2 / sigma2 + pa
    det = p00 * p11 - p01 * p01
    b0, b1 = s.sy / sigma2, s.sgy / sigma2
    mean_c = (p11 * b0 - p01 * b1) / det
    mean_a = (p00 * b1 - p01 * b0) / det
    quad = b0 * mean_c + b1 * mean_a  # mu' P mu
    log_ev = -0.5 * (s.syy / sigma2 - quad) - 0.5 * np.log(det) + 0.5 * np.log(pc * pa)
    return mean_c, mean_a, p11 / det, p00 / det, -p01 / det, log_ev


def posterior(p: Prepared) -> Posterior:
    """The posterior weight of every grid cell of every family, with its linear fit."""
    x = p.xnorm(p.x)
    w = p.weight / p.weight.mean()
    n = float(w.sum())
    names = tuple(FAMILIES)
    sums: list[Sums] = []
    norms: list[FloatArray] = []
    for fam in FAMILIES.values():
        G = fam.basis(x, fam.grid)
        norm = G.max(axis=1)  # g falls: its largest value is at the first fitted point
        norm = np.where(np.isfinite(norm) & (norm > 0), norm, 1.0)
        norms.append(norm)
        sums.append(design_sums(G / norm[:, None], p.y, w))
    best = min(float(np.nanmin(s.least_squares_sse())) for s in sums)
    # a bin median of k points has SD ~1.25 sigma / sqrt(k): never claim less noise than that
    floor = (1.2533 * p.noise_y) ** 2 / float(p.weight.mean())
    sigma2 = max(best / max(n - 4.0, 1.0), floor, 1e-12)
    parts = []
    for fi, (fam, s) in enumerate(zip(FAMILIES.values(), sums, strict=True)):
        k = fam.grid.shape[0]
        mc, ma, vc, va, cv, lev = bayes_linear(s, sigma2)
        lev = lev - np.log(k) - np.log(len(names))  # each family gets an equal prior share
        lev = np.where((ma > 0) & np.isfinite(lev), lev, -np.inf)
        parts.append((np.full(k, fi), np.arange(k), norms[fi], mc, ma, vc, va, cv, lev))
    fam_i, cell, norm, c, a, var_c, var_a, cov, logw = (
        np.concatenate(z) for z in zip(*parts, strict=True)
    )
    if not np.isfinite(logw).any():  # nothing falls: every cell equally (and the flat fits win)
        logw = np.zeros_like(logw)
    prob = np.exp(logw - logw.max())
    prob /= prob.sum()
    return Posterior(
        family=fam_i.astype(np.int64),
        cell=cell.astype(np.int64),
        names=names,
        norm=norm,
        c=c,
        a=a,
        var_c=var_c,
        var_a=var_a,
        cov_ca=cov,
        prob=prob,
        sigma2=sigma2,
    )


def fit_ensemble(p: Prepared, *, n_paths: int = 400, seed: int = 0) -> RawForecast:
    """Sample ``n_paths`` noise-free paths of the ensemble posterior at ``p.out_steps``.

    Paths are in the normalised falling orientation of ``p``; ``RawForecast.finish`` adds the
    calibrated discrepancy and the observation noise and maps them back to the curve's units.
    """
    rng = np.random.default_rng(seed)
    post = posterior(p)
    picks = rng.choice(post.prob.size, size=n_paths, p=post.prob)
    x_out = np.concatenate([[1.0], p.xnorm(p.out_steps)])
    paths = np.empty((n_paths, x_out.size))
    za, zc = rng.standard_normal(n_paths), rng.standard_normal(n_paths)
    # (c, a) from their Gaussian conditional, correlation kept: c and a trade off strongly
    a = post.a[picks] + np.sqrt(post.var_a[picks]) * za
    slope = post.cov_ca[picks] / post.var_a[picks]
    resid_var = np.maximum(post.var_c[picks] - slope * post.cov_ca[picks], 0.0)
    c = post.c[picks] + slope * (a - post.a[picks]) + np.sqrt(resid_var) * zc
    a = np.maximum(a, 0.0)
    fam = post.family[picks]
    for fi in np.unique(fam):
        rows = np.flatnonzero(fam == fi)
        f = FAMILIES[post.names[fi]]
        g = f.basis(x_out, f.grid[post.cell[picks[rows]]]) / post.norm[picks[rows]][:, None]
        paths[rows] = c[rows, None] + a[rows, None] * g
    info = {
        "family_weights": post.family_weights(),
        "fit_sd": float(np.sqrt(post.sigma2)) * p.scale,
    }
    return RawForecast(p, paths[:, 1:], anchor=float(np.median(paths[:, 0])), info=info)


def _raw_ensemble(
    p: Prepared, schedule: object = None, *, n_paths: int = 400, seed: int = 0
) -> RawForecast:
    return fit_ensemble(p, n_paths=n_paths, seed=seed)


RAW = {"ensemble": _raw_ensemble}
