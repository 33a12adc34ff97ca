"""Forecasting method ``"pfn"``: the learned amortised forecaster, conditioned on the LR schedule.

One forward pass of a small transformer trained on synthetic curves (see ``_prior.py``) turns the
observed part of a curve, and the run's LR schedule when known, into the predictive distribution
of every future value. No fitting, so it takes a few milliseconds whatever the curve.

Steps: flip accuracies so the curve falls; bin dense curves to at most 100 points (medians, which
also removes spikes); map time to ``step / until`` and values to the affine-free squashed space
of ``_features.py``; run the network; read quantiles off its bar distributions; map them back;
for binned per-step curves widen by the per-step noise the bins averaged away.

Example:
    >>> import numpy as np, runcast
    >>> from runcast.forecast.pfn import pfn_forecast
    >>> s = np.arange(100, 2001, 100)
    >>> f = pfn_forecast(runcast.Curve(s, 2.0 + 3.0 * (s / 100.0) ** -0.5), until=8000)
    >>> 2.0 < f.final.median < 2.5, f.method
    (True, 'pfn')
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from runcast.curve import Curve
from runcast.errors import InvalidInputError, NotEnoughDataError
from runcast.forecast._calibrate import (
    FLOOR_SHARE,
    positive_warp,
    refuse_below_zero,
    soft_floor,
    turned,
)
from runcast.forecast._prep import as_until, check_magnitude, out_grid
from runcast.forecast._registry import register_method
from runcast.forecast._types import Direction, Forecast
from runcast.forecast.pfn._features import (
    FloatArray,
    lr_blocks_from_array,
    nanmedian_rows,
    neutral_grid,
    normalise,
    schedule_grid,
    squash,
    token_features,
    unsquash,
)
from runcast.forecast.pfn._infer import bar_quantiles, load_weights, logits
from runcast.schedules import Schedule

#: the most observed tokens the network was trained with; denser curves are binned to this
MAX_CONTEXT = 100
#: fewest points the network was trained with
MIN_POINTS = 4
#: the network is asked at most this many future times; quantiles in between are interpolated
#: (the forecast is smooth in time, and each query token costs as much as an observed one)
MAX_QUERIES = 64
LEVELS = np.concatenate([[0.002, 0.01], np.linspace(0.025, 0.975, 39), [0.99, 0.998]])


def _direction(v: FloatArray) -> Direction:
    """``"up"`` when the curve's last tenth sits above its first tenth (an accuracy)."""
    k = max(1, v.size // 10)
    return "up" if np.median(v[-k:]) > np.median(v[:k]) else "down"


def _bin(step: FloatArray, value: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """Equal-count bins of a dense curve: mean step, median value, and the per-point noise sd.

    The median makes a bin immune to a few spikes; the noise (robust MAD of the residuals from
    the bin medians) lets the forecast put back the scatter of single per-step values.
    """
    edges = np.linspace(0, step.size, MAX_CONTEXT + 1).astype(np.int64)
    sizes = np.diff(edges)
    # one padded (bins, largest bin) gather instead of a Python loop over bins
    idx = edges[:-1, None] + np.arange(sizes.max())[None, :]
    valid = np.arange(sizes.max())[None, :] < sizes[:, None]
    idx = np.minimum(idx, step.size - 1)
    bs = np.where(valid, step[idx], 0.0).sum(axis=1) / sizes
    bv = nanmedian_rows(np.where(valid, value[idx], np.nan))
    resid = value - np.repeat(bv, sizes)
    noise = 1.4826 * float(np.median(np.abs(resid)))
    return bs, bv, noise


def _default_steps(last: int, until: int) -> npt.NDArray[np.int64]:
    n = min(200, until - last)
    return np.unique(np.round(np.linspace(last + 1, until, n)).astype(np.int64))


@functools.lru_cache(maxsize=32)
def _schedule_grid(schedule: Schedule | None, until: int) -> FloatArray:
    # cached: a pruner or dashboard forecasts the same run's schedule again and again
    if schedule is None:
        return neutral_grid(1)
    return schedule_grid(lr_blocks_from_array(schedule.array(until + 1), until)[None, :])


@dataclass
class PfnQuantiles:
    """The network's trend quantiles of one forecast, before calibration and per-step noise.

    ``yq[j, k]`` is the level ``LEVELS[k]`` quantile at ``steps[j]``, in the falling orientation
    (``sign`` flips an accuracy back). Kept apart so that the evaluation harness can score many
    spread factors from one forward pass.
    """

    steps: npt.NDArray[np.int64]
    yq: FloatArray
    sign: float
    direction: Direction
    point_sd: float  # per-step scatter the bin medians removed (0 when not binned)
    fraction: float  # last observed step / until
    info: dict[str, Any]
    positive: bool = False  # a loss whose every observed value is > 0 (it stays positive)
    turned: float = 0.0  # how far the observed curve came back up (_calibrate.turned)

    def calibration_features(self) -> dict[str, float]:
        """What the calibration model sees (as :func:`runcast.forecast._calibrate.features`)."""
        med = self.yq[:, LEVELS.size // 2]
        lf = float(np.log(max(self.fraction, 1e-6)))
        change = abs(float(med[-1] - med[0])) + float(self.yq[-1, -5] - self.yq[-1, 4])
        noise = max(self.point_sd, 1e-12)
        return {
            "log_frac": lf,
            "log_frac2": lf * lf,
            "log_noise": float(np.clip(np.log(noise / max(change, 1e-12)), -8.0, 8.0)),
            "turned": self.turned,
        }

    def finish(self, spread: float = 1.0, *, noise: bool = True, n_paths: int = 512) -> Forecast:
        """The :class:`Forecast`, its trend spread scaled by ``spread`` around the median."""
        mid = LEVELS.size // 2  # LEVELS holds 0.5 exactly, in the middle
        med = self.yq[:, mid : mid + 1]
        yq = med + spread * (self.yq - med)
        if self.point_sd > 0 and noise:
            # widen in quadrature by the per-point scatter the bin medians removed (exact when
            # the forecast is gaussian; keeps each step's median and the quantile coupling)
            extra = self.point_sd * ndtri(LEVELS)[None, :]
            yq = med + np.sign(yq - med + extra * 1e-12) * np.sqrt((yq - med) ** 2 + extra**2)
        if self.positive:
            # a loss cannot go below zero: bend the far lower tail away from it (the warp is
            # monotone, so it maps quantiles to quantiles, and it keeps the median)
            yq = positive_warp(yq.T, yq[:, mid].copy()).T  # it takes (levels, steps)
        info = {**self.info, "spread": round(float(spread), 4)}
        return Forecast.from_quantiles(
            self.steps,
            LEVELS,
            (self.sign * yq).T,
            n_paths=n_paths,
            direction=self.direction,
            method="pfn",
            info=info,
        )


@dataclass(frozen=True)
class Encoded:
    """An observed curve in the network's input space (what inference and fine-tuning share).

    ``step``/``value``: the points the network sees (binned medians for a dense curve, values
    flipped to fall for an accuracy); ``obs_z``: ``(1, n)`` squashed normalised values;
    ``ref``/``scale``: the affine map (``(1,)`` each); ``grid``: the schedule features.
    """

    step: FloatArray
    value: FloatArray
    obs_z: FloatArray
    ref: FloatArray
    scale: FloatArray
    grid: FloatArray
    sign: float
    dirn: Direction
    point_sd: float
    binned: bool


def encode(
    c: Curve, until: int, schedule: Schedule | None, direction: Direction | None = None
) -> Encoded:
    """Map the finite observed curve ``c`` into the network's input space (module docstring).

    Example:
        >>> import numpy as np
        >>> s = np.arange(1, 301)
        >>> e = encode(Curve(s, 2.0 + s**-0.5), 1000, None)
        >>> e.binned, e.step.size, bool(abs(e.obs_z[0, -1]) < 0.1)
        (True, 100, True)
    """
    step = c.step.astype(np.float64)
    value = c.value.astype(np.float64)
    dirn: Direction = direction or _direction(value)
    sign = -1.0 if dirn == "up" else 1.0
    point_sd = 0.0
    binned = step.size > MAX_CONTEXT
    if binned:
        step, value, point_sd = _bin(step, sign * value)
    else:
        value = sign * value
    ref, scale = normalise(value[None, :], np.ones((1, step.size), dtype=bool))
    obs_z = np.clip(squash((value[None, :] - ref[:, None]) / scale[:, None]), -10.0, 10.0)
    grid = _schedule_grid(schedule, until)
    return Encoded(step, value, obs_z, ref, scale, grid, sign, dirn, point_sd, binned)


def calibration_key(schedule: Schedule | None) -> str:
    """The calibration model's name for the PFN with or without a schedule."""
    return "pfn" if schedule is None else "pfn+schedule"


def pfn_quantiles(
    curve: Curve,
    until: int,
    schedule: Schedule | None = None,
    *,
    steps: npt.ArrayLike | None = None,
    direction: Direction | None = None,
    weights: str | Path | None = None,
) -> PfnQuantiles:
    """One forward pass: the trend quantiles of ``curve`` (arguments of :func:`pfn_forecast`)."""
    c = curve.finite()
    check_magnitude(c.value)
    if len(c) < MIN_POINTS:
        raise NotEnoughDataError(
            f"The pfn forecaster needs at least {MIN_POINTS} finite points, but the curve has "
            f"{len(c)}. Log more points (or forecast later in the run)."
        )
    until = as_until(until)
    if until <= c.last_step:
        raise InvalidInputError(
            f"until={until} must be after the last observed step {c.last_step}; "
            "pass the step the run will end at."
        )
    want = (
        _default_steps(c.last_step, until)
        if steps is None
        else out_grid(c.last_step, until, steps, 0)
    )
    enc = encode(c, until, schedule, direction)
    step, ref, scale, grid, sign, dirn = enc.step, enc.ref, enc.scale, enc.grid, enc.sign, enc.dirn
    point_sd, binned = enc.point_sd, enc.binned
    qsteps = (
        want.astype(np.float64)
        if want.size <= MAX_QUERIES
        else np.linspace(float(want[0]), float(want[-1]), MAX_QUERIES)
    )
    w = load_weights(weights)
    lg = logits(
        w,
        token_features(grid, step[None, :] / until),
        enc.obs_z,
        np.ones((1, step.size), dtype=bool),
        token_features(grid, qsteps[None, :] / until),
    )
    zq = bar_quantiles(lg[0], w.borders, LEVELS)  # (n_query, n_levels)
    yq = ref[0] + scale[0] * unsquash(zq)
    if want.size > MAX_QUERIES:
        # one interpolation for all levels: the query steps are evenly spaced
        pos = (want - qsteps[0]) / (qsteps[1] - qsteps[0])
        i0 = np.clip(np.floor(pos).astype(np.int64), 0, qsteps.size - 2)
        frac = np.clip(pos - i0, 0.0, 1.0)[:, None]
        yq = yq[i0] * (1.0 - frac) + yq[i0 + 1] * frac
    info: dict[str, Any] = {
        "context_points": int(step.size),
        "binned": bool(binned),
        "schedule": schedule is not None,
        "point_noise": float(point_sd),
    }
    positive = dirn == "down" and bool(np.min(c.value) > 0)
    floor = FLOOR_SHARE * float(np.min(c.value))
    median = yq[:, LEVELS.size // 2]
    value = enc.value
    if positive:
        # the network extrapolated past what a loss can do: no forecast (as every method)
        refuse_below_zero("pfn", median, want, last_step=c.last_step, n_points=len(c))
    if positive and np.any(median < 10.0 * floor):
        # the median heads for 0: its lower quantiles go through a soft floor (the positive
        # warp in finish() works around the median, which is too close to 0 here to hold them)
        yq = soft_floor(yq, floor)
    return PfnQuantiles(want, yq, sign, dirn, point_sd, c.last_step / until, info, positive,
                        turned(value))  # fmt: skip


def pfn_forecast(
    curve: Curve,
    until: int,
    schedule: Schedule | None = None,
    *,
    steps: npt.ArrayLike | None = None,
    direction: Direction | None = None,
    noise: bool = True,
    n_paths: int = 512,
    weights: str | Path | None = None,
    calibrate: bool = True,
    **_: Any,
) -> Forecast:
    """Forecast ``curve`` up to step ``until`` with the PFN (registered as method ``"pfn"``).

    Args:
        curve: the observed points (NaNs are dropped); its schedule is used if ``schedule`` is None.
        until: the last step to forecast; must be after the last observed step.
        schedule: the run's LR schedule, covering ``until``; None forecasts without one.
        steps: the steps to forecast (default: up to 200 from the next step to ``until``).
        direction: ``"down"`` (a loss) or ``"up"`` (an accuracy); inferred when None.
        noise: forecast single logged values (for dense per-step curves, the intervals include
            the per-step scatter that binning averaged away); False forecasts the smoothed trend.
        n_paths: sample paths in the returned (quantile-coupled) forecast.
        weights: a weights file from ``python -m runcast.forecast.pfn.train`` (default: shipped).
        calibrate: scale the network's spread by the shipped calibration model (fitted on real
            curves by ``bench/forecast_cutoff.py --write-calibration``); False keeps it raw.

    Example:
        >>> import numpy as np, runcast
        >>> s = np.arange(0, 3001, 50)
        >>> sch = runcast.Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "total": 10000})
        >>> c = runcast.Curve(s, 3.0 + 2.0 * (1 + s / 50.0) ** -0.4)
        >>> f = pfn_forecast(c, 10000, sch)
        >>> bool(f.final.median < c.value[-1]), f.info["schedule"]
        (True, True)
    """
    from runcast.forecast._calibrate import default_calibration

    t0 = time.perf_counter()
    schedule = schedule if schedule is not None else curve.schedule
    q = pfn_quantiles(curve, until, schedule, steps=steps, direction=direction, weights=weights)
    spread = 1.0
    feats = q.calibration_features()
    if calibrate:
        key = calibration_key(schedule)
        spread = default_calibration().tau(key, q.fraction, feats)
    out = q.finish(spread, noise=noise, n_paths=n_paths)
    out.info["features"] = dict(feats)  # what the calibration saw, as the other methods record
    out.info["seconds"] = time.perf_counter() - t0
    return out


register_method("pfn")(pfn_forecast)
