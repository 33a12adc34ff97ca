"""The evaluation harness: cut real runs at 10-70% and score each method's forecast of the rest.

For every case (a full curve), cut-off fraction and method, the harness forecasts from the first
``fraction`` of the run's steps up to its last step and measures:

- ``err``: absolute relative error of the final value's median. The truth is the *smoothed*
  final value, the mean over the last 1% of the run's steps (at least one point), so that per-step
  noise does not count as forecast error; the forecast used is the noise-free trend
  (``noise=False``).
- ``crps``: the CRPS of that same final-value distribution (relative to the truth's value, so
  curves of different scales average sensibly): lower is better, and it rewards sharp *and*
  calibrated distributions.
- ``cov80`` / ``cov95``: the share of the remaining *observed* values (up to 100 of them, evenly
  spread) inside the 80% / 95% bands of the forecast with observation noise (``noise=True``).
- ``cov80_final`` / ``cov95_final``: whether the smoothed final value lies in the trend's 80% /
  95% interval at the last step.
- ``seconds``: wall time of the forecast (preparation, fit, sampling, calibration).

runcast's own methods give their uncalibrated paths once (the PFN its quantiles once); the
metrics are then computed for every discrepancy scale ``tau`` (the PFN's spread factor) of a
grid, so a calibration model can be fitted on some cases and applied to others without
forecasting again: :func:`fit_calibration` fits it, :func:`cross_fitted_tau` gives every record
the tau of a model fitted without its group of sibling runs (what ``bench/forecast_cutoff.py``
reports).

Example:
    >>> import numpy as np, runcast
    >>> s = np.arange(0, 5001, 25)
    >>> case = Case("toy", "synthetic", runcast.Curve(s, 2.0 + 5.0 * ((s + 100) / 100) ** -0.5))
    >>> rec = evaluate_case(case, 0.3, "ensemble")
    >>> rec.err(1.0) < 0.02, 0.0 <= rec.cov80(1.0) <= 1.0
    (True, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.errors import RuncastError
from runcast.forecast._calibrate import FEATURES, Calibration, coverage, fit_log_tau
from runcast.forecast._types import Forecast
from runcast.schedules import Schedule

FloatArray = npt.NDArray[np.float64]
CUTOFFS = (0.1, 0.2, 0.3, 0.5, 0.7)
#: the discrepancy scales every record is scored at
TAU_GRID: FloatArray = np.round(np.concatenate([[0.0], np.geomspace(0.02, 20.0, 40)]), 4)
N_EVAL_STEPS = 100
#: the mixtures the harness scores at every spread: (first, second, the component whose features
#: the mixture's calibration sees); the second's share of the paths is the method's own
MIXTURES = {"law+pfn": ("law", "pfn", "law"), "pfn+ensemble": ("pfn", "ensemble", "ensemble")}


@dataclass(frozen=True)
class Case:
    """One full run to cut and forecast; ``schedule`` enables the schedule-aware methods."""

    name: str
    family: str
    curve: Curve
    schedule: Schedule | None = None
    #: runs that share a model and data (one MPL size, one Pythia size): held out together when
    #: calibration is cross-fitted, so no run is judged by a model fitted on its siblings
    group: str = ""

    @property
    def cv_group(self) -> str:
        """The cross-fitting group (``group``, else ``family``)."""
        return self.group or self.family


def crps_samples(samples: FloatArray, truth: float) -> float:
    """CRPS of an empirical distribution: ``E|X - y| - E|X - X'| / 2`` (sorted-sample form).

    Example:
        >>> round(crps_samples(np.array([0.0, 1.0]), 0.0), 3)
        0.25
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = x.size
    term1 = float(np.mean(np.abs(x - truth)))
    # E|X - X'| over all ordered pairs = 2 / n^2 * sum_i (2i - n - 1) x_(i)
    term2 = float(2.0 * np.sum((2.0 * np.arange(1, n + 1) - n - 1) * x) / n**2)
    return term1 - 0.5 * term2


