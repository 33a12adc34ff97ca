"""``runcast.forecast``: the rest of a run from its beginning, with calibrated uncertainty.

The methods are listed once, in :data:`runcast.forecast._registry.TABLE`. This module is the
layer on top of them: :func:`run_method` runs one as it is, and :func:`forecast` adds the
public checks, ``"auto"`` (the method chosen leave-one-family-out for the kind of curve and the
share of the run seen, :func:`auto_choice`), its fallbacks when that method refuses the curve,
and the bounds of the metric. Every
method's intervals are calibrated by :mod:`runcast.forecast._calibrate`, from what the forecast
can see, judged leave-one-family-out (bench/README.md, "Forecasts on runs runcast has never
seen").
"""

from __future__ import annotations

import importlib
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.errors import (
    FitError,
    InvalidInputError,
    NotEnoughDataError,
    RuncastError,
    RuncastWarning,
    ScheduleError,
)
from runcast.forecast._bounds import with_bounds
from runcast.forecast._calibrate import (
    RawForecast,
    default_calibration,
    features,
    refuse_below_zero,
)
from runcast.forecast._prep import (
    MIN_POINTS,
    Prepared,
    as_until,
    curve_kind,
    detect_direction,
    prepare,
)
from runcast.forecast._registry import METHODS, TABLE, get_method, register_method
from runcast.forecast._types import Direction, Forecast
from runcast.schedules import Schedule

RawFn = Callable[..., RawForecast]
#: runcast's own calibrated methods: fn(prepared, schedule, n_paths=, seed=, **opts) -> RawForecast
RAW_METHODS: dict[str, RawFn] = {}
#: the backtest ratio is kept in this range: a lucky backtest of a smooth eval curve can be 100x
#: better than the typical extrapolation, and the calibration model weighs it (in log) anyway
BACKTEST_RANGE = (0.01, 100.0)


def _load_methods() -> None:
    """Import the modules of :data:`~runcast.forecast._registry.TABLE` once.

    runcast's own calibrated methods export ``RAW`` (name -> raw function), wrapped here with
    the calibration; the others register themselves on import. The learned forecaster
    (``pfn``, and the ``pfn+ensemble`` mixture built on it) is there only with torch.
    """
    if RAW_METHODS:
        return
    for spec in TABLE:
        try:
            mod = importlib.import_module(f"runcast.forecast.{spec.module}")
        except ImportError as err:
            if err.name not in ("runcast.forecast.pfn", "torch"):
                raise
            continue
        raw = getattr(mod, "RAW", {})
        if spec.name in raw:
            RAW_METHODS[spec.name] = raw[spec.name]
            register_method(spec.name)(_wrap(spec.name))
    from runcast.forecast._known import forecast_blend

    register_method("law+pfn")(forecast_blend)
    if "pfn" in METHODS:
        from runcast.forecast._mixture import forecast_pfn_ensemble

        register_method("pfn+ensemble")(forecast_pfn_ensemble)


def _wrap(name: str) -> Callable[..., Forecast]:
    def fn(curve: Curve, until: int, schedule: Schedule | None, **opts: Any) -> Forecast:
        return _run_raw(name, curve, until, schedule, **opts)

    fn.__name__ = f"forecast_{name}"
    return fn


def _schedule_of(curve: Curve, schedule: Schedule | dict[str, Any] | str | None) -> Schedule | None:
    if schedule is None:
        return curve.schedule
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, dict):
        return Schedule.from_spec(schedule)
    if isinstance(schedule, str):
        return Schedule.from_string(schedule)
    raise InvalidInputError(
        f"schedule must be a runcast.Schedule, a spec dict or a spec string, but got "
        f"{type(schedule).__name__}."
    )


