"""Interval calibration: a fitted model-discrepancy term, so that 80% bands hold ~80% of the truth.

A parametric posterior (ensemble or law) only knows the uncertainty of its parameters *given its
family is right*; on real curves the family is never quite right, and its bands are far too
narrow. Every method therefore returns a :class:`RawForecast` (noise-free posterior paths), and
:meth:`RawForecast.finish` adds two things before building the :class:`Forecast`:

1. a model-discrepancy path ``tau * z_i * h(t)`` per sample path ``i`` (then re-centred so the
   per-step median stays the posterior's), where ``z_i`` is one
   Student-t(4) draw per path (errors of an extrapolation are coherent along the path, and
   heavy-tailed), and ``h(t) = |m(t) - m(t_c)| + 0.25 * D * log(t / t_c)`` grows with the
   predicted remaining change ``m(t) - m(t_c)`` since the cut-off ``t_c`` and with the log
   horizon in units of ``D``, how much the curve fell over the second half of the observed steps
   (so ``tau`` carries over between curves of any scale and any logging start);
2. the per-step observation noise measured on the observed part (``noise=True``), because a
   forecast of per-step training loss must cover per-step values, not only their trend.

``tau`` depends on the method and on how much of the run is observed (``fraction = last
observed step / until``); it is read from ``_calibration.json`` and interpolated in log
fraction. How the shipped table was fitted (honestly: never on the curves it is judged on) is
in :func:`fit_tau` and ``bench/forecast_cutoff.py --write-calibration``.

Example:
    >>> cal = Calibration({"ensemble": ((0.1, 2.0), (0.4, 1.0))})
    >>> cal.tau("ensemble", 0.2), cal.tau("ensemble", 0.9), cal.tau("other", 0.3)
    (1.5, 1.0, 1.0)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.forecast._prep import Prepared
from runcast.forecast._types import Forecast

FloatArray = npt.NDArray[np.float64]
TABLE_PATH = Path(__file__).with_name("_calibration.json")
T_DOF = 4.0
HORIZON_FLOOR = 0.25


@dataclass
class RawForecast:
    """A method's noise-free posterior paths, before calibration and observation noise."""

    prep: Prepared
    paths: FloatArray  # (n_paths, len(prep.out_steps)), normalised falling orientation
    anchor: float  # the model's median value at the last observed step (normalised)
    info: dict[str, Any] = field(default_factory=dict)

    def spread_shape(self) -> FloatArray:
        """``h(t)``: how the discrepancy grows over the forecast steps (normalised units)."""
        m = np.median(self.paths, axis=0)
        horizon = np.log(self.prep.out_steps / self.prep.last_step)
        floor = HORIZON_FLOOR * self.prep.recent_drop * horizon
        return np.asarray(np.abs(m - self.anchor) + floor, dtype=np.float64)

    def finish(self, method: str, tau: float, *, noise: bool = True, seed: int = 0) -> Forecast:
        """The calibrated :class:`Forecast` in the curve's own units.

        Args:
            method: the method name recorded in the forecast.
            tau: the discrepancy scale (from :class:`Calibration`).
            noise: add the per-step observation noise (forecast observed values, not the trend).
            seed: seeds the discrepancy and noise draws.
        """
        if self.info.get("constant"):
            tau = 0.0  # a constant curve: a flat forecast, no invented spread
        tau = tau * float(self.info.get("backtest_ratio", 1.0))
        rng = np.random.default_rng(seed + 7919)
        n = self.paths.shape[0]
        z = np.asarray(rng.standard_t(T_DOF, size=n), dtype=np.float64)
        y = self.paths + tau * z[:, None] * self.spread_shape()[None, :]
        # the discrepancy widens the bands around the posterior median, it must not move it: on
        # a skewed posterior, adding a wide symmetric term would drag the median to the mean
        posterior_median = np.median(self.paths, axis=0)
        y = y + (posterior_median - np.median(y, axis=0))[None, :]
        values = self.prep.to_values(y)
        if noise and self.prep.noise_sd > 0:
            values = values + self.prep.noise_sd * rng.standard_normal(values.shape)
        if self.prep.direction == "down" and self.prep.to_values(self.prep.y).min() > 0:
            values = positive_warp(values, self.prep.to_values(posterior_median))
        info = dict(self.info)
        info.update(
            {
                "tau": round(float(tau), 4),
                "noise_sd": float(self.prep.noise_sd),
                "observation_noise": noise,
                "last_observed_step": self.prep.last_step,
                "n_points": self.prep.n_points,
            }
        )
        return Forecast(
            self.prep.out_steps, values, direction=self.prep.direction, method=method, info=info
        )


