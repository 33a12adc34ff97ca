"""fit_law: fit a loss law to one or several curves jointly, robustly, with uncertainty.

The fit minimises a Huber loss of the log-loss residuals (relative errors: curves at different
loss levels weigh alike, and a few spikes do not pull the fit) with scipy's trust-region least
squares and the laws' analytic Jacobians, from several starts. Weak priors on the exponents keep
fits of short partial curves sensible (runcast's law weighs them far more: see ``_runcast``).
The parameter covariance is the Laplace approximation at the optimum; with two or more curves,
leave-one-curve-out refits measure the law's error on a schedule it has not seen, which
calibrates the forecast bands.
"""

from __future__ import annotations

import contextlib
import functools
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from runcast.curve import Curve
from runcast.errors import FitError, InvalidInputError, NotEnoughDataError, RuncastWarning
from runcast.forecast.laws._areas import FloatArray
from runcast.forecast.laws._base import (
    DEFAULT_MODEL_ERROR,
    LAWS,
    Law,
    check_fit,
    lr_grid,
    stack_eval,
)
from runcast.forecast.laws._data import FitCurve, prepare_curves

# A fit whose typical relative residual is above this does not describe the curve: warn.
POOR_FIT_RESIDUAL = 0.02
# A fit whose median log residual on one of its curves is beyond this (a factor 1.65) misses
# that curve's level altogether: a law cannot go below 1e-6 (the bounds of L0 and A), so a
# loss of 1e-12 was fitted a million times too high with only a "fits poorly" warning. Real
# fits are off by well under 1% at the median; this only catches a law that cannot be right.
MAX_LEVEL_BIAS = 0.5


@functools.lru_cache(maxsize=1)
def one_blas_thread() -> Callable[[], AbstractContextManager[Any]]:
    """A context that runs BLAS on one thread, if threadpoolctl is installed (else a no-op).

    The solver's SVDs are of tall, thin Jacobians (~2000 x 15): too small to gain from threads,
    and on a busy machine OpenBLAS's spinning threads make a joint fit 3x slower (measured:
    1.4 s on one thread vs 4.2 s on two, with other jobs running).
    """
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
    except ImportError:
        return contextlib.nullcontext
    ctl = ThreadpoolController()  # built once: inspecting the loaded libraries takes ~1 ms
    return lambda: ctl.limit(limits=1, user_api="blas")


@dataclass
class FitResult:
    """The optimum of one fit: parameters (natural and fitting space), cost, residuals."""

    theta: FloatArray
    z: FloatArray
    cost: float
    residuals: FloatArray
    jac: FloatArray
    nfev: int


def _problem(
    law: type[Law], data: Sequence[FitCurve], delta: float, prior_strength: float
) -> tuple[Any, Any, FloatArray]:
    preps = [law._prepare(c.lrs, c.steps) for c in data]
    log_y = np.log(np.concatenate([c.losses for c in data]))
    params = law.PARAMS
    losses = np.concatenate([c.losses for c in data])
    peak = max(float(c.lrs.max()) for c in data)
    priors = {p.name: p.prior for p in params if p.prior is not None}
    priors.update(law._data_priors(losses, peak))
    pri = [(i, priors[p.name]) for i, p in enumerate(params) if p.name in priors]
    pri_w = prior_strength * delta
    jp = np.zeros((len(pri), len(params)))
    for row, (i, (_, sd)) in enumerate(pri):
        jp[row, i] = pri_w / sd

    def theta_of(z: FloatArray) -> FloatArray:
        return np.array([p.from_z(float(v)) for p, v in zip(params, z, strict=True)])

    # least_squares asks for the Jacobian at the point it has just evaluated: compute both in
    # one pass (the costly powers are shared) and hand the Jacobian over from the cache.
    cache: dict[str, FloatArray] = {}

    def fun(z: FloatArray) -> FloatArray:
        theta = theta_of(z)
        pred, j = stack_eval(law, theta, preps, True)
        assert j is not None
        safe = np.maximum(pred, 1e-12)
        dxdz = np.array([p.dx_dz(float(x)) for p, x in zip(params, theta, strict=True)])
        jr = -(j * dxdz[None, :]) / safe[:, None]
        cache["z"], cache["jac"] = z.copy(), np.vstack([jr, jp])
        r = log_y - np.log(safe)
        prior = [pri_w * (z[i] - mu) / sd for i, (mu, sd) in pri]
        return np.concatenate([r, prior])

    def jac(z: FloatArray) -> FloatArray:
        if "z" not in cache or not np.array_equal(cache["z"], z):
            fun(z)
        return cache["jac"]

    return fun, jac, log_y