def _check_schedule(schedule: Schedule, until: int) -> None:
    total = schedule.total
    # A run of `total` updates often logs its last loss at step `total` (steps counted from 1),
    # so a planned (spec) schedule may be asked for one step past its end, where it holds its
    # last LR; a recorded LR cannot be extended at all.
    slack = 0 if schedule.kind == "recorded" else 1
    if total is not None and total + slack < until + 1:
        raise ScheduleError(
            f"The schedule covers {total} steps (0..{total - 1}) but the forecast runs until "
            f"step {until}; pass the full planned schedule, or forecast until <= {total - 1}."
        )


def raw_forecast(
    method: str,
    curve: Curve,
    until: int,
    schedule: Schedule | None = None,
    *,
    steps: npt.ArrayLike | None = None,
    direction: Direction | None = None,
    n_paths: int = 400,
    seed: int = 0,
    backtest: bool = True,
    **opts: Any,
) -> RawForecast:
    """The uncalibrated paths of one of runcast's own methods (the evaluation harness uses it)."""
    _load_methods()
    if method not in RAW_METHODS:
        raise InvalidInputError(
            f"{method!r} is not one of runcast's calibrated methods: {sorted(RAW_METHODS)}."
        )
    prep: Prepared = prepare(curve, until, steps=steps, direction=direction)
    if prep.constant:
        warnings.warn(
            f"The curve is constant ({prep.center:.6g} at all {prep.n_points} points); "
            "the forecast is flat at that value, with no spread.",
            RuncastWarning,
            stacklevel=3,
        )
        paths = np.zeros((n_paths, prep.out_steps.size))
        return RawForecast(prep, paths, anchor=0.0, info={"constant": True})
    raw = RAW_METHODS[method](prep, schedule, n_paths=n_paths, seed=seed, **opts)
    _check_positive(method, prep, raw)
    # measured: the backtest scale sharpens the law's CRPS (0.058 -> 0.043 from 20% of a run) but
    # blurs the ensemble's (0.041 -> 0.052), whose early extrapolations are poor predictors of
    # its late ones; so only the law uses it
    ratio = None
    if backtest and method == "law":
        ratio = _backtest(method, curve.finite(), prep, raw, schedule, seed, opts)
        if ratio is not None:
            raw.info["backtest_ratio"] = round(ratio, 4)
    # Schedule caches its arrays, so a run forecast again and again pays for this once
    lr = np.asarray(schedule.array(prep.until + 1)) if schedule is not None else None
    raw.info["features"] = features(
        prep,
        raw.spread_end(),
        backtest_ratio=raw.info.get("backtest_ratio"),
        backtest_failed=backtest and method == "law" and ratio is None,
        lr=lr,
    )
    return raw


def _check_positive(method: str, prep: Prepared, raw: RawForecast) -> None:
    """Refuse paths whose median takes a positive loss to 0 or below (``auto`` falls back)."""
    if prep.direction != "down" or float(np.min(prep.to_values(prep.y))) <= 0:
        return
    values = prep.to_values(raw.paths)
    if float(values.min()) > 0:
        return  # no path reaches 0: the per-step median (~1 ms) is not needed
    refuse_below_zero(
        method, np.median(values, axis=0), prep.out_steps,
        last_step=prep.last_step, n_points=prep.n_points,
    )  # fmt: skip


def _backtest(
    method: str,
    curve: Curve,
    prep: Prepared,
    raw: RawForecast,
    schedule: Schedule | None,
    seed: int,
    opts: dict[str, Any],
) -> float | None:
    """How far off the method was on this very run: forecast the observed second half from the
    first half, and return its error in units of the discrepancy shape ``h`` it predicted.

    Curves differ in how predictable they are (smooth eval losses vs noisy training losses that
    wander); this ratio scales the discrepancy per curve (within :data:`BACKTEST_RANGE`), and
    its log is a feature of the calibration model, which learns how much to trust it.
    """
    first, last = int(curve.step[0]), prep.last_step
    half = first + (last - first) // 2
    at = np.unique(np.round(prep.x[prep.x > half]).astype(np.int64))
    at = at[at <= last]
    sub = curve.until(half)
    if len(sub) < 2 * MIN_POINTS or at.size < 3:
        return None
    try:
        bprep = prepare(sub, last, steps=at, direction=prep.direction)
        braw = RAW_METHODS[method](bprep, schedule, n_paths=100, seed=seed, **opts)
    except RuncastError:
        return None
    median = np.median(braw.paths, axis=0)
    pred = bprep.to_values(median)
    obs = np.interp(at, prep.x, prep.to_values(prep.y))
    h = braw.spread_shape(median) * bprep.scale
    ratio = float(np.median(np.abs(pred - obs)) / max(float(np.median(h)), 1e-12))
    return float(np.clip(ratio, BACKTEST_RANGE[0], BACKTEST_RANGE[1]))


