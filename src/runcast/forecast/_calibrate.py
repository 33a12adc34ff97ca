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

``tau`` is a function of what the forecaster can see (:func:`features`): how much of the run
is observed, how far off the method was when the run backtested itself, how noisy the curve is
against the change still to come, and how much of the LR schedule is still to be annealed. Per
method it is a log-linear model (:class:`Calibration`) read from ``_calibration.json``, fitted
by :func:`fit_log_tau` so that coverage is on target at every cut-off over all runs *and* per
family of runs (``bench/forecast_lofo.py --write-calibration``; that bench judges each family
of the corpus by a model fitted without it).

Example:
    >>> cal = Calibration({"ensemble": (0.0, -0.5)})  # log tau = -0.5 log(fraction observed)
    >>> round(cal.tau("ensemble", 0.25), 3), cal.tau("other", 0.3)
    (2.0, 1.0)
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

from runcast.errors import FitError
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

    def spread_shape(self, median: FloatArray | None = None) -> FloatArray:
        """``h(t)``: how the discrepancy grows over the forecast steps (normalised units).

        ``median``: the paths' per-step median when the caller has it (a median over 400 paths
        at every step is the costliest part of finishing a dense forecast).
        """
        m = np.median(self.paths, axis=0) if median is None else median
        return self._spread(m, self.prep.out_steps)

    def spread_end(self) -> float:
        """``h`` at the last forecast step (:meth:`spread_shape`'s last value, one median)."""
        m = np.median(self.paths[:, -1:], axis=0)
        return float(self._spread(m, self.prep.out_steps[-1:])[0])

    def _spread(self, median: FloatArray, steps: npt.NDArray[np.int64]) -> FloatArray:
        # the distance the median travels from the anchor, floored by a share of the recent drop
        # per log-step of horizon (a flat forecast still grows uncertain)
        horizon = np.log(steps / self.prep.last_step)
        floor = HORIZON_FLOOR * self.prep.recent_drop * horizon
        return np.asarray(np.abs(median - self.anchor) + floor, dtype=np.float64)

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
        posterior_median = np.median(self.paths, axis=0)
        y = self.paths + tau * z[:, None] * self.spread_shape(posterior_median)[None, :]
        # the discrepancy widens the bands around the posterior median, it must not move it: on
        # a skewed posterior, adding a wide symmetric term would drag the median to the mean
        if tau != 0.0:
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
    root = np.sqrt(d * d + m * m)
    # d + root cancels to 0.0 for a path far below the median (d << -m); the same value written
    # as m^2 / (root - d) stays positive there
    with np.errstate(divide="ignore", invalid="ignore"):
        warped = np.where(d >= 0, d + root, (m * m) / (root - d))
    # an even number of paths takes the median between two paths, where the warp's curvature
    # moves it by ~1e-5: rescale so the median is exactly the one given
    mid = np.median(warped, axis=0)
    warped = warped * np.where(mid > 0, np.asarray(median) / np.where(mid > 0, mid, 1.0), 1.0)
    return np.where(m > 0, warped, values)


#: a positive loss's forecast is kept above 0 smoothly, on this share of its lowest observed value
FLOOR_SHARE = 0.05


def soft_floor(values: FloatArray, scale: float) -> FloatArray:
    """``scale * log(1 + exp(values / scale))``: a positive loss's forecast kept above 0.

    The PFN forecasts in units normalised by the observed curve and knows nothing of a loss
    being positive: on a short, very noisy curve (a few minibatch losses of 10, 4, 0.6) its
    median can head for 0, with lower quantiles far below it, too close for
    :func:`positive_warp` (which works around the median) to hold them. Applied only then; a
    median at or below 0 is no forecast at all (:func:`refuse_below_zero`). The map is monotone
    (quantiles stay quantiles) and leaves every value above ``10 * scale`` as it was, to 5e-5 of
    ``scale``.

    Example:
        >>> soft_floor(np.array([-5.0, 0.0, 1.0, 2.0]), 0.1).round(4).tolist()
        [0.0, 0.0693, 1.0, 2.0]
    """
    return np.asarray(scale * np.logaddexp(0.0, values / scale), dtype=np.float64)


