"""Baselines the benchmark measures runcast against: ``last``, ``powerlaw`` and ``mcmc``.

- ``last``: the last smoothed value, held flat (what a person reading a dashboard assumes).
- ``powerlaw``: ``c + a t^-alpha`` fitted by nonlinear least squares (scipy), with a Laplace
  approximation of its parameter uncertainty; the textbook extrapolation.
- ``mcmc``: emcee over Domhan et al.'s combined model (a weighted sum of the parametric families,
  all their parameters, the weights and the noise sampled jointly), the reference that LC-PFN
  is measured against; seconds per forecast. See :mod:`runcast.forecast._mcmc`.

All three go through the same calibration as runcast's methods, so the comparison is of the
forecasters, not of how their bands were tuned.

Example:
    >>> import numpy as np, runcast
    >>> from runcast.forecast._prep import prepare
    >>> s = np.arange(100, 3001, 50)
    >>> p = prepare(runcast.Curve(s, 2.0 + 5.0 * (s / 100.0) ** -0.6), until=10_000)
    >>> raw = fit_powerlaw(p, None, n_paths=100)
    >>> final = float(p.to_values(np.median(raw.paths[:, -1:], axis=0))[0])
    >>> abs(final - (2.0 + 5.0 * 100.0**-0.6)) < 0.005
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import least_squares

from runcast.forecast._calibrate import RawForecast
from runcast.forecast._families import FloatArray
from runcast.forecast._prep import Prepared


def fit_last(
    p: Prepared, schedule: Any = None, *, n_paths: int = 400, seed: int = 0
) -> RawForecast:
    """The last smoothed value (mean of the last 5% of fitted points), flat, with its SE."""
    rng = np.random.default_rng(seed)
    k = max(3, p.y.size // 20)
    tail = p.y[-k:]
    level = float(np.mean(tail))
    se = float(np.std(tail, ddof=1) / np.sqrt(k)) if k > 1 else 0.0
    paths = level + se * rng.standard_normal(n_paths)[:, None] * np.ones(p.out_steps.size)
    return RawForecast(p, paths, anchor=level, info={"level": p.to_values(np.array([level]))[0]})


def _pow_resid(theta: FloatArray, x: FloatArray, y: FloatArray, sw: FloatArray) -> FloatArray:
    c, log_a, log_alpha = theta
    with np.errstate(over="ignore", invalid="ignore"):  # the solver's wild trial steps
        r = sw * (c + np.exp(log_a) * x ** -np.exp(log_alpha) - y)
    return np.asarray(np.where(np.isfinite(r), r, 1e6), dtype=np.float64)


def fit_powerlaw(
    p: Prepared, schedule: Any = None, *, n_paths: int = 400, seed: int = 0
) -> RawForecast:
    """Least-squares ``c + a x^-alpha`` with Laplace (Gauss-Newton covariance) uncertainty."""
    rng = np.random.default_rng(seed)
    x = p.xnorm(p.x)
    sw = np.sqrt(p.weight / p.weight.mean())
    y0 = float(p.y[0])
    start = np.array([0.0, np.log(max(y0, 1e-3)), np.log(0.5)])
    fit = least_squares(_pow_resid, start, args=(x, p.y, sw), method="lm")
    n, k = p.y.size, 3
    sigma2 = float(np.sum(fit.fun**2)) / max(n - k, 1)
    try:
        cov = sigma2 * np.linalg.inv(fit.jac.T @ fit.jac)
        draws = rng.multivariate_normal(fit.x, cov, size=n_paths, method="eigh")
    except (np.linalg.LinAlgError, ValueError):
        draws = np.tile(fit.x, (n_paths, 1))
    x_out = np.concatenate([[1.0], x[:1], p.xnorm(p.out_steps)])
    exps = np.exp(np.clip(draws[:, 2], -10.0, 3.0))
    with np.errstate(over="ignore", invalid="ignore"):
        paths = draws[:, :1] + np.exp(np.clip(draws[:, 1:2], -30, 30)) * x_out ** -exps[:, None]
    # c and a trade off almost exactly when alpha -> 0, so a Gaussian draw can match the data and
    # still explode beyond it: keep draws within 5 fit SDs of the fit at both ends of the data
    point = fit.x[0] + np.exp(fit.x[1]) * x_out ** -np.exp(fit.x[2])
    tol = 5.0 * np.sqrt(sigma2) + 1e-9
    sane = np.all(np.isfinite(paths), axis=1) & np.all(
        np.abs(paths[:, :2] - point[:2]) < tol, axis=1
    )
    if not sane.all():
        pool = paths[sane] if sane.any() else point[None, :]
        paths[~sane] = pool[rng.integers(pool.shape[0], size=int((~sane).sum()))]
    paths = np.delete(paths, 1, axis=1)
    c, log_a, log_alpha = fit.x
    info = {"c": float(c), "a": float(np.exp(log_a)), "alpha": float(np.exp(log_alpha))}
    return RawForecast(p, paths[:, 1:], anchor=float(np.median(paths[:, 0])), info=info)


def _fit_mcmc(
    p: Prepared, schedule: Any = None, *, n_paths: int = 400, seed: int = 0, **opts: Any
) -> RawForecast:
    from runcast.forecast._mcmc import fit_mcmc

    return fit_mcmc(p, n_paths=n_paths, seed=seed, **opts)


RAW = {"last": fit_last, "powerlaw": fit_powerlaw, "mcmc": _fit_mcmc}