def _run_raw(
    name: str,
    curve: Curve,
    until: int,
    schedule: Schedule | None,
    *,
    noise: bool = True,
    seed: int = 0,
    calibrate: bool = True,
    **opts: Any,
) -> Forecast:
    t0 = time.perf_counter()
    raw = raw_forecast(name, curve, until, schedule, seed=seed, **opts)
    frac = raw.prep.last_step / raw.prep.until
    # calibrate=False: the method's own discrepancy scale (tau = 1), as the PFN's raw bands
    tau = default_calibration().tau(name, frac, raw.info.get("features")) if calibrate else 1.0
    out = raw.finish(name, tau, noise=noise, seed=seed)
    out.info["seconds"] = round(time.perf_counter() - t0, 5)
    return out


#: the methods ``auto``'s table may name that forecast without the schedule, even when one is
#: known: on some kinds of curve the blind forecast is the better one (judged leave-one-family-out)
BLIND_CHOICES = ("pfn", "pfn+ensemble", "ensemble")


def auto_choice(
    schedule: Schedule | None, fraction: float | None = None, kind: str = "eval"
) -> tuple[str, bool]:
    """What ``method="auto"`` runs: ``(method, whether it is given the schedule)``.

    The shipped calibration holds, per kind of curve (``"train"`` or ``"eval"``,
    :func:`~runcast.forecast._prep.curve_kind`) and cut-off, the method with the best CRPS
    judged leave-one-family-out on the corpus (``bench/forecast_lofo.py --write-calibration``);
    the ``fraction`` of the run observed picks the nearest cut-off. With a schedule known the
    table may name a blind method (:data:`BLIND_CHOICES`), which then forecasts without it.
    Without that table (or its method installed): the law with a schedule; without one, the
    PFN mixed with the ensemble, else the ensemble.
    """
    _load_methods()
    if fraction is not None:
        chosen = default_calibration().auto_method(schedule is not None, fraction, kind)
        # "pfn+schedule" is the PFN's calibration key when it is given the schedule
        name = "pfn" if chosen == "pfn+schedule" else chosen
        if name in METHODS:
            blind = schedule is None or chosen in BLIND_CHOICES
            # a table naming a method that needs a schedule for a case without one is unusable
            if not (blind and METHODS[name].needs_schedule):
                return name, not blind
    if schedule is not None:
        return "law", True
    return ("pfn+ensemble" if "pfn+ensemble" in METHODS else "ensemble"), False


def resolve_method(
    method: str, schedule: Schedule | None, fraction: float | None = None, kind: str = "eval"
) -> str:
    """The method ``"auto"`` stands for (:func:`auto_choice`); any other name is itself."""
    return method if method != "auto" else auto_choice(schedule, fraction, kind)[0]