def refuse_below_zero(
    method: str, median: FloatArray, steps: npt.ArrayLike, *, last_step: int, n_points: int
) -> None:
    """Raise :class:`~runcast.errors.FitError` when a positive loss's forecast median reaches 0.

    A law, a curve family or the PFN fitted on a few points and extrapolated far past them can
    take a loss below 0. No band around that median is a forecast, and flooring it would only
    claim the loss ends at 0, so the method refuses, saying what to do instead. ``median`` is the
    per-step median over ``steps``, in the curve's own units; the caller knows the loss is positive.

    Example:
        >>> refuse_below_zero("law", np.array([2.0, 1.0]), [10, 20], last_step=5, n_points=6)
        >>> refuse_below_zero("law", np.array([1.0, -1.0]), [10, 20], last_step=5, n_points=6)
        Traceback (most recent call last):
        ...
        runcast.errors.FitError: Method 'law' takes this positive loss below 0 (to -1) from step 20; the last observed step is 5 (6 points). Its fit does not hold that far: forecast a nearer step, or observe more of the run.
    """  # noqa: E501
    below = np.asarray(median) <= 0
    if not np.any(below):
        return
    at = int(np.asarray(steps)[int(np.argmax(below))])
    raise FitError(
        f"Method {method!r} takes this positive loss below 0 (to {float(np.min(median)):.4g}) "
        f"from step {at}; the last observed step is {last_step} ({n_points} points). Its fit "
        "does not hold that far: forecast a nearer step, or observe more of the run."
    )


#: what the calibration model sees of a forecast (all known at forecast time; see :func:`features`)
FEATURES: tuple[str, ...] = (
    "log_frac",
    "log_frac2",
    "log_backtest",
    "no_backtest",
    "log_noise",
    "anneal_left",
    "lr_dropped",
    "ens_share",
    "turned",
)
#: the discrepancy scale is kept in this range whatever the features say
TAU_RANGE = (0.02, 20.0)


def features(
    prep: Prepared,
    spread_end: float,
    *,
    backtest_ratio: float | None = None,
    backtest_failed: bool = False,
    lr: FloatArray | None = None,
) -> dict[str, float]:
    """What the calibration model knows about one forecast, all of it visible at forecast time.

    - ``log_frac``, ``log_frac2``: log of the observed share of the run (last step / until), and
      its square: extrapolating further is less certain, but not log-linearly so.
    - ``log_backtest``: log of the run's own backtest ratio (how far off the method was when
      forecasting the observed second half from the first half; 0 when there is none), and
      ``no_backtest``: 1 when the method backtests but the run was too short to (early
      cut-offs), so a missing backtest is not read as an average one.
    - ``log_noise``: log of the per-step noise over the predicted remaining change (``h`` at
      ``until``): a noisy per-step training loss is mostly covered by its noise band, a smooth
      eval loss only by the discrepancy.
    - ``anneal_left``: how much of the LR (in units of its peak) is still to be annealed after
      the cut-off (0 without a schedule): a cooldown not yet seen is the law's largest unknown;
      ``lr_dropped``: how far the LR at the cut-off is below its peak (in units of the peak; 0
      without a schedule): a run that already stepped down to a lower LR and goes on there is
      the other.
    - ``ens_share``: the ensemble's share of the ``"pfn+ensemble"`` mixture (set by that method;
      0 here, for every single method): the share ramps up from 30% to 50% of the run observed,
      which the smooth ``log_frac`` terms cannot follow.
    - ``turned``: how far the curve has come back up from its lowest level (:func:`turned`): an
      overfitting validation loss, which the methods forecast to keep falling.

    Example:
        >>> import runcast
        >>> from runcast.forecast._prep import prepare
        >>> p = prepare(runcast.Curve(range(0, 1000, 10), np.linspace(3, 2, 100)), until=4000)
        >>> f = features(p, 0.5, lr=np.linspace(1.0, 0.0, 4001))
        >>> round(f["log_frac"], 3), round(f["anneal_left"], 3), f["log_backtest"]
        (-1.396, 0.752, 0.0)
    """
    lf = float(np.log(max(prep.last_step, 1) / prep.until))
    noise = max(prep.noise_y, 1e-9)
    anneal, dropped = 0.0, 0.0
    if lr is not None and lr.size > prep.until:
        peak = float(np.max(lr)) or 1.0
        anneal = max(float(lr[prep.last_step] - lr[prep.until]) / peak, 0.0)
        dropped = 1.0 - float(lr[prep.last_step]) / peak
    return {
        "log_frac": lf,
        "log_frac2": lf * lf,
        "log_backtest": float(np.log(backtest_ratio)) if backtest_ratio else 0.0,
        "no_backtest": 1.0 if backtest_failed else 0.0,
        "log_noise": float(np.clip(np.log(noise / max(spread_end, 1e-9)), -8.0, 8.0)),
        "anneal_left": anneal,
        "lr_dropped": dropped,
        "ens_share": 0.0,
        "turned": turned(prep.y),
    }