def smoothed_final(curve: Curve) -> float:
    """The mean of the values over the last 1% of the run's steps (at least the last point).

    Example:
        >>> smoothed_final(Curve(list(range(200)), [1.0] * 198 + [2.0, 4.0]))
        3.0
    """
    c = curve.finite()
    lo = c.last_step - 0.01 * (c.last_step - int(c.step[0]))
    tail = c.value[c.step >= lo]
    return float(np.mean(tail)) if tail.size else float(c.value[-1])


@dataclass
class Record:
    """The scores of one (case, cut-off, method), at every ``tau`` of :data:`TAU_GRID`."""

    case: str
    family: str
    fraction: float
    method: str
    truth: float
    seconds: float
    errs: FloatArray = field(repr=False)
    crpss: FloatArray = field(repr=False)
    cov80s: FloatArray = field(repr=False)
    cov95s: FloatArray = field(repr=False)
    failed: str = ""
    observed: float = float("nan")  # last observed step / until: the calibration's key
    features: dict[str, float] = field(default_factory=dict)  # what the calibration model sees
    group: str = ""  # the case's cross-fitting group
    #: whether the smoothed final value lies in the trend forecast's 80% / 95% final interval
    cov80fs: FloatArray = field(default_factory=lambda: np.array([np.nan]), repr=False)
    cov95fs: FloatArray = field(default_factory=lambda: np.array([np.nan]), repr=False)
    #: the calibration that scores this record when another method answered for ``method``
    #: (``forecast()``'s fallback); empty: ``method``'s own
    calibrated_as: str = ""

    @property
    def calibration_key(self) -> str:
        """The method whose calibration model gives this record's ``tau``."""
        return self.calibrated_as or self.method

    def _at(self, arr: FloatArray, tau: float) -> float:
        return float(np.interp(tau, TAU_GRID, arr)) if arr.size > 1 else float(arr[0])

    def err(self, tau: float) -> float:
        """Absolute relative error of the final median at ``tau``."""
        return self._at(self.errs, tau)

    def crps(self, tau: float) -> float:
        """Relative CRPS of the final value at ``tau``."""
        return self._at(self.crpss, tau)

    def cov80(self, tau: float) -> float:
        """80% band coverage of the remaining observed values at ``tau``."""
        return self._at(self.cov80s, tau)

    def cov95(self, tau: float) -> float:
        """95% band coverage of the remaining observed values at ``tau``."""
        return self._at(self.cov95s, tau)

    def cov80_final(self, tau: float) -> float:
        """1 when the final value lies in the 80% interval of the final trend at ``tau``."""
        return self._at(self.cov80fs, tau)

    def cov95_final(self, tau: float) -> float:
        """1 when the final value lies in the 95% interval of the final trend at ``tau``."""
        return self._at(self.cov95fs, tau)


def _eval_steps(curve: Curve, cut: int) -> tuple[FloatArray, FloatArray]:
    rest = curve.finite()
    keep = rest.step > cut
    st, vals = rest.step[keep], rest.value[keep]
    if st.size > N_EVAL_STEPS:
        idx = np.unique(np.linspace(0, st.size - 1, N_EVAL_STEPS).round().astype(int))
        st, vals = st[idx], vals[idx]
    return st.astype(np.float64), vals


def _score(
    trend: Forecast, noisy: Forecast, truth: float, st: FloatArray, vals: FloatArray
) -> tuple[float, float, float, float, float, float]:
    final = trend.samples[:, -1]
    err = abs(float(np.median(final)) - truth) / abs(truth)
    crps = crps_samples(final, truth) / abs(truth)
    # the final value is judged against the trend's band: the truth is smoothed, so the
    # per-step noise band would cover it too easily
    lo80, hi80, lo95, hi95 = np.quantile(final, [0.1, 0.9, 0.025, 0.975])
    f80 = float(lo80 <= truth <= hi80)
    f95 = float(lo95 <= truth <= hi95)
    return err, crps, coverage(noisy, st, vals, 0.8), coverage(noisy, st, vals, 0.95), f80, f95