@with_bounds  # within the metric's possible range: runcast.forecast._bounds
def forecast(
    curve: Curve,
    until: int,
    schedule: Schedule | dict[str, Any] | str | None = None,
    method: str = "auto",
    *,
    steps: npt.ArrayLike | None = None,
    direction: Direction | None = None,
    noise: bool = True,
    n_paths: int = 400,
    seed: int = 0,
    **opts: Any,
) -> Forecast:
    """Forecast the rest of a run from its beginning, as a calibrated predictive distribution.

    Args:
        curve: the observed part of the run (a loss that falls or an accuracy that rises; dense
            per-step or sparse eval points; NaNs are dropped with a warning).
        until: the last step to forecast (usually the run's planned total steps - 1).
        schedule: the run's LR schedule, future steps included (a ``Schedule``, a spec dict or a
            spec string); default ``curve.schedule``. With one, ``"auto"`` forecasts a training
            loss over it (``"law+pfn"``); an evaluation curve it forecasts blind, which scored
            better on the corpus (:func:`auto_choice`).
        method: ``"auto"``, ``"law"``, ``"law+pfn"``, ``"pfn+ensemble"``, ``"ensemble"``,
            ``"pfn"``, ``"last"``, ``"powerlaw"`` or ``"mcmc"`` (see the module docs for what
            each does).
        steps: forecast these steps instead of the default grid (up to 200 steps after the last
            observed one, ending exactly at ``until``).
        direction: ``"down"`` (loss) or ``"up"`` (accuracy); detected when None.
        noise: forecast observed values (trend plus per-step noise, the default) or, with
            False, the noise-free trend (e.g. the smoothed final loss).
        n_paths: sample paths in the forecast.
        seed: seeds the posterior sampling; the same inputs and seed give the same forecast.
        bounds: ``"auto"`` (default: from the curve's name and values, an accuracy in
            [0, 1], a loss above 0), ``(lo, hi)``, or None; a forecast that leaves them is
            made again on a log or logit scale (:mod:`runcast.forecast._bounds`).
        **opts: method options; every method takes ``calibrate=False`` to skip the shipped
            calibration (the method's own bands: ``tau = 1``, the PFN's raw spread).

    A constant curve gets a flat forecast and a :class:`~runcast.RuncastWarning`. A method
    whose median would take a positive loss to 0 or below raises
    :class:`~runcast.errors.FitError`; ``"auto"`` then answers with the next of the law (over a
    schedule you gave), the PFN and the ensemble, and warns; ``"law+pfn"`` and
    ``"pfn+ensemble"`` return whichever of their two halves can forecast.

    Example:
        >>> import numpy as np, runcast
        >>> s = np.arange(0, 3001, 25)
        >>> c = runcast.Curve(s, 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6)
        >>> f = runcast.forecast(c, until=10_000)
        >>> f.method in ("pfn+ensemble", "ensemble"), int(f.steps[-1])
        (True, 10000)
        >>> bool(abs(f.final.median - 2.31) < 0.1)
        True
        >>> lo, hi = f.final.interval(0.8)
        >>> bool(lo < f.final.median < hi), bool(f.prob_below(2.5) > 0.9)
        (True, True)
    """
    until = as_until(until)
    finite = curve.finite() if isinstance(curve, Curve) else None
    if finite is not None:
        _check_reach(finite, until)
    sched = _schedule_of(curve, schedule)
    seen = None if finite is None else finite.last_step / max(until, 1)
    name = method
    kind = curve_kind(finite) if finite is not None else "eval"
    given, given_curve = sched, curve  # what the user passed, for the fallbacks
    if method == "auto":
        name, use_schedule = auto_choice(sched, seen, kind)
        if sched is not None:
            _check_schedule(sched, until)  # the user's schedule is checked, used or not
        if not use_schedule and sched is not None:
            # a blind choice forecasts as if no schedule were known; the PFN would read one
            # carried by the curve itself
            sched = None
            if isinstance(curve, Curve) and curve.schedule is not None:
                curve = Curve(curve.step, curve.value, name=curve.name)
    falls = True  # a loss (the laws' curves), unless auto sees an accuracy
    if method == "auto" and finite is not None and finite.value.size:
        falls = (direction or detect_direction(finite.value, curve.name)) == "down"
    if not falls and name in ("law", "law+pfn"):
        # the laws model a loss over its schedule; an accuracy goes to the PFN, which uses it
        name = "pfn" if "pfn" in METHODS else "ensemble"
    kwargs: dict[str, Any] = {"steps": steps, "direction": direction, "noise": noise,
                              "n_paths": n_paths, "seed": seed, **opts}  # fmt: skip
    # auto answers rather than refuse: a choice that cannot forecast this curve (FitError) is
    # followed by the law (when a schedule was given), the PFN (with it), then the ensemble; a
    # method the user named keeps its error, and so does too little data (InvalidInputError)
    chain = [(name, sched, curve)]
    if method == "auto":
        backups = ("law", "pfn", "ensemble") if given is not None and falls else (
            "pfn", "ensemble")
        chain += [(m, given, given_curve) for m in backups
                  if m in METHODS and m != name]  # fmt: skip
    for i, (current, sch, crv) in enumerate(chain):
        try:
            out = run_method(current, crv, until, sch, **kwargs)
        except FitError as err:
            if i + 1 == len(chain) or isinstance(err, InvalidInputError):
                raise
            warnings.warn(f"{err} Forecasting with method={chain[i + 1][0]!r} instead.",
                          RuncastWarning, stacklevel=2)  # fmt: skip
            continue
        if method == "auto":
            # what auto saw and did: the kind of curve it chose for, and whether the method
            # that answered was given the schedule (a blind choice forecasts better on some kinds)
            out.info["auto"] = {"kind": kind, "schedule_used": sch is not None}
        return out
    raise AssertionError("unreachable: the last method of the chain returns or raises")


