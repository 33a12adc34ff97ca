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

#: ``law="grid"`` (default): the grid law's closed-form fit; any other name goes to laws.fit_law
DEFAULT_LAW = "grid"
def areas(schedule: Schedule, until: int, lam: float) -> tuple[FloatArray, FloatArray]:
    """Forward area ``S1`` (sum of LR / peak) and annealing area ``S2`` of every step to until.

    ``S2 = sum_i m_i`` with ``m_i = lam m_{i-1} + (eta_{i-1} - eta_i)`` (Tissue et al. 2024),
    LR in units of the peak and ``m`` scaled by ``1 - lam`` so a full anneal tends to ``S2 = 1``;
    LR increases (warm-up) are not credited as negative annealing (the grid law's areas,
    :func:`runcast.forecast.laws._grid.grid_areas`).

    Example:
        >>> s = Schedule.from_spec({"kind": "two_stage", "peak": 1.0, "second": 0.0,
        ...                         "switch": 10, "total": 5000})
        >>> s1, s2 = areas(s, 4999, 0.99)
        >>> float(s1[9]), round(float(s2[4999]), 2)
        (10.0, 1.0)
    """
    from runcast.forecast.laws._grid import grid_areas

    s1, s2, _ = grid_areas(schedule, until, (lam,))
    return s1, s2[0]


def fit_grid(p: Prepared, schedule: Schedule, *, n_paths: int = 400, seed: int = 0) -> RawForecast:
    """The grid law (:class:`~runcast.forecast.laws.GridLaw`) fitted to the prepared points and
    sampled to ``until``.

    The prior on ``C`` (the gain of a full anneal, ``laws._grid.ANNEAL_GAIN`` of the loss) is
    what lets a cooldown that has not started yet be forecast from a constant-LR beginning. The
    forecast's ``info["params"]`` holds the best cell, a ``GridLaw`` on the schedule's LR scale.
    """
    from runcast.forecast.laws._grid import grid_areas, grid_posterior

    rng = np.random.default_rng(seed)
    fit_steps = np.round(p.x).astype(np.int64)
    s1, s2, peak = grid_areas(schedule, p.until)
    post = grid_posterior(
        p.y, p.weight, s1[fit_steps], s2[:, fit_steps], peak=peak, center=p.center,
        scale=p.scale, noise_floor=(1.2533 * p.noise_y) ** 2 / float(p.weight.mean()),
    )  # fmt: skip
    at = np.concatenate([[p.last_step], p.out_steps])
    paths = post.sample(s1[at], s2[:, at], n_paths, rng)
    alpha, lam = post.cell(post.best)
    law = post.law(p.center, p.scale)
    info: dict[str, Any] = {
        "law": "grid",
        "alpha": alpha,
        "lam": lam,
        "anneal_gain": float(post.mean[post.best, 2] * p.scale),
        "params": dict(law.params),
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
    mixture). Falls back to the law alone when the PFN is not installed, and to whichever half
    can forecast when the other refuses the curve (its ``method`` says which).
    """
    from runcast.forecast._api import run_method
    from runcast.forecast._calibrate import default_calibration
    from runcast.forecast._registry import METHODS

    if "pfn" not in METHODS:
        return run_method("law", curve, until, schedule, **opts)
    calibrate = bool(opts.pop("calibrate", True))
    # the components' own bands (uncalibrated): the mixture is calibrated as a whole; when one
    # cannot forecast the curve (a fit that takes a positive loss below 0), the other answers
    try:
        law = run_method("law", curve, until, schedule, calibrate=False, **opts)
    except FitError:
        return run_method("pfn", curve, until, schedule, calibrate=calibrate, **opts)
    opts = {**opts, "steps": law.steps}
    try:
        pfn = run_method("pfn", curve, until, schedule, calibrate=False, **opts)
    except FitError:
        return run_method("law", curve, until, schedule, calibrate=calibrate, **opts)
    spread = 1.0
    if calibrate:
        frac = float(law.info["last_observed_step"]) / float(law.steps[-1])
        spread = default_calibration().tau("law+pfn", frac, law.info.get("features"))
    return blend(law, pfn, spread)