def turned(y: FloatArray) -> float:
    """How far a falling curve has come back up from its lowest level, in units of its range.

    ``y`` in the falling orientation (a loss, or a negated accuracy). The curve is smoothed by a
    moving mean over a tenth of its points (at least 3), so one noisy point does not count;
    the result is 0 for a curve still at its lowest and up to 1 for one back at its start. A
    validation loss that has turned (overfitting) is what no loss law or learned prior of
    falling curves can follow: the calibration widens its bands on it.

    Example:
        >>> round(turned(np.r_[np.linspace(3, 1, 50), np.linspace(1, 2, 50)]), 2)
        0.43
        >>> turned(np.linspace(3, 1, 100))
        0.0
    """
    y = np.asarray(y, dtype=np.float64)
    k = max(3, y.size // 10)
    if y.size < 2 * k:
        return 0.0
    smooth = np.convolve(y, np.ones(k) / k, mode="valid")
    span = float(np.max(y) - np.min(y))
    if span <= 0:
        return 0.0
    return float(np.clip((smooth[-1] - np.min(smooth)) / span, 0.0, 1.0))


@dataclass(frozen=True)
class Calibration:
    """The discrepancy scale ``tau`` of each method, a log-linear model of the forecast's features.

    ``log tau = coef[0] + sum_k coef[k] * feature_k`` (features in :data:`FEATURES` order; a
    missing feature counts as 0, i.e. no backtest, no noise information, nothing left to anneal),
    clipped to :data:`TAU_RANGE`. A method without coefficients gets ``tau = 1``.

    ``ranges[method]`` holds each feature's ``(low, high)`` over the runs the model was fitted
    on; a forecast's features are clipped to them first, so the model is never extrapolated: its
    quadratic in ``log_frac``, fitted on cut-offs at 10-70% of a run, would otherwise turn the
    wrong way for a forecast from 1% of one.

    ``ood[method]`` is the out-of-distribution term: a forecast unlike anything the model was
    fitted on (a feature outside its box) gets ``log tau`` raised by ``ood`` times how far
    outside the box it lies, summed over features in units of each feature's range. Its bands
    widen there instead of staying as sharp as the nearest calibrated case; the coefficient is
    chosen leave-one-family-out (``bench/forecast_lofo.py``), and is never negative.

    Example:
        >>> cal = Calibration({"law": (0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)})
        >>> round(cal.tau("law", 1.0), 4), round(cal.tau("law", 0.5), 4), cal.tau("other", 0.3)
        (1.6487, 0.8244, 1.0)
        >>> seen = Calibration(cal.models, {"law": [(-2.3, -0.36)] + [(0.0, 0.0)] * 7})
        >>> round(seen.tau("law", 1.0), 4), round(seen.tau("law", 0.5), 4)  # 1.0: as seen at 70%
        (1.1503, 0.8244)
        >>> wary = Calibration(seen.models, seen.ranges, {"law": 1.0})
        >>> round(wary.tau("law", 0.5), 4)  # inside the box: as before
        0.8244
        >>> round(seen.tau("law", 0.02), 3), round(wary.tau("law", 0.02), 3)  # 0.83 widths out
        (0.165, 0.379)
    """

    models: Mapping[str, Sequence[float]]
    ranges: Mapping[str, Sequence[Sequence[float]]] = field(default_factory=dict)
    ood: Mapping[str, float] = field(default_factory=dict)
    #: what ``method="auto"`` uses per kind of curve and cut-off:
    #: ``{"known:train": {0.1: "law", ...}, "blind:eval": ...}`` (:meth:`auto_method`)
    auto: Mapping[str, Mapping[float, str]] = field(default_factory=dict)

    def auto_method(
        self, schedule_known: bool, fraction: float, kind: str = "eval"
    ) -> str | None:
        """The method chosen leave-one-family-out for this case (the nearest cut-off), if any.

        The table is keyed ``"known:train"``, ``"known:eval"``, ``"blind:train"``,
        ``"blind:eval"`` (a training loss or an evaluation curve,
        :func:`~runcast.forecast._prep.curve_kind`, with or without the schedule); a bare
        ``"known"`` / ``"blind"`` serves both kinds.

        Example:
            >>> cal = Calibration({}, auto={"known:eval": {0.1: "pfn", 0.5: "law"},
            ...                             "known:train": {0.1: "law"}})
            >>> cal.auto_method(True, 0.2), cal.auto_method(True, 0.9), cal.auto_method(False, 0.5)
            ('pfn', 'law', None)
            >>> cal.auto_method(True, 0.2, kind="train")
            'law'
        """
        base = "known" if schedule_known else "blind"
        table = self.auto.get(f"{base}:{kind}") or self.auto.get(base)
        if not table:
            return None
        return table[min(table, key=lambda f: abs(f - fraction))]

    def log_tau(self, method: str, feats: Mapping[str, float]) -> float:
        """``log tau`` before clipping (0 for a method without a model)."""
        coef = self.models.get(method)
        if not coef:
            return 0.0
        x = np.array([float(feats.get(k, 0.0)) for k in FEATURES])
        box = self.ranges.get(method)
        excess = 0.0
        if box:
            lo, hi = np.asarray(box, dtype=np.float64)[: x.size].T
            inside = np.clip(x[: lo.size], lo, hi)
            # a feature the fit never varied (a box of width 0) cannot say how far out it is
            width = hi - lo
            far = np.abs(x[: lo.size] - inside)
            excess = float(np.sum(np.where(width > 0, far / np.where(width > 0, width, 1.0), 0.0)))
            x[: lo.size] = inside
        full = np.r_[1.0, x]
        return float(np.dot(coef, full[: len(coef)])) + max(self.ood.get(method, 0.0), 0.0) * excess

    def tau(self, method: str, fraction: float, feats: Mapping[str, float] | None = None) -> float:
        """The discrepancy scale of ``method`` when ``fraction`` of the run is observed.

        ``feats`` (from :func:`features`) overrides the fraction; without them the forecast is
        assumed to have no backtest, no noise and no anneal to come.
        """
        if feats is None:
            lf = float(np.log(max(fraction, 1e-6)))
            feats = {"log_frac": lf, "log_frac2": lf * lf}
        return float(np.clip(np.exp(self.log_tau(method, feats)), *TAU_RANGE))

    def to_json(self) -> str:
        """The model as JSON (what ``_calibration.json`` holds)."""
        body: dict[str, Any] = {"features": ["intercept", *FEATURES], "models": dict(self.models)}
        if self.ranges:
            body["ranges"] = {k: [list(r) for r in v] for k, v in self.ranges.items()}
        if self.ood:
            body["ood"] = dict(self.ood)
        if self.auto:
            body["auto"] = {k: {str(f): m for f, m in v.items()} for k, v in self.auto.items()}
        return json.dumps(body, indent=1)


@lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The shipped model (``tau = 1`` everywhere when the file is absent)."""
    if not TABLE_PATH.exists():
        return Calibration({})
    raw = json.loads(TABLE_PATH.read_text())
    ranges = {k: [tuple(map(float, r)) for r in v] for k, v in raw.get("ranges", {}).items()}
    ood = {k: float(v) for k, v in raw.get("ood", {}).items()}
    auto = {k: {float(f): str(m) for f, m in v.items()} for k, v in raw.get("auto", {}).items()}
    models = {k: tuple(float(c) for c in v) for k, v in raw["models"].items()}
    return Calibration(models, ranges, ood, auto)


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


def _at_tau(grid: FloatArray, table: FloatArray, tau: FloatArray) -> FloatArray:
    """``table[r]`` (scored at every ``grid`` tau) at ``tau[r]``, linear in tau (as np.interp)."""
    j = np.clip(np.searchsorted(grid, tau) - 1, 0, grid.size - 2)
    w = np.clip((tau - grid[j]) / (grid[j + 1] - grid[j]), 0.0, 1.0)
    rows = np.arange(table.shape[0])
    return np.asarray(table[rows, j] * (1.0 - w) + table[rows, j + 1] * w, dtype=np.float64)


def fit_log_tau(
    X: FloatArray,
    cov80: FloatArray,
    cov95: FloatArray,
    grid: FloatArray,
    bins: Sequence[npt.NDArray[np.bool_]],
    bin_weights: Sequence[float],
    *,
    crps: FloatArray | None = None,
    sharpness: float = 0.0,
    ridge: float = 1e-3,
    targets: tuple[float, float] = (0.8, 0.95),
    level_weights: tuple[float, float] = (1.0, 1.0),
    warm: FloatArray | None = None,
) -> FloatArray:
    """Coefficients of ``log tau = X @ coef`` that put coverage on target in every bin.

    ``X[r]`` holds record ``r``'s features (first column 1); ``cov80[r, g]`` / ``cov95[r, g]``
    its coverage at ``tau = grid[g]``. ``bins`` are boolean masks over records (e.g. all runs at
    one cut-off; one family at one cut-off): the loss is the weighted squared miss of the bins'
    mean 80% and 95% coverage, plus ``sharpness`` times the mean of ``crps[r, g]`` (the records'
    relative CRPS of the final value on the same grid), plus a small ridge on the slopes. A
    model that only had to get the pooled mean right could be far too wide on one kind of curve
    and far too narrow on another; the per-family bins are what make the features earn their
    keep. The CRPS term breaks the ties coverage leaves: on a noisy per-step curve the noise
    band alone covers the values, and without it any trend band, however absurd, would do.
    ``warm`` (coefficients of a fit on nearly the same records) starts the search there when it
    beats the flat start: leave-one-family-out refits converge in a fraction of the calls.

    Example:
        >>> grid = np.array([0.0, 0.5, 1.0, 2.0, 4.0])
        >>> cov = np.tile(np.array([0.0, 0.4, 0.8, 0.9, 1.0]), (4, 1))
        >>> X = np.ones((4, 1))
        >>> coef = fit_log_tau(X, cov, cov + 0.15 * (cov < 1), grid, [np.ones(4, bool)], [1.0])
        >>> round(float(np.exp(coef[0])), 2)
        1.0
    """
    from scipy.optimize import minimize

    lo, hi = np.log(TAU_RANGE[0]), np.log(TAU_RANGE[1])
    masks = [np.asarray(b, dtype=bool) for b in bins]
    # the bins' means as one matrix product (a bin's row averages its records): with a bin per
    # family and cut-off there are dozens of bins, and the optimiser calls this thousands of times
    used = [(m, w) for m, w in zip(masks, bin_weights, strict=True) if m.any()]
    mean_of = np.array([m / m.sum() for m, _ in used]).reshape(len(used), X.shape[0])
    wts = np.array([w for _, w in used])

    def loss(coef: FloatArray) -> float:
        tau = np.exp(np.clip(X @ coef, lo, hi))
        c80, c95 = _at_tau(grid, cov80, tau), _at_tau(grid, cov95, tau)
        total = ridge * float(np.sum(coef[1:] ** 2))
        if crps is not None and sharpness > 0:
            total += sharpness * float(np.mean(_at_tau(grid, crps, tau)))
        miss = level_weights[0] * (mean_of @ c80 - targets[0]) ** 2
        miss += level_weights[1] * (mean_of @ c95 - targets[1]) ** 2
        return total + float(wts @ miss)

    # start from the best flat tau (a 1-D scan), then let the slopes move
    flat = min(
        np.geomspace(*TAU_RANGE, 61), key=lambda t: loss(np.r_[np.log(t), np.zeros(X.shape[1] - 1)])
    )
    start = np.r_[np.log(flat), np.zeros(X.shape[1] - 1)]
    if warm is not None and loss(np.asarray(warm, dtype=np.float64)) < loss(start):
        start = np.asarray(warm, dtype=np.float64)
    res = minimize(loss, start, method="Powell", options={"xtol": 1e-2, "ftol": 1e-6})
    best = res.x if res.fun <= loss(start) else start
    return np.asarray(best, dtype=np.float64)