def run_method(
    name: str, curve: Curve, until: int, schedule: Schedule | None, **kwargs: Any
) -> Forecast:
    """One named method, as it is: no ``auto``, no fallback, no bounds (the first layer).

    The mixtures build on this, never on :func:`forecast`, so the public checks, warnings and
    the bounds apply once, around the whole forecast. ``schedule`` is the resolved schedule (or
    None); ``kwargs`` are :func:`forecast`'s keyword arguments.
    """
    _load_methods()
    m = get_method(name)
    if m.needs_schedule:
        if schedule is None:
            raise InvalidInputError(
                f"Method {name!r} needs the run's LR schedule: pass schedule=... (a Schedule, a "
                "spec dict or a spec string), or use method='ensemble'."
            )
        _check_schedule(schedule, until)
    if name in RAW_METHODS:
        return _run_raw(name, curve, until, schedule, **kwargs)
    return m.fn(curve, until, schedule, **kwargs)  # type: ignore[no-any-return]


#: a forecast past this many times the observed steps is warned about: the calibration was
#: measured from 10% of a run on (bench/README.md, "Forecast the rest of a run")
MAX_REACH = 10.0


def _check_reach(curve: Curve, until: int) -> None:
    """Checks every method shares, whatever it is: enough points, and how far past them.

    Every method needs :data:`MIN_POINTS` finite points (the README's rule; ``"auto"`` used to
    go on from 4 with the PFN, and at 3 named that internal method). A forecast more than
    :data:`MAX_REACH` times the observed steps ahead is an extrapolation of the curve's form
    that no calibration covers: it is made, with a warning saying how far.
    """
    c = curve.finite()  # callers pass it finite already; then this is the curve itself
    if len(c) < MIN_POINTS:
        raise NotEnoughDataError(
            f"Forecasting needs at least {MIN_POINTS} finite points, but the curve has {len(c)}. "
            "Log the metric more often, or wait for more steps."
        )
    seen = c.last_step + 1
    if until + 1 > MAX_REACH * seen:
        warnings.warn(
            f"until={until} is {(until + 1) / seen:,.0f}x the {seen:,} steps observed: a "
            f"forecast more than {MAX_REACH:g}x past the data extrapolates the curve's form, "
            "and its intervals are not calibrated that far. Forecast an earlier step, or wait "
            "for more of the run.",
            RuncastWarning,
            stacklevel=3,
        )


def available_methods() -> dict[str, str]:
    """Every registered method name with its one-line summary.

    Example:
        >>> "ensemble" in available_methods()
        True
    """
    _load_methods()
    return {k: v.summary for k, v in sorted(METHODS.items())}