def _mixture_scores(
    method: str,
    observed: Curve,
    until: int,
    sched: Schedule | None,
    steps: npt.NDArray[np.int64],
    seed: int,
    taus: FloatArray,
    truth_at: tuple[float, FloatArray, FloatArray],
) -> tuple[FloatArray, dict[str, float]]:
    """A mixture's scores at every spread in ``taus``, and the features its calibration sees.

    The two raw components are made once (with and without noise) and mixed at every spread.
    """
    from runcast.forecast._api import forecast
    from runcast.forecast._mixture import blind_inputs, mixture

    one, other, seen = MIXTURES[method]
    uncal: dict[str, Any] = {"steps": steps, "seed": seed, "calibrate": False}
    parts = {
        (m, nz): forecast(observed, until, sched, method=m, noise=nz, **uncal)
        for m in (one, other)
        for nz in (False, True)
    }
    share, feats = 0.5, dict(parts[(seen, True)].info.get("features", {}))
    if method == "pfn+ensemble":
        _, share, feats = blind_inputs(parts[(seen, True)])

    def mixed(t: float, nz: bool) -> Forecast:
        return mixture(parts[(one, nz)], parts[(other, nz)], t, share, method=method)

    truth, st, vals = truth_at
    scores = [_score(mixed(t, False), mixed(t, True), truth, st, vals) for t in map(float, taus)]
    return np.array(scores), feats


def evaluate_case(
    case: Case,
    fraction: float,
    method: str,
    *,
    n_paths: int = 200,
    seed: int = 0,
    taus: FloatArray = TAU_GRID,
) -> Record:
    """Score ``method`` forecasting ``case`` from the first ``fraction`` of its steps."""
    from runcast.forecast._api import RAW_METHODS, _load_methods, forecast, raw_forecast

    _load_methods()
    full = case.curve
    until = full.last_step
    first = int(full.step[0])
    cut = int(first + fraction * (until - first))
    observed = full.until(cut)
    st, vals = _eval_steps(full, cut)
    steps = np.unique(np.concatenate([st, [until]])).astype(np.int64)
    truth = smoothed_final(full)
    sched = case.schedule
    nan = np.array([np.nan])
    feats: dict[str, float] = {}
    name = method
    try:
        if method in RAW_METHODS:
            t0 = time.perf_counter()
            raw = raw_forecast(
                method, observed, until, sched, steps=steps, n_paths=n_paths, seed=seed
            )
            raw.finish(method, 1.0, noise=True, seed=seed)
            seconds = time.perf_counter() - t0
            feats = dict(raw.info.get("features", {}))
            scores = np.array(
                [
                    _score(
                        raw.finish(method, float(t), noise=False, seed=seed),
                        raw.finish(method, float(t), noise=True, seed=seed),
                        truth,
                        st,
                        vals,
                    )
                    for t in taus
                ]
            )
        elif method == "pfn":
            from runcast.forecast.pfn._method import calibration_key, pfn_forecast, pfn_quantiles

            t0 = time.perf_counter()
            pfn_forecast(observed, until, sched, steps=steps, seed=seed)
            seconds = time.perf_counter() - t0
            q = pfn_quantiles(observed, until, sched, steps=steps)
            name, feats = calibration_key(sched), q.calibration_features()
            # the spread factor plays tau's part: one forward pass, scored at every factor
            scores = np.array(
                [
                    _score(q.finish(float(t), noise=False), q.finish(float(t)), truth, st, vals)
                    for t in taus
                ]
            )
        elif method in MIXTURES:
            if method == "pfn+ensemble":
                sched = None  # blind by design, as the method itself
            t0 = time.perf_counter()
            made = forecast(observed, until, sched, method=method, steps=steps, seed=seed)
            seconds = time.perf_counter() - t0
            if made.method == method:
                scores, feats = _mixture_scores(method, observed, until, sched, steps, seed,
                                                taus, (truth, st, vals))  # fmt: skip
            else:
                # one half could not forecast this curve and the method returned the other's
                # own calibrated forecast: that is the method's answer, scored as it is
                trend = forecast(observed, until, sched, method=method, steps=steps, seed=seed,
                                 noise=False)  # fmt: skip
                scores = np.array([_score(trend, made, truth, st, vals)])
        else:
            t0 = time.perf_counter()
            noisy = forecast(observed, until, sched, method=method, steps=steps, seed=seed)
            seconds = time.perf_counter() - t0
            trend = forecast(observed, until, sched, method=method, steps=steps, seed=seed,
                             noise=False)  # fmt: skip
            scores = np.array([_score(trend, noisy, truth, st, vals)])
    except RuncastError as err:
        return Record(case.name, case.family, fraction, method, truth, np.nan, nan, nan, nan, nan,
                      failed=f"{type(err).__name__}: {err}", group=case.cv_group)  # fmt: skip
    return Record(
        case.name,
        case.family,
        fraction,
        name,
        truth,
        seconds,
        scores[:, 0],
        scores[:, 1],
        scores[:, 2],
        scores[:, 3],
        observed=observed.last_step / until,
        features=feats,
        group=case.cv_group,
        cov80fs=scores[:, 4],
        cov95fs=scores[:, 5],
    )


