"""The known-schedule path (method ``"law"``): a loss law over the LR schedule, fitted and run on.

When the run's full LR schedule is known (its future steps too), the shape of the rest of the
curve is mostly determined by it: a cosine's decay or a WSD cooldown lowers the loss in a way no
schedule-agnostic family can foresee from the observed part. This path fits one of the loss laws
(:func:`runcast.forecast.laws.fit_law`, in its fast single-start mode) to the observed part,
already binned and despiked by :mod:`runcast.forecast._prep`, and samples its parameter
posterior (Laplace approximation) along the schedule up to ``until``. The calibrated
discrepancy and the observation noise are added by :mod:`runcast.forecast._calibrate` like for
every method.

Example:
    >>> import numpy as np, runcast
    >>> from runcast.forecast._prep import prepare
    >>> spec = {"kind": "cosine", "peak": 1e-3, "end": 1e-4, "warmup": 100, "total": 10_000}
    >>> sched = runcast.Schedule.from_spec(spec)
    >>> s1 = np.cumsum(sched.array(10_000)) / 1e-3
    >>> steps = np.arange(200, 4001, 20)
    >>> curve = runcast.Curve(steps, 2.0 + 3.0 * s1[steps] ** -0.4)
    >>> raw = fit_known(prepare(curve, 9_999), sched, n_paths=50)
    >>> final = float(np.median(raw.prep.to_values(raw.paths[:, -1])))
    >>> bool(final < 2.0 + 3.0 * s1[9999] ** -0.4 + 0.02)
    True
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.errors import FitError, InvalidInputError, RuncastWarning
from runcast.forecast._calibrate import RawForecast
from runcast.forecast._prep import Prepared
from runcast.forecast._types import Forecast
from runcast.schedules import Schedule

FloatArray = npt.NDArray[np.float64]

#: ``law="grid"`` (default): runcast's own fast fit below; any other name goes to laws.fit_law
DEFAULT_LAW = "grid"
#: the exponent grid of the forward-area power law and the momentum decays of the annealing area
ALPHAS: FloatArray = np.geomspace(0.03, 3.0, 48)
LAMBDAS = (0.99, 0.995, 0.999)
#: prior of the loss drop a full anneal (LR to 0) would bring, as a fraction of the loss: cooldowns
#: of LLM pre-training runs bring a few percent (Hagele et al. 2024; Tissue et al. 2024)
ANNEAL_GAIN = 0.04
PRIOR_SD = (2.0, 10.0)  # asymptote and amplitude, normalised units (as the ensemble's)


def areas(schedule: Schedule, until: int, lam: float) -> tuple[FloatArray, FloatArray]:
    """Forward area ``S1`` (sum of LR / peak) and annealing area ``S2`` of every step to until.

    ``S2 = sum_i m_i`` with ``m_i = lam m_{i-1} + (eta_{i-1} - eta_i)`` (Tissue et al. 2024),
    LR in units of the peak and ``m`` scaled by ``1 - lam`` so a full anneal tends to ``S2 = 1``;
    LR increases (warm-up) are not credited as negative annealing.

    Example:
        >>> s = Schedule.from_spec({"kind": "two_stage", "peak": 1.0, "second": 0.0,
        ...                         "switch": 10, "total": 5000})
        >>> s1, s2 = areas(s, 4999, 0.99)
        >>> float(s1[9]), round(float(s2[4999]), 2)
        (10.0, 1.0)
    """
    s1, s2 = _areas(schedule, until, (lam,))
    return s1, s2[0]


@lru_cache(maxsize=16)
def _areas(
    schedule: Schedule, until: int, lams: tuple[float, ...]
) -> tuple[FloatArray, FloatArray]:
    """``S1`` and one ``S2`` row per decay in ``lams``; cached, since a run is forecast again
    and again with the same schedule (every few steps by a pruner), and on a 143k-step schedule
    these O(T) passes are most of a forecast's time."""
    from runcast.forecast.laws._areas import momentum_series

    lrs = np.asarray(schedule.array(until + 1), dtype=np.float64)
    peak = float(lrs.max()) if lrs.size and lrs.max() > 0 else 1.0
    eta = lrs / peak
    s1 = np.cumsum(eta)  # the laws' forward area over every step
    # the laws' momentum area (one tested area code), drops only, scaled so a full anneal -> 1
    s2 = np.stack([(1.0 - lam) * np.cumsum(momentum_series(eta, lam, anneal_only=True))
                   for lam in lams])  # fmt: skip
    s1.setflags(write=False)
    s2.setflags(write=False)
    return s1, s2