def positive_warp(values: FloatArray, median: FloatArray) -> FloatArray:
    """Keep a positive metric's paths positive: ``v = d + sqrt(d^2 + m^2)``, ``d = v - m``.

    A loss (cross-entropy, MSE) cannot go below zero, but an additive discrepancy with heavy
    tails can push far paths there. The warp is monotone, maps the real line onto (0, inf),
    leaves the median ``m`` where it is (d = 0 gives m) and changes nothing near it (slope 1 at
    d = 0), so calibrated central intervals stay as they were while their far tails bend away
    from zero (and far upper tails, ``d >> m``, stretch up to 2x: it is exp(asinh(d / m)) in
    relative terms). It applies only where the median itself is positive.

    Example:
        >>> paths = np.array([[1.0, -4.0], [2.0, 1.0], [3.0, 6.0]])
        >>> positive_warp(paths, np.array([2.0, 1.0])).round(3)
        array([[ 1.236,  0.099],
               [ 2.   ,  1.   ],
               [ 3.236, 10.099]])
    """
    m = np.broadcast_to(median, values.shape)
    d = values - m
    warped = d + np.sqrt(d * d + m * m)
    # an even number of paths takes the median between two paths, where the warp's curvature
    # moves it by ~1e-5: rescale so the median is exactly the one given
    mid = np.median(warped, axis=0)
    warped = warped * np.where(mid > 0, np.asarray(median) / np.where(mid > 0, mid, 1.0), 1.0)
    return np.where(m > 0, warped, values)


@dataclass(frozen=True)
class Calibration:
    """``tau`` per method as a piecewise-linear function of log(observed fraction)."""

    table: Mapping[str, Sequence[tuple[float, float]]]

    def tau(self, method: str, fraction: float) -> float:
        """The discrepancy scale for ``method`` when ``fraction`` of the run is observed."""
        pts = sorted(self.table.get(method, ()))
        if not pts:
            return 1.0
        fr = np.log([f for f, _ in pts])
        taus = [t for _, t in pts]
        return float(np.interp(np.log(max(fraction, 1e-6)), fr, taus))

    def to_json(self) -> str:
        """The table as JSON (what ``_calibration.json`` holds)."""
        return json.dumps({k: [list(p) for p in v] for k, v in self.table.items()}, indent=1)


@lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The shipped table (``tau = 1`` everywhere when the file is absent)."""
    if not TABLE_PATH.exists():
        return Calibration({})
    raw = json.loads(TABLE_PATH.read_text())
    return Calibration({k: tuple((float(f), float(t)) for f, t in v) for k, v in raw.items()})


def coverage(forecast: Forecast, steps: FloatArray, truth: FloatArray, level: float) -> float:
    """The share of ``truth`` values (at forecast ``steps``) inside the ``level`` interval.

    Example:
        >>> f = Forecast([1, 2], np.tile(np.linspace(0, 1, 101)[:, None], (1, 2)))
        >>> coverage(f, np.array([1, 2]), np.array([0.5, 0.95]), 0.8)
        0.5
    """
    lo, hi = forecast.interval(level)
    j = np.searchsorted(forecast.steps, steps)
    inside = (truth >= lo[j]) & (truth <= hi[j])
    return float(np.mean(inside))


def fit_tau(
    cases: Sequence[Any],
    cover: Callable[[Any, float], tuple[float, float]],
    *,
    targets: tuple[float, float] = (0.8, 0.95),
    grid: FloatArray | None = None,
) -> float:
    """The ``tau`` whose mean 80%/95% coverage over ``cases`` is closest to the targets.

    ``cover(case, tau)`` returns the (80%, 95%) coverage of one case at that ``tau``. The loss is
    the squared miss of both levels, so one scale serves both (the Student-t shape of the
    discrepancy is what lets it).

    Example:
        >>> fit_tau([0], lambda case, tau: (min(tau / 2, 1.0), min(tau / 1.6, 1.0)),
        ...         grid=np.array([1.0, 1.55, 1.6, 2.0]))
        1.55
    """
    taus = (
        grid
        if grid is not None
        else np.round(np.concatenate([[0.0], np.geomspace(0.05, 20, 60)]), 3)
    )
    best, best_loss = 1.0, np.inf
    for tau in taus:
        cov = np.array([cover(c, float(tau)) for c in cases]).mean(axis=0)
        loss = float((cov[0] - targets[0]) ** 2 + (cov[1] - targets[1]) ** 2)
        if loss < best_loss:
            best, best_loss = float(tau), loss
    return best