def best_of_starts(
    fun: Any,
    jac: Any,
    starts: Sequence[FloatArray],
    lo: FloatArray,
    hi: FloatArray,
    *,
    delta: float,
    max_nfev: int,
) -> Any:
    """The lowest-cost Huber least-squares solution from several starts (None if all failed).

    Each start is nudged inside the bounds; a start where the law cannot be evaluated (a
    ValueError or a singular system) is skipped, the others carry the fit.
    """
    best = None
    for z0 in starts:
        z0 = np.clip(z0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
        with np.errstate(all="ignore"), one_blas_thread()():
            try:
                res = least_squares(
                    fun, z0, jac=jac, bounds=(lo, hi), loss="huber", f_scale=delta,
                    x_scale="jac", max_nfev=max_nfev, method="trf",
                )  # fmt: skip
            except (ValueError, np.linalg.LinAlgError):
                continue  # a start outside the law's valid region; the others carry the fit
        if np.isfinite(res.cost) and (best is None or res.cost < best.cost):
            best = res
    return best


def _fit_once(
    law: type[Law],
    data: Sequence[FitCurve],
    starts: Sequence[dict[str, float]],
    *,
    delta: float,
    prior_strength: float,
    max_nfev: int,
) -> FitResult:
    fun, jac, log_y = _problem(law, data, delta, prior_strength)
    lo, hi = np.array([p.z_bounds() for p in law.PARAMS]).T
    z_starts = [np.array([p.to_z(start[p.name]) for p in law.PARAMS]) for start in starts]
    best = best_of_starts(fun, jac, z_starts, lo, hi, delta=delta, max_nfev=max_nfev)
    if best is None:
        raise FitError(
            f"The {law.name} law could not be fitted from any of {len(starts)} starts. "
            "Check that the curve is a decreasing loss with its true schedule, or try law="
            f"'{'mpl' if law.name != 'mpl' else 'momentum'}'."
        )
    check_fit(float(best.cost), log_y.size)
    n = log_y.size
    theta = np.array([p.from_z(float(v)) for p, v in zip(law.PARAMS, best.x, strict=True)])
    return FitResult(theta, best.x, float(best.cost), best.fun[:n], best.jac, int(best.nfev))


def _laplace_cov(res: FitResult, n_data: int) -> tuple[FloatArray, float]:
    """Parameter covariance in fitting space and the robust residual sd."""
    r = res.residuals
    k = res.theta.size
    # 1.4826 * MAD: the sd of Gaussian noise, unmoved by the few outliers the Huber loss ignored
    noise = float(1.4826 * np.median(np.abs(r - np.median(r))))
    s2 = max(float(np.sum(r**2)) / max(n_data - k, 1), noise**2, 1e-12)
    jtj = res.jac.T @ res.jac
    cov = s2 * np.linalg.pinv(jtj, rcond=1e-12)
    return 0.5 * (cov + cov.T), noise


def _held_out_error(
    law: type[Law], data: Sequence[FitCurve], theta: FloatArray, delta: float, prior: float
) -> tuple[float, list[float]]:
    """Leave-one-curve-out RMS log error: the law's error on a schedule it has not seen."""
    per_curve = []
    for i, held in enumerate(data):
        rest = [c for j, c in enumerate(data) if j != i]
        th, _, _, _ = _fit_parts(law, rest, 1, 0, delta, prior, 30, start=theta)
        pred = stack_eval(law, th, [law._prepare(held.lrs, held.steps)], False)[0]
        err = np.log(held.losses) - np.log(np.maximum(pred, 1e-12))
        per_curve.append(float(np.sqrt(np.mean(err**2))))
    return float(np.sqrt(np.mean(np.square(per_curve)))), per_curve


def _fit_parts(
    law: type[Law],
    data: Sequence[FitCurve],
    n_starts: int,
    seed: int,
    delta: float,
    prior: float,
    max_nfev: int,
    start: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, int]:
    """Fit ``law``; its parameters, their covariance, the log residuals and the evaluations."""
    n = sum(c.steps.size for c in data)
    losses = np.concatenate([c.losses for c in data])
    preps = [law._prepare(c.lrs, c.steps) for c in data]
    if law.name == "grid":
        # the grid law has a closed-form posterior: no starts, no optimiser
        from runcast.forecast.laws._grid import fit_closed_form

        theta, cov = fit_closed_form(data)
        pred = stack_eval(law, theta, preps, False)[0]
        return theta, cov, np.log(losses) - np.log(np.maximum(pred, 1e-12)), 0
    if start is not None:
        starts = [dict(zip([p.name for p in law.PARAMS], start, strict=True))]
    else:
        s1 = np.concatenate([c.s1 for c in data])
        peak = max(float(c.lrs.max()) for c in data)
        starts = _starts_for(law, losses, s1, peak, n_starts, seed)
    best = _fit_once(
        law, data, starts, delta=delta, prior_strength=prior * law.PRIOR_SCALE, max_nfev=max_nfev
    )
    cov, _ = _laplace_cov(best, n)
    pred = stack_eval(law, best.theta, preps, False)[0]
    residuals = np.log(losses) - np.log(np.maximum(pred, 1e-12))
    return best.theta, cov, residuals, best.nfev


def fit_law(
    curves: Curve | Sequence[Curve],
    law: str = "auto",
    *,
    seed: int = 0,
    restarts: int | None = None,
    fast: bool = False,
    huber_delta: float = 1e-3,
    prior_strength: float = 1.0,
    max_points: int | None = None,
    min_step: int | None = None,
    calibrate: bool = True,
) -> Law:
    """Fit a loss law to one or several curves (each with its schedule) jointly.

    With runs of several model sizes, :func:`~runcast.forecast.laws.fit_laws` fits one law per
    size and pools what a few curves of one size cannot pin down (the LR response's shape).

    Args:
        curves: a :class:`~runcast.Curve` or a list; each needs ``curve.schedule`` covering its
            last step. NaNs are dropped (with a warning); points before the end of warmup (and
            the first 1% of steps) are skipped unless ``min_step`` is given.
        law: ``"auto"`` (runcast's best law), ``"runcast"``, ``"mpl"``, ``"momentum"`` or
            ``"grid"`` (the law behind ``forecast(method="law")``, fitted in closed form).
        seed: seeds the few random restarts beyond the law's deterministic starts.
        restarts: how many starts to try (default 2; 1 with ``fast=True``).
        fast: a single start and a capped solver budget, for forecasting inside a training
            loop (about 10-50 ms for 500 points); no leave-one-out calibration.
        huber_delta: the Huber loss's scale on log-loss residuals (relative error).
        prior_strength: weight of the weak priors on the exponents (0 turns them off); a law
            may weigh its priors more (runcast's law: ``RuncastLaw.PRIOR_SCALE`` times).
        max_points: curves longer than this are reduced to means of equal step bins
            (default 256, or 128 with ``fast=True``).
        min_step: fit only points at or after this step.
        calibrate: with 2+ curves, refit leaving each out to calibrate the bands.

    Example:
        >>> import numpy as np, runcast
        >>> from runcast.forecast.laws import MultiPowerLaw
        >>> truth = MultiPowerLaw.published("25M")
        >>> spec = {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 2160, "total": 24000}
        >>> steps = np.arange(2200, 24000, 200)
        >>> curve = runcast.Curve(steps, truth.predict(spec, steps),
        ...                       schedule=runcast.Schedule.from_spec(spec))
        >>> law = fit_law(curve, "mpl")
        >>> err = np.abs(law.predict(spec, steps) / curve.value - 1).max()
        >>> bool(err < 1e-3)
        True
    """
    name = law_name(law)
    check_options(huber_delta=huber_delta, prior_strength=prior_strength, max_points=max_points)
    if restarts is not None and (not _is_int(restarts) or restarts < 1):
        raise InvalidInputError(
            f"restarts must be at least 1 (a whole number), but got {restarts=}."
        )
    if min_step is not None and (not _is_int(min_step) or min_step < 0):
        raise InvalidInputError(
            f"min_step must be a step (a whole number >= 0), but got {min_step=}."
        )
    if not _is_int(seed):
        raise InvalidInputError(f"seed must be a whole number, but got {seed=}.")
    return _fit_law(
        LAWS[name], curves, seed=seed, restarts=restarts, fast=fast, huber_delta=huber_delta,
        prior_strength=prior_strength, max_points=max_points, min_step=min_step,
        calibrate=calibrate,
    )  # fmt: skip


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def law_name(law: Any) -> str:
    """The registered name of ``law`` (``"auto"`` is runcast's); anything else is an error.

    Example:
        >>> law_name("auto")
        'runcast'
    """
    name = "runcast" if law == "auto" else law
    if not isinstance(name, str) or name not in LAWS:
        raise InvalidInputError(
            f"Unknown law {law!r}; use 'auto' or one of: {', '.join(sorted(LAWS))}."
        )
    return name


def check_options(*, huber_delta: Any, prior_strength: Any, max_points: Any) -> None:
    """Refuse fit options a solver cannot use, naming the value: left to the solver, a string
    or a fractional ``max_points`` is a numpy/scipy TypeError and ``prior_strength=nan`` a
    FitError that blames the curve.

    Example:
        >>> check_options(huber_delta=1e-3, prior_strength=-1.0, max_points=256)
        Traceback (most recent call last):
        ...
        runcast.errors.InvalidInputError: prior_strength must be a finite number >= 0 (0 turns the priors off), but got prior_strength=-1.0.
    """  # noqa: E501
    if not _is_real(huber_delta) or not (np.isfinite(huber_delta) and huber_delta > 0):
        raise InvalidInputError(f"huber_delta must be positive, but got {huber_delta=}.")
    ok = _is_real(prior_strength) and np.isfinite(prior_strength)
    if not ok or prior_strength < 0:
        raise InvalidInputError(
            "prior_strength must be a finite number >= 0 (0 turns the priors off), but got "
            f"{prior_strength=}."
        )
    if max_points is not None and (not _is_int(max_points) or max_points < 8):
        raise InvalidInputError(f"max_points must be a whole number >= 8, but got {max_points=}.")


def _fit_law(
    cls: type[Law],
    curves: Curve | Sequence[Curve],
    *,
    seed: int,
    restarts: int | None,
    fast: bool,
    huber_delta: float,
    prior_strength: float,
    max_points: int | None,
    min_step: int | None,
    calibrate: bool,
) -> Law:
    """:func:`fit_law` for a law class, which may be a variant of a public law (e.g. with its
    priors moved, see ``_joint``); the result is always the public law of ``cls.name``."""
    name = cls.name
    t0 = time.perf_counter()
    if max_points is None:
        max_points = 128 if fast else 256
    data = prepare_curves(curves, max_points=max_points, min_step=min_step)
    n = sum(c.steps.size for c in data)
    k = len(cls.PARAMS)
    if n < k + 3:
        raise NotEnoughDataError(
            f"The {name} law has {k} parameters and needs at least {k + 3} points after "
            f"warmup to fit; got {n}. Log the loss more often or fit later in the run."
        )
    n_starts = restarts if restarts is not None else (1 if fast else 2)
    budget = 40 if fast else 300
    theta, cov, residuals, nfev = _fit_parts(
        cls, data, n_starts, seed, huber_delta, prior_strength, budget
    )
    _check_level(name, data, residuals)
    noise = float(1.4826 * np.median(np.abs(residuals - np.median(residuals))))
    s1 = np.concatenate([c.s1 for c in data])
    info: dict[str, Any] = {
        "n_points": n,
        "curves": [c.name for c in data],
        "s1_max": float(s1.max()),
        # the fitted runs' schedules, future included: forecasting the same run's rest is no
        # transfer to another schedule
        "fit_lr": [lr_grid(c.planned, c.planned.size - 1) for c in data],
        "last_step": int(max(c.steps[-1] for c in data)),
        "nfev": nfev,
        "rms_rel_error": float(np.sqrt(np.mean(residuals**2))),
    }
    model_error = DEFAULT_MODEL_ERROR
    if calibrate and not fast and len(data) >= 2:
        model_error, per_curve = _held_out_error(cls, data, theta, huber_delta, prior_strength)
        info["held_out_rms"] = per_curve
    info["fit_seconds"] = time.perf_counter() - t0
    if noise > POOR_FIT_RESIDUAL:
        warnings.warn(
            f"The {name} law fits poorly: typical relative residual {noise:.3g} "
            f"(> {POOR_FIT_RESIDUAL}). Its predictions are unreliable; check the schedule "
            "matches the curve, or drop the early transient with min_step=.",
            RuncastWarning,
            stacklevel=2,
        )
    return LAWS[name](
        dict(zip([p.name for p in cls.PARAMS], theta, strict=True)),
        cov=cov,
        noise=noise,
        model_error=max(model_error, noise),
        info=info,
    )


def _check_level(name: str, data: Sequence[FitCurve], residuals: FloatArray) -> None:
    """Raise a FitError when the fitted law misses a curve's level (see ``MAX_LEVEL_BIAS``).

    Example:
        >>> c = FitCurve(np.arange(3), np.ones(3) * 1e-12, np.ones(3), "tiny", np.ones(3))
        >>> _check_level("mpl", [c], np.full(3, -np.log(1e6)))
        Traceback (most recent call last):
        ...
        runcast.errors.FitError: The mpl law cannot reach the level of tiny: its fit is off by a factor of 1e+06 at the median (losses 1e-12 to 1e-12). Laws model losses of about 1e-4 to 1e3: rescale the values, or fit curves of one scale together.
    """  # noqa: E501
    at = np.cumsum([0] + [c.steps.size for c in data])
    for i, c in enumerate(data):
        bias = float(np.median(residuals[at[i] : at[i + 1]]))  # log(observed / predicted)
        if abs(bias) > MAX_LEVEL_BIAS:
            raise FitError(
                f"The {name} law cannot reach the level of {c.name}: its fit is off by a factor "
                f"of {np.exp(abs(bias)):.3g} at the median (losses {c.losses.min():.3g} to "
                f"{c.losses.max():.3g}). Laws model losses of about 1e-4 to 1e3: rescale the "
                "values, or fit curves of one scale together."
            )


def _starts_for(
    cls: type[Law], losses: FloatArray, s1: FloatArray, peak: float, n: int, seed: int
) -> list[dict[str, float]]:
    """The law's deterministic starts, then random perturbations of them, ``n`` in all.

    Perturbations are made in fitting space and clipped to the bounds: scaling a decay factor
    like ``lam = 0.999`` by a random factor would step past 1, off the law's valid region.

    Example:
        >>> from runcast.forecast.laws import MomentumLaw
        >>> starts = _starts_for(MomentumLaw, np.array([3.5, 3.2, 3.0]),
        ...                      np.array([0.5, 1.0, 2.0]), 3e-4, 12, 0)
        >>> len(starts), all(0.5 <= s["lam"] < 1 for s in starts)
        (12, True)
    """
    base = cls._starts(losses, s1, peak)
    if n <= len(base):
        return base[:n]
    rng = np.random.default_rng(seed)
    out = list(base)
    while len(out) < n:
        pick = base[int(rng.integers(len(base)))]
        start = {}
        for p in cls.PARAMS:
            lo, hi = p.z_bounds()
            z = p.to_z(pick[p.name]) + float(rng.normal(0.0, 0.3))
            start[p.name] = p.from_z(float(np.clip(z, lo, hi)))
        out.append(start)
    return out