def _bayes_k(
    X: FloatArray,
    y: FloatArray,
    w: FloatArray,
    prior_mean: FloatArray,
    prior_sd: FloatArray,
    sigma2: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Gaussian posterior of ``y ~ X b`` for a batch of designs ``X[K, n, k]``.

    Returns the posterior means ``[K, k]``, covariances ``[K, k, k]`` and log evidences ``[K]``.
    """
    Xw = X * w[None, :, None]
    prec0 = np.diag(1.0 / prior_sd**2)
    # batched matmuls, not einsum: numpy's einsum runs these (K, n, 3) contractions unblocked
    # (measured on 144 designs x 200 points: 5.1 ms vs 2.4 ms; a law forecast with its backtest
    # makes four calls); tests/forecast/test_known.py checks it against the plain per-design form
    XwT = Xw.transpose(0, 2, 1)
    P = XwT @ X / sigma2 + prec0[None]
    b = XwT @ y / sigma2 + (prec0 @ prior_mean)[None]
    cov = np.linalg.inv(P)
    mean = (cov @ b[:, :, None])[:, :, 0]
    r = y[None, :] - (X @ mean[:, :, None])[:, :, 0]
    d = mean - prior_mean[None]
    quad = (r * r * w[None]).sum(axis=1) / sigma2 + ((d @ prec0) * d).sum(axis=1)
    _, logdet = np.linalg.slogdet(P)
    log_ev = -0.5 * quad - 0.5 * logdet - float(np.sum(np.log(prior_sd)))
    return mean, cov, log_ev


def fit_grid(p: Prepared, schedule: Schedule, *, n_paths: int = 400, seed: int = 0) -> RawForecast:
    """Tissue et al.'s law ``L0 + A S1^-alpha - C S2`` on a grid of (alpha, lam), Bayesian.

    For every cell the linear parameters ``(L0, A, C)`` have a Gaussian prior and posterior in
    closed form (the same construction as the ensemble's), which makes the fit a few batched
    3x3 solves (~5 ms) with no optimiser to diverge. The prior on ``C`` (the gain of a full
    anneal, :data:`ANNEAL_GAIN` of the loss) is what lets a cooldown that has not started yet
    be forecast from a constant-LR beginning.
    """
    rng = np.random.default_rng(seed)
    fit_steps = np.round(p.x).astype(np.int64)
    w = p.weight / p.weight.mean()
    gain = ANNEAL_GAIN * abs(p.center) / p.scale
    prior_mean = np.array([0.0, 0.0, gain])
    prior_sd = np.array([*PRIOR_SD, gain])
    designs, cols = [], []
    s1, s2_all = _areas(schedule, p.until, LAMBDAS)
    for s2 in s2_all:
        x = s1[fit_steps] / s1[p.last_step]
        g = x[None, :] ** -ALPHAS[:, None]
        g = g / g.max(axis=1, keepdims=True)
        X = np.stack([np.ones_like(g), g, -np.broadcast_to(s2[fit_steps], g.shape)], axis=2)
        designs.append(X)
        cols.append((s1, s2))
    X = np.concatenate(designs)
    # noise: the best (nearly unregularised) fit's residual SD, floored by the measured bin noise
    ls_mean, _, _ = _bayes_k(X, p.y, w, prior_mean, 1e3 * prior_sd, 1.0)
    sse = np.sum(w * (p.y[None] - (X @ ls_mean[:, :, None])[:, :, 0]) ** 2, axis=1)
    floor = (1.2533 * p.noise_y) ** 2 / float(p.weight.mean())
    sigma2 = max(float(np.nanmin(sse)) / max(float(w.sum()) - 4.0, 1.0), floor, 1e-12)
    mean, cov, log_ev = _bayes_k(X, p.y, w, prior_mean, prior_sd, sigma2)
    finite = np.isfinite(log_ev) & np.all(np.isfinite(mean), axis=1)
    ok = (mean[:, 1] > 0) & finite
    if not finite.any():
        # a degenerate curve or schedule (an area of 0 at a fitted step): no design fits, and
        # sampling from NaN weights would fail inside numpy; auto falls back to the PFN
        raise FitError(
            "The schedule-aware law cannot be fitted to this curve (no finite fit over its "
            "schedule). Use method='pfn' or method='ensemble'."
        )
    log_ev = np.where(ok if ok.any() else finite, log_ev, -np.inf)
    prob = np.exp(log_ev - log_ev.max())
    prob /= prob.sum()
    picks = rng.choice(prob.size, size=n_paths, p=prob)
    chol = np.linalg.cholesky(cov[picks] + 1e-12 * np.eye(3)[None])
    coefs = mean[picks] + np.einsum("kij,kj->ki", chol, rng.standard_normal((n_paths, 3)))
    coefs[:, 1:] = np.maximum(coefs[:, 1:], 0.0)
    at = np.concatenate([[p.last_step], p.out_steps])
    paths = np.empty((n_paths, at.size))
    n_alpha = len(ALPHAS)
    for li, (s1, s2) in enumerate(cols):
        rows = np.flatnonzero(picks // n_alpha == li)
        if rows.size == 0:
            continue
        alpha = ALPHAS[picks[rows] % n_alpha]
        x_fit0 = s1[fit_steps[0]] / s1[p.last_step]
        g = (s1[at][None, :] / s1[p.last_step]) ** -alpha[:, None] / x_fit0 ** -alpha[:, None]
        paths[rows] = coefs[rows, :1] + coefs[rows, 1:2] * g - coefs[rows, 2:3] * s2[at][None, :]
    best = int(np.argmax(prob))
    info: dict[str, Any] = {
        "law": "momentum-grid",
        "alpha": float(ALPHAS[best % n_alpha]),
        "lam": LAMBDAS[best // n_alpha],
        "anneal_gain": float(mean[best, 2] * p.scale),
    }
    return RawForecast(p, paths[:, 1:], anchor=float(np.median(paths[:, 0])), info=info)


def fit_known(
    p: Prepared,
    schedule: Schedule | None,
    *,
    n_paths: int = 400,
    seed: int = 0,
    law: str = DEFAULT_LAW,
) -> RawForecast:
    """Fit ``law`` to the prepared points over ``schedule``; sample its paths to ``until``."""
    from runcast.forecast.laws import fit_law

    if schedule is None:
        raise InvalidInputError(
            "method='law' needs the run's LR schedule up to `until`: pass schedule=..., or use "
            "method='ensemble' to forecast without one."
        )
    if p.direction != "down":
        raise InvalidInputError(
            "method='law' forecasts a loss over its LR schedule, but this curve rises (an "
            "accuracy?). Use method='ensemble', or pass direction='down' if it is a loss."
        )
    if law == "grid":
        return fit_grid(p, schedule, n_paths=n_paths, seed=seed)
    rng = np.random.default_rng(seed)
    steps = np.round(p.x).astype(np.int64)
    points = Curve(steps, p.to_values(p.y), schedule=schedule)
    with warnings.catch_warnings():
        # a poor-fit warning of the law is reported in the forecast's info instead
        warnings.simplefilter("ignore", RuncastWarning)
        fitted = fit_law(points, law, fast=True, seed=seed)
    at = np.concatenate([[p.last_step], p.out_steps]).astype(np.int64)
    thetas = fitted._sample_thetas(n_paths, rng)
    values = fitted._predict_theta(schedule, at, thetas)
    point = fitted._predict_theta(schedule, at, fitted.theta)[0]
    bad = ~np.all(np.isfinite(values) & (values > 0), axis=1)
    values[bad] = point  # a parameter draw off the law's valid region: use the point fit
    paths = (values - p.center) / p.scale  # a loss: sign is +1
    info: dict[str, Any] = {
        "law": fitted.name,
        "params": {k: float(v) for k, v in fitted.params.items()},
        "rms_rel_error": float(fitted.info.get("rms_rel_error", np.nan)),
    }
    return RawForecast(p, paths[:, 1:], anchor=float((point[0] - p.center) / p.scale), info=info)


RAW = {"law": fit_known}


def blend(law: Forecast, pfn: Forecast, spread: float = 1.0) -> Forecast:
    """The equal mixture of two forecasts of the same steps, each one's spread scaled by ``spread``.

    Method ``"law+pfn"``'s mixture (:func:`runcast.forecast._mixture.mixture`): two calibrated
    forecasts whose medians differ make a mixture wider than either, so the mixture of the raw
    forecasts has a calibration factor of its own.

    Example:
        >>> a = Forecast([1, 2], np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]))
        >>> b = Forecast([1, 2], np.array([[5.0, 5.0], [6.0, 6.0], [7.0, 7.0], [8.0, 8.0]]))
        >>> blend(a, b, 0.5).samples[:, 0].tolist()
        [1.75, 2.75, 5.75, 6.75]
    """
    from runcast.forecast._mixture import mixture

    info: dict[str, Any] = {
        "law": law.info,
        "pfn": {k: v for k, v in pfn.info.items() if k != "quantiles"},
    }
    return mixture(law, pfn, spread, 0.5, method="law+pfn", info=info)


def forecast_blend(curve: Curve, until: int, schedule: Schedule | None, **opts: Any) -> Forecast:
    """Method ``"law+pfn"``: an equal mixture of the law's and the schedule-aware PFN's forecasts.

    Both forecast the same steps; half of the paths come from each. The two err in different
    places (the law early in a run, the PFN on curves unlike its prior), so the mixture is more
    robust than either. The mixture of the two raw (uncalibrated) forecasts is calibrated as a
    whole: each component's spread is scaled by the ``"law+pfn"`` calibration factor
    (``f.info["spread"]``, from the law's features; ``calibrate=False`` keeps 1, the raw
    mixture). Falls back to the law alone when the PFN is not installed.
    """
    from runcast.forecast._api import run_method
    from runcast.forecast._calibrate import default_calibration
    from runcast.forecast._registry import METHODS

    if "pfn" not in METHODS:
        return run_method("law", curve, until, schedule, **opts)
    calibrate = bool(opts.pop("calibrate", True))
    # the components' own bands (uncalibrated): the mixture is calibrated as a whole
    law = run_method("law", curve, until, schedule, calibrate=False, **opts)
    opts = {**opts, "steps": law.steps}
    pfn = run_method("pfn", curve, until, schedule, calibrate=False, **opts)
    spread = 1.0
    if calibrate:
        frac = float(law.info["last_observed_step"]) / float(law.steps[-1])
        spread = default_calibration().tau("law+pfn", frac, law.info.get("features"))
    return blend(law, pfn, spread)