def evaluate(
    cases: Sequence[Case],
    methods: Sequence[str],
    cutoffs: Sequence[float] = CUTOFFS,
    *,
    n_paths: int = 200,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[Record]:
    """Score every method on every case at every cut-off."""
    out = []
    for case in cases:
        for frac in cutoffs:
            for m in methods:
                if progress is not None:
                    progress(f"{case.name} @ {frac:.0%} · {m}")
                out.append(evaluate_case(case, frac, m, n_paths=n_paths, seed=seed))
    return out


#: how much one family's coverage at one cut-off counts against the pooled coverage at it
FAMILY_WEIGHT = 0.5
#: the weight of the mean relative CRPS in the calibration loss (see ``fit_log_tau``)
SHARPNESS = 2.0
#: the weights of the 80% and 95% coverage misses in the calibration loss: the 95% miss counts
#: 4x, since runs a method fits well and runs it fits badly (Pythia's late rise) mix into pooled
#: 95% coverage below target long before the 80% one (measured, cross-fitted, law from 50% of a
#: run: 79% / 90% with equal weights, 81% / 92% with these)
LEVEL_WEIGHTS = (1.0, 4.0)


def fit_calibration(
    records: Sequence[Record],
    cutoffs: Sequence[float] = CUTOFFS,
    *,
    ridge: float = 1e-3,
    warm: Calibration | None = None,
) -> Calibration:
    """Fit the calibration model of every method scored on a tau grid, from ``records``.

    Per method, the coefficients of ``log tau`` over :data:`~runcast.forecast._calibrate.FEATURES`
    (:func:`~runcast.forecast._calibrate.fit_log_tau`) are chosen so that the mean 80% / 95%
    coverage is on target at every cut-off over all runs, and, with weight
    :data:`FAMILY_WEIGHT` split over the families, for every family at every cut-off. Each
    feature's range over the records is kept with the model (forecasts are clipped to it).
    ``warm``: a model fitted on nearly the same records, whose coefficients start the search.
    """
    models: dict[str, tuple[float, ...]] = {}
    ranges: dict[str, list[tuple[float, float]]] = {}
    for m in sorted({r.method for r in records}):
        rs = [
            r
            for r in records
            if r.method == m and not r.failed and r.cov80s.size > 1 and r.fraction in cutoffs
        ]
        if not rs:
            continue
        X = np.array([[1.0, *(r.features.get(k, 0.0) for k in FEATURES)] for r in rs])
        c80 = np.array([r.cov80s for r in rs])
        c95 = np.array([r.cov95s for r in rs])
        # a relative CRPS past 1 (100% off) says nothing more, and one path gone to 1e50 at a
        # large tau would otherwise outweigh every other record in the sharpness term
        crps = np.array([np.minimum(np.nan_to_num(r.crpss, nan=1.0, posinf=1.0), 1.0) for r in rs])
        frac = np.array([r.fraction for r in rs])
        fam = np.array([r.family for r in rs])
        fams = sorted(set(fam.tolist()))
        bins, weights = [], []
        for f in sorted(set(frac.tolist())):
            bins.append(frac == f)
            weights.append(1.0)
            for g in fams:
                bins.append((frac == f) & (fam == g))
                weights.append(FAMILY_WEIGHT / len(fams))
        # a feature that is 0 for every record (no schedule, no backtest, no mixture) cannot be
        # learned: it keeps coefficient 0 and is not searched (a flat direction only makes the
        # optimiser's path, and so its local optimum, depend on which features exist)
        used = np.r_[True, np.any(X[:, 1:] != 0.0, axis=0)]
        coef = np.zeros(X.shape[1])
        coef[used] = fit_log_tau(
            X[:, used],
            c80,
            c95,
            TAU_GRID,
            bins,
            weights,
            crps=crps,
            sharpness=SHARPNESS,
            ridge=ridge,
            level_weights=LEVEL_WEIGHTS,
            warm=_warm_start(warm, m, used),
        )
        models[m] = tuple(round(float(c), 5) + 0.0 for c in coef)  # + 0.0: no "-0.0"
        # what the model saw: a forecast's features are clipped to this box (no extrapolation)
        lows, highs = X[:, 1:].min(axis=0), X[:, 1:].max(axis=0)
        ranges[m] = [
            (round(float(a), 5) + 0.0, round(float(b), 5) + 0.0)
            for a, b in zip(lows, highs, strict=True)
        ]
    return Calibration(models, ranges)


def _warm_start(
    warm: Calibration | None, method: str, used: npt.NDArray[np.bool_]
) -> FloatArray | None:
    coef = None if warm is None else warm.models.get(method)
    if not coef or len(coef) != used.size:
        return None
    return np.asarray(coef, dtype=np.float64)[used]


def cross_fitted_tau(
    records: Sequence[Record], cutoffs: Sequence[float] = CUTOFFS
) -> dict[tuple[str, str, float], float]:
    """Each record's tau from a model fitted without its group (leave-one-group-out).

    A group is a run and its siblings (one MPL model size under nine schedules, one Pythia size
    over two seeds, the tdlt runs): a held-out run is judged by a calibration that saw neither
    it nor any run of the same model and data. Keys are ``(case, method, fraction)``.
    """
    out: dict[tuple[str, str, float], float] = {}
    for g in sorted({r.group or r.family for r in records}):
        cal = fit_calibration([r for r in records if (r.group or r.family) != g], cutoffs)
        for r in records:
            if (r.group or r.family) == g:
                out[(r.case, r.method, r.fraction)] = cal.tau(r.method, r.observed, r.features)
    return out


@dataclass(frozen=True)
class Summary:
    """Aggregated scores of one method (and cut-off) over records, at calibrated taus."""

    method: str
    fraction: float | None
    n: int
    err: float  # median over cases
    crps: float  # mean over cases
    cov80: float
    cov95: float
    ms: float  # median milliseconds per forecast


def summarize(
    records: Sequence[Record],
    tau_of: Callable[[Record], float],
    *,
    by_fraction: bool = True,
) -> list[Summary]:
    """Median error, mean CRPS and coverage per method (and cut-off), at ``tau_of(record)``."""
    keys = sorted({(r.method, r.fraction if by_fraction else None) for r in records},
                  key=lambda k: (k[0], k[1] or 0.0))  # fmt: skip
    out = []
    for m, frac in keys:
        rs = [r for r in records if r.method == m and (frac is None or r.fraction == frac)]
        rs = [r for r in rs if not r.failed]
        if not rs:
            continue
        taus = [tau_of(r) for r in rs]
        out.append(
            Summary(
                m,
                frac,
                len(rs),
                float(np.median([r.err(t) for r, t in zip(rs, taus, strict=True)])),
                float(np.mean([r.crps(t) for r, t in zip(rs, taus, strict=True)])),
                float(np.mean([r.cov80(t) for r, t in zip(rs, taus, strict=True)])),
                float(np.mean([r.cov95(t) for r, t in zip(rs, taus, strict=True)])),
                1000.0 * float(np.median([r.seconds for r in rs])),
            )
        )
    return out
