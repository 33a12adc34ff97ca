"""The MCMC baseline: emcee over Domhan et al.'s combined parametric model (method ``"mcmc"``).

Domhan et al. (2015) extrapolate a learning curve with the weighted combination
``f(x) = c + sum_k w_k a_k g_k(x; theta_k)`` of the parametric families, sampling all parameters,
the weights and the noise SD jointly with emcee; LC-PFN (Adriaensen et al. 2023) is measured
against it. This is that reference (with one shared asymptote ``c``, since every family in
:mod:`runcast.forecast._families` already carries its own offset), started from the grid
posterior's best cell of each family so that short chains are spent near the mode. Box priors
are the families' grid ranges. It costs seconds per forecast: it is a benchmark anchor, not
runcast's forecaster.

Example:
    >>> import numpy as np, runcast
    >>> from runcast.forecast._prep import prepare
    >>> s = np.arange(100, 3001, 50)
    >>> p = prepare(runcast.Curve(s, 2.0 + 5.0 * (s / 100.0) ** -0.6), until=10_000)
    >>> raw = fit_mcmc(p, n_paths=50, n_steps=60, n_walkers=64)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runcast._optional import require
from runcast.forecast._calibrate import RawForecast
from runcast.forecast._ensemble import posterior
from runcast.forecast._families import FAMILIES, FloatArray
from runcast.forecast._prep import Prepared


def _layout() -> list[tuple[str, int]]:
    return [(name, fam.grid.shape[1]) for name, fam in FAMILIES.items()]


def _bounds() -> tuple[FloatArray, FloatArray]:
    """Box prior: c, log sigma, then per family log a, its shape parameters, a weight logit."""
    lo, hi = [-100.0, -14.0], [5.0, 1.0]
    for name, _ in _layout():
        g = FAMILIES[name].grid
        lo += [-8.0, *g.min(axis=0).tolist(), -6.0]
        hi += [12.0, *g.max(axis=0).tolist(), 6.0]
    return np.array(lo), np.array(hi)


def _curves(theta: FloatArray, x: FloatArray, x0: float) -> FloatArray:
    """The combined model for each row of ``theta`` at ``x``: shape (n_rows, len(x))."""
    out = np.repeat(theta[:, :1], x.size, axis=1)
    logits, terms = [], []
    j = 2
    for name, d in _layout():
        fam = FAMILIES[name]
        amp = np.exp(theta[:, j])
        shape = theta[:, j + 1 : j + 1 + d]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            g = fam.basis(x, shape) / fam.basis(np.array([x0]), shape)
        terms.append(amp[:, None] * g)
        logits.append(theta[:, j + 1 + d])
        j += d + 2
    lg = np.stack(logits, axis=1)
    w = np.exp(lg - lg.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    for k, t in enumerate(terms):
        out = out + w[:, k : k + 1] * t
    return np.asarray(out, dtype=np.float64)


def _start(p: Prepared, rng: np.random.Generator, n_walkers: int) -> FloatArray:
    """Walkers around each family's best grid cell (so short chains start near the mode)."""
    post = posterior(p)
    fam_w = np.bincount(post.family, weights=post.prob, minlength=len(FAMILIES))
    logits = np.clip(np.log(np.maximum(fam_w, 1e-6)), -5.0, 5.0)
    mix = np.exp(logits) / np.exp(logits).sum()
    body: list[float] = []
    offset = 0.0
    for fi, (name, _) in enumerate(_layout()):
        in_fam = np.flatnonzero(post.family == fi)
        k = in_fam[int(np.argmax(post.prob[in_fam]))]
        theta = FAMILIES[name].grid[post.cell[k]]
        amp = max(float(post.a[k]), 1e-3)  # the grid's basis is already 1 at the first point
        body += [float(np.log(amp)), *theta.tolist(), float(logits[fi])]
        offset += float(mix[fi] * post.c[k])
    # weights as the grid posterior's family masses, offset their mix: the chain starts at the
    # posterior mixture of the families' best fits
    row = [offset, 0.5 * float(np.log(post.sigma2)), *body]
    lo, hi = _bounds()
    start = np.clip(np.array(row), lo + 1e-6, hi - 1e-6)
    # a small relative jitter: the box widths (up to 1e4 for some shapes) are far too coarse
    jitter = 1e-3 * np.maximum(np.abs(start), 1e-2) * rng.standard_normal((n_walkers, start.size))
    return np.asarray(np.clip(start + jitter, lo + 1e-9, hi - 1e-9), dtype=np.float64)


def fit_mcmc(
    p: Prepared,
    *,
    n_paths: int = 400,
    seed: int = 0,
    n_walkers: int = 100,
    n_steps: int = 2500,
    burn: float = 0.2,
) -> RawForecast:
    """Sample the combined model with emcee; ``n_steps`` per walker, the first ``burn`` dropped.

    The defaults are Domhan et al.'s own (their pylearningcurvepredictor's
    ``MCMCCurveModelCombination``: 100 walkers, 2500 steps, the first 500 dropped), so the
    baseline runs at the budget of the paper that LC-PFN is measured against: seconds per
    forecast. emcee needs at least twice as many walkers as dimensions (~30 here).
    """
    emcee: Any = require("emcee", extra="bench", purpose="for the MCMC baseline forecaster")
    rng = np.random.default_rng(seed)
    x = p.xnorm(p.x)
    x0 = float(x[0])
    w = p.weight / p.weight.mean()
    lo, hi = _bounds()

    # Domhan et al.'s constraint, for a loss: the extrapolation may not fall below zero
    x_all = np.concatenate([x, p.xnorm([p.until])])
    y_floor = -p.center / p.scale if p.direction == "down" and p.center > 0 else -np.inf

    def log_prob(theta: FloatArray) -> FloatArray:
        inside = np.all((theta > lo) & (theta < hi), axis=1)
        out = np.full(theta.shape[0], -np.inf)
        if inside.any():
            th = theta[inside]
            with np.errstate(over="ignore", invalid="ignore"):
                curves = _curves(th, x_all, x0)
                r = curves[:, :-1] - p.y[None, :]
                sig2 = np.exp(2.0 * th[:, 1])
                ll = -0.5 * (w[None, :] * r * r).sum(axis=1) / sig2 - 0.5 * w.sum() * np.log(sig2)
            ok = np.isfinite(ll) & (curves[:, -1] >= y_floor)
            out[inside] = np.where(ok, ll, -np.inf)
        return out

    start = _start(p, rng, n_walkers)
    sampler = emcee.EnsembleSampler(n_walkers, start.shape[1], log_prob, vectorize=True)
    # emcee draws its proposals from its own RandomState: seed it for reproducible baselines
    sampler.random_state = np.random.RandomState(int(rng.integers(2**31))).get_state()
    sampler.run_mcmc(start, n_steps, progress=False)
    chain = sampler.get_chain(discard=int(burn * n_steps), flat=True)
    keep = chain[rng.choice(chain.shape[0], size=n_paths, replace=chain.shape[0] < n_paths)]
    x_out = np.concatenate([[1.0], p.xnorm(p.out_steps)])
    with np.errstate(over="ignore", invalid="ignore"):
        paths = _curves(keep, x_out, x0)
    paths = np.where(np.isfinite(paths), paths, np.nanmedian(paths, axis=0, keepdims=True))
    info = {
        "n_walkers": n_walkers,
        "n_steps": n_steps,
        "acceptance": round(float(np.mean(sampler.acceptance_fraction)), 3),
    }
    return RawForecast(p, paths[:, 1:], anchor=float(np.median(paths[:, 0])), info=info)
