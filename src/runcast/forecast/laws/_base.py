"""The Law base class: a loss law over an LR schedule, its parameters and their uncertainty.

A law maps a schedule to a loss curve, ``L(t) = f(eta_0..eta_t; theta)``. Subclasses declare
their parameters (:class:`Param`: bounds, fitting transform, weak prior) and two functions:
``_prepare`` (everything that depends on the schedule and the steps only, computed once) and
``_evaluate`` (the prediction and its Jacobian by the parameters, for one prepared curve).
Fitting, prediction, forecasting and (de)serialisation live here, shared by all laws.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from runcast.errors import FitError, InvalidInputError, RuncastWarning, ScheduleError
from runcast.forecast._types import Forecast
from runcast.schedules import Schedule

# a law evaluates the LR of every step up to the last one asked for: no further than a schedule
from runcast.schedules._base import MAX_STEPS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Relative (log-space) sd of a law's error on steps or schedules it was not fitted on, used when
# the fit had a single curve so no held-out curve could calibrate it, and its growth with the
# reach r = ln(S1(t) / S1 at the last fitted point): sd(t) = model_error * (1 + REACH_GROWTH * r).
# Calibrated by fitting the first 20-70% of the nine MPL-benchmark *fit* curves (fast fits, all
# laws) and forecasting the rest: the 80th percentile of |log error| grows from ~0.0028 at
# r ~ 0.15 to ~0.006 at r ~ 0.5, ~0.009 at r ~ 1 and ~0.018 at r ~ 1.6: sd ~ 0.002 (1 + 3.5 r).
DEFAULT_MODEL_ERROR = 2e-3
REACH_GROWTH = 3.5
# A law fitted on one schedule and asked about another has a further error that grows with how
# far the LRs differ: + TRANSFER_ERROR * dev(t), dev = the largest |LR difference| / peak so far.
# Calibrated fitting each MPL-benchmark fit curve alone and predicting the other two: the 80th
# percentile of |log error| rises from ~0.002 at dev 0 to ~0.004 at dev 0.5 and ~0.009 at 0.85.
TRANSFER_ERROR = 5e-3
LAWS: dict[str, type[Law]] = {}


def _number(value: Any, what: str, *, positive: bool = False) -> float:
    """``value`` as a finite float (``>= 0`` if ``positive``), else an InvalidInputError."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be a number, but got {value!r}.") from None
    if not np.isfinite(out) or (positive and out < 0):
        need = "finite and >= 0" if positive else "finite"
        raise InvalidInputError(f"{what} must be {need}, but got {out!r}.")
    return out


def _matrix(value: Any) -> FloatArray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"cov must be a square matrix of numbers, but got {value!r}."
        ) from None


def _check_domain(p: Param, value: float) -> None:
    """Refuse a parameter outside the region where the law is defined (not its fitting bounds:
    a hand-made law may go past those): a log parameter must be > 0, a log1m one in (0, 1).

    Example:
        >>> _check_domain(Param("lam", 0.5, 0.999, "log1m"), 1.5)
        Traceback (most recent call last):
        ...
        runcast.errors.InvalidInputError: Parameter lam must be in (0, 1), but got 1.5.
    """
    if p.transform == "log" and value <= 0:
        raise InvalidInputError(f"Parameter {p.name} must be > 0, but got {value!r}.")
    if p.transform == "log1m" and not 0 < value < 1:
        raise InvalidInputError(f"Parameter {p.name} must be in (0, 1), but got {value!r}.")


#: what the warning of an unpinned law's forecast says (a filter for callers that handle it)
UNPINNED = r".*leave its parameters unpinned"


def _unpinned(name: str, point: FloatArray, steps: IntArray, samples: FloatArray) -> bool:
    """Whether the forecast's median strays from the law's own prediction by more than a
    factor of 2 somewhere, and say so: the parameter draws (a local, Laplace approximation)
    then come from directions the fitted runs left unpinned (one short run and a law of 7
    parameters), and the forecast's median and interval mean nothing. The point prediction
    (``law.predict``) stands; the remedy is more, or longer, runs to fit.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.abs(np.log(np.median(samples, axis=0) / point))
    if not np.any(off > np.log(2.0)):
        return False
    j = int(np.nanargmax(np.where(np.isfinite(off), off, np.inf)))
    warnings.warn(
        f"The {name} law's forecast at step {int(steps[j])} has a median of "
        f"{float(np.median(samples[:, j])):.4g} where the law predicts {float(point[j]):.4g}: "
        "the runs it was fitted on leave its parameters unpinned, so this forecast's interval "
        "is not to be trusted. Fit it on more runs, or longer ones.",
        RuncastWarning,
        stacklevel=3,
    )
    return True


def _refuse_nonpositive(
    name: str, point: FloatArray, steps: IntArray, last_fitted: int | None
) -> None:
    """Raise a FitError when the law's own prediction of a loss is not a positive number.

    Sampled paths off the law's valid region fall back to this prediction; when it is itself
    <= 0 or not finite there is nothing to fall back to, and no band around it is a forecast.
    """
    bad = ~np.isfinite(point) | (point <= 0)
    if not bad.any():
        return
    j = int(np.flatnonzero(bad)[0])
    seen = "" if last_fitted is None else f" (fitted up to step {last_fitted})"
    raise FitError(
        f"The {name} law{seen} predicts a loss of {float(point[j]):.4g} at step {int(steps[j])}: "
        "this schedule or step is far outside what it was fitted on. Forecast nearer steps, "
        "or fit on runs closer to this schedule."
    )


@dataclass(frozen=True)
class Param:
    """One law parameter: start value, bounds, fitting transform and an optional weak prior.

    ``transform`` is ``"log"`` (positive, fitted as its log), ``"lin"`` or ``"log1m"`` (in
    (0, 1), fitted as ``log(1 - x)``: for decay factors close to 1). ``prior`` is ``(mean, sd)``
    in the fitting space; it regularises fits of short, partial curves toward typical values.
    """

    name: str
    lower: float
    upper: float
    transform: str = "log"
    prior: tuple[float, float] | None = None

    def to_z(self, x: float) -> float:
        """Natural value to fitting space."""
        if self.transform == "log":
            return float(np.log(x))
        if self.transform == "log1m":
            return float(np.log1p(-x))
        return float(x)

    def from_z(self, z: float) -> float:
        """Fitting space to natural value."""
        if self.transform == "log":
            return float(np.exp(z))
        if self.transform == "log1m":
            return float(-np.expm1(z))
        return float(z)

    def dx_dz(self, x: float) -> float:
        """Derivative of the natural value by its fitting-space value (chain rule)."""
        if self.transform == "log":
            return x
        if self.transform == "log1m":
            return x - 1.0
        return 1.0

    def z_bounds(self) -> tuple[float, float]:
        """The bounds in fitting space (ordered)."""
        a, b = self.to_z(self.lower), self.to_z(self.upper)
        return (min(a, b), max(a, b))


def lr_grid(lrs: FloatArray, last_step: int, n: int = 256) -> list[list[float]]:
    """A fitted curve's schedule on ``n`` steps up to ``last_step``, compact enough for JSON."""
    steps = np.unique(np.linspace(0, last_step, n).astype(np.int64))
    return [steps.astype(np.float64).tolist(), lrs[steps].tolist()]


def lr_deviation(fitted: list[Any], lrs: FloatArray, steps: IntArray) -> FloatArray:
    """How far schedule ``lrs`` has strayed from the closest fitted one by each of ``steps``:
    the running max of ``|LR - fitted LR| / fitted peak`` (past a fitted curve's end, its last LR).

    Example:
        >>> fitted = [lr_grid(np.full(100, 1.0), 99)]
        >>> lr_deviation(fitted, np.r_[np.ones(50), np.full(50, 0.5)], np.array([10, 99])).tolist()
        [0.0, 0.5]
    """
    grid = np.unique(np.r_[np.linspace(0, steps[-1], 512).astype(np.int64), steps])
    best = np.full(grid.size, np.inf)
    for f_steps, f_lrs in fitted:
        ref = np.interp(grid, np.asarray(f_steps), np.asarray(f_lrs))
        dev = np.maximum.accumulate(np.abs(lrs[grid] - ref) / max(float(np.max(f_lrs)), 1e-300))
        best = np.minimum(best, dev)
    return np.asarray(best[np.searchsorted(grid, steps)], dtype=np.float64)


def as_schedule(schedule: Schedule | Mapping[str, Any]) -> Schedule:
    """A Schedule from a Schedule or a spec dict; anything else is a ScheduleError."""
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, Mapping):
        return Schedule.from_spec(schedule)
    raise ScheduleError(
        f"schedule must be a runcast.Schedule or a spec dict, but got {type(schedule).__name__}."
    )


def schedule_lrs(schedule: Schedule, last_step: int) -> FloatArray:
    """The LRs of steps ``0..last_step``; a schedule too short or with bad LRs is an error."""
    if last_step >= MAX_STEPS:
        raise ScheduleError(
            f"Step {last_step} is past the {MAX_STEPS:.0e} steps a law can evaluate (it needs "
            f"the LR of every step: {8 * last_step / 2**30:.3g} GiB here). Ask for earlier steps."
        )
    total = schedule.total
    if schedule.kind == "recorded" and total is not None and last_step >= total:
        raise ScheduleError(
            f"The recorded schedule has {total} steps but step {last_step} was asked for. "
            "Record the LR up to the last step, or give the planned schedule as a spec."
        )
    lrs = np.asarray(schedule.array(last_step + 1), dtype=np.float64)
    bad = ~np.isfinite(lrs) | (lrs < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScheduleError(f"Learning rates must be finite and >= 0, but lr[{i}] = {lrs[i]!r}.")
    if not (lrs > 0).any():
        raise ScheduleError("The schedule's LR is zero at every step: no law can use it.")
    return lrs


def as_steps(steps: npt.ArrayLike) -> IntArray:
    """Validated non-negative integer steps (any order, repeats allowed)."""
    arr = np.atleast_1d(np.asarray(steps))
    if arr.size == 0:
        raise InvalidInputError("steps is empty; pass the steps to predict, e.g. range(0, T, 100).")
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise InvalidInputError(f"steps must be integers, but got {arr[:5]!r}.")
    out = arr.astype(np.int64).ravel()
    if out.min() < 0:
        raise InvalidInputError(f"steps cannot be negative, but got {int(out.min())}.")
    return out


class Law:
    """A fitted loss law over LR schedules: predict, forecast with bands, save and load.

    Build one with :func:`runcast.fit_law`, :meth:`load`, or from known parameters.

    Example:
        >>> from runcast.forecast.laws import MultiPowerLaw
        >>> law = MultiPowerLaw.published("25M")
        >>> spec = {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 2160, "total": 24000}
        >>> round(float(law.predict(spec, [23999])[0]), 3)
        3.315
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    # how much stronger than ``fit_law(prior_strength=...)`` this law's priors weigh in a fit
    PRIOR_SCALE: ClassVar[float] = 1.0

    def __init__(
        self,
        params: Mapping[str, float],
        *,
        cov: npt.ArrayLike | None = None,
        noise: float = 0.0,
        model_error: float = DEFAULT_MODEL_ERROR,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        names = [p.name for p in self.PARAMS]
        if not isinstance(params, Mapping):
            raise InvalidInputError(
                f"{type(self).__name__} takes its parameters as a dict {names}, but got "
                f"{type(params).__name__}."
            )
        missing = [n for n in names if n not in params]
        extra = [n for n in params if n not in names]
        if missing or extra:
            raise InvalidInputError(
                f"{type(self).__name__} takes parameters {names}; "
                f"missing {missing}, unknown {extra}."
            )
        self.params: dict[str, float] = {n: _number(params[n], f"Parameter {n}") for n in names}
        for p in self.PARAMS:
            _check_domain(p, self.params[p.name])
        k = len(names)
        self.cov = np.zeros((k, k)) if cov is None else _matrix(cov)
        if self.cov.shape != (k, k):
            raise InvalidInputError(f"cov must be {k}x{k}, but got shape {self.cov.shape}.")
        if not np.all(np.isfinite(self.cov)):
            raise InvalidInputError("cov must be finite; refit the law or pass cov=None.")
        self.noise = _number(noise, "noise", positive=True)
        self.model_error = _number(model_error, "model_error", positive=True)
        if info is not None and not isinstance(info, Mapping):
            raise InvalidInputError(f"info must be a dict, but got {type(info).__name__}.")
        self.info: dict[str, Any] = dict(info or {})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # only a class naming itself is a public law; a variant inheriting a name (e.g. an
        # ensemble's member) must not replace the law of that name in the registry
        if cls.__dict__.get("name"):
            LAWS[cls.name] = cls

    # --- what each law defines -----------------------------------------------------------------
    @classmethod
    def _prepare(cls, lrs: FloatArray, steps: IntArray) -> Any:
        """Schedule-only precomputation for ``steps`` (sorted, unique)."""
        raise NotImplementedError

    @classmethod
    def _evaluate(
        cls, theta: FloatArray, prep: Any, grad: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        """Prediction at the prepared steps and, if ``grad``, its (n, k) Jacobian by theta."""
        raise NotImplementedError

    @classmethod
    def _starts(cls, losses: FloatArray, s1: FloatArray, peak: float) -> list[dict[str, float]]:
        """Initial parameter guesses for a multi-start fit, best first."""
        raise NotImplementedError

    @classmethod
    def _data_priors(cls, losses: FloatArray, peak: float) -> dict[str, tuple[float, float]]:
        """Weak priors (fitting space) that scale with the data, e.g. on an annealing gain."""
        return {}

    # --- prediction ------------------------------------------------------------------------------
    @property
    def theta(self) -> FloatArray:
        """The parameters as an array, in ``PARAMS`` order."""
        return np.array([self.params[p.name] for p in self.PARAMS])

    def _predict_theta(self, schedule: Schedule, steps: IntArray, thetas: FloatArray) -> FloatArray:
        uniq, inverse = np.unique(steps, return_inverse=True)
        lrs = schedule_lrs(schedule, int(uniq[-1]))
        if lrs[: int(uniq[0]) + 1].sum() <= 0:
            first = int(np.argmax(lrs > 0))
            raise InvalidInputError(
                f"Step {int(uniq[0])} comes before any LR was applied (the schedule's LR is 0 "
                f"until step {first}); a loss law starts at step {first}. Ask for later steps."
            )
        prep = self._prepare(lrs, uniq)
        out = np.stack([self._evaluate(th, prep, False)[0] for th in np.atleast_2d(thetas)])
        return np.asarray(out[:, inverse], dtype=np.float64)

    def predict(self, schedule: Schedule | Mapping[str, Any], steps: npt.ArrayLike) -> FloatArray:
        """The predicted loss at ``steps`` under ``schedule`` (a Schedule or a spec dict).

        Example:
            >>> from runcast.forecast.laws import MultiPowerLaw
            >>> law = MultiPowerLaw.published("100M")
            >>> spec = {"kind": "constant", "peak": 3e-4, "warmup": 2160, "total": 24000}
            >>> [round(float(v), 3) for v in law.predict(spec, [4000, 23999])]
            [3.418, 3.033]
        """
        st = as_steps(steps)
        out = np.asarray(self._predict_theta(as_schedule(schedule), st, self.theta)[0])
        bad = ~np.isfinite(out) | (out <= 0)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            warnings.warn(
                f"The {self.name} law predicts a loss of {float(out[j])!r} at step "
                f"{int(st[j])}: this schedule is far outside what it was fitted on. Do not trust "
                "these values; fit on runs closer to this schedule.",
                RuncastWarning,
                stacklevel=2,
            )
        return out.astype(np.float64)

    def _sample_thetas(self, n: int, rng: np.random.Generator) -> FloatArray:
        z0 = np.array([p.to_z(self.params[p.name]) for p in self.PARAMS])
        if not np.any(self.cov):
            return np.asarray(np.tile(self.theta, (n, 1)), dtype=np.float64)
        # A Laplace covariance from a near-singular Jacobian can have eigenvalues a rounding
        # error below 0, which made numpy emit a RuntimeWarning at the user. Its "eigh" method
        # samples with sqrt(|eigenvalue|), harmless at that size: don't check.
        zs = rng.multivariate_normal(z0, self.cov, size=n, method="eigh", check_valid="ignore")
        lo, hi = np.array([p.z_bounds() for p in self.PARAMS]).T
        zs = np.clip(zs, lo, hi)
        out = [[p.from_z(z) for p, z in zip(self.PARAMS, row, strict=True)] for row in zs]
        return np.array(out, dtype=np.float64)

    def forecast(
        self,
        schedule: Schedule | Mapping[str, Any],
        steps: npt.ArrayLike,
        *,
        n_paths: int = 256,
        seed: int = 0,
    ) -> Forecast:
        """The loss at ``steps`` as a :class:`~runcast.forecast.Forecast` with calibrated bands.

        Paths combine three errors, all relative (log space): the fit's parameter uncertainty
        (Laplace approximation, sampled), the law's error on a schedule it was not fitted on
        (``model_error``, calibrated on held-out curves, growing with the log of how far the
        forward area reaches past the fitted data), and observation noise (the fit's residuals).

        Example:
            >>> from runcast.forecast.laws import MultiPowerLaw
            >>> law = MultiPowerLaw.published("25M")
            >>> spec = {"kind": "wsd", "peak": 3e-4, "end": 3e-5, "warmup": 2160,
            ...         "total": 24000, "decay_start": 20000}
            >>> f = law.forecast(spec, [12000, 23999])
            >>> lo, hi = f.final.interval(0.8)
            >>> bool(lo < f.final.median < hi), f.method
            (True, 'law:mpl')
        """
        if n_paths < 2:
            raise InvalidInputError(f"n_paths must be at least 2, but got {n_paths=}.")
        sched = as_schedule(schedule)
        st = as_steps(steps)
        order = np.argsort(st, kind="stable")
        st_sorted = st[order]
        if np.any(np.diff(st_sorted) == 0):
            raise InvalidInputError("Forecast steps must not repeat; pass unique steps.")
        rng = np.random.default_rng(seed)
        thetas = self._sample_thetas(n_paths, rng)
        # the point fit beside the draws, in one pass over the schedule's areas
        both = self._predict_theta(sched, st_sorted, np.vstack([self.theta, thetas]))
        point, paths = both[0], both[1:]
        if not np.all(np.isfinite(paths)) or np.any(paths <= 0):
            # a sampled parameter vector off the law's valid region: fall back to the point fit
            bad = ~np.all(np.isfinite(paths) & (paths > 0), axis=1)
            _refuse_nonpositive(self.name, point, st_sorted, self.info.get("last_step"))
            paths[bad] = point
        lrs = schedule_lrs(sched, int(st_sorted[-1]))
        s1 = np.cumsum(lrs)[st_sorted]
        s1_fit = float(self.info.get("s1_max", s1[-1]))
        reach = np.maximum(np.log(np.maximum(s1, 1e-300) / max(s1_fit, 1e-300)), 0.0)
        sigma_model = self.model_error * (1.0 + REACH_GROWTH * reach)
        if self.info.get("fit_lr") and len(self.info["fit_lr"]) == 1:
            # one fitted schedule: nothing measured the error of moving to another one
            sigma_model = sigma_model + TRANSFER_ERROR * lr_deviation(
                self.info["fit_lr"], lrs, st_sorted
            )
        eps_model = rng.standard_normal((n_paths, 1))
        eps_noise = rng.standard_normal((n_paths, st_sorted.size))
        samples = paths * np.exp(sigma_model[None, :] * eps_model + self.noise * eps_noise)
        info = {
            "law": self.name,
            "params": dict(self.params),
            "model_error": self.model_error,
            "noise": self.noise,
            "unpinned": _unpinned(self.name, point, st_sorted, samples),
        }
        return Forecast(st_sorted, samples, direction="down", method=f"law:{self.name}", info=info)

    # --- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` restores an identical law."""
        return {
            "format": "runcast.law",
            "version": 1,
            "law": self.name,
            "params": dict(self.params),
            "cov": self.cov.tolist(),
            "noise": self.noise,
            "model_error": self.model_error,
            "info": self.info,
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Law:
        """The law a :meth:`to_dict` dict describes (any law kind).

        Example:
            >>> from runcast.forecast.laws import Law, MultiPowerLaw
            >>> law = MultiPowerLaw.published("25M")
            >>> Law.from_dict(law.to_dict()).params == law.params
            True
        """
        if not isinstance(data, Mapping) or data.get("format") != "runcast.law":
            raise InvalidInputError(
                "Not a saved runcast law: expected a dict with format 'runcast.law' "
                "(written by Law.save / Law.to_dict)."
            )
        name = data.get("law")
        if name not in LAWS:
            raise InvalidInputError(f"Unknown law {name!r}; known laws: {', '.join(sorted(LAWS))}.")
        # the constructor checks each field's type and value, naming the bad one
        return LAWS[name](
            data.get("params"),  # type: ignore[arg-type]
            cov=data.get("cov"),
            noise=data.get("noise", 0.0),
            model_error=data.get("model_error", DEFAULT_MODEL_ERROR),
            info=data.get("info"),
        )

    def save(self, path: str | Path) -> Path:
        """Write the law as JSON to ``path``; returns the path."""
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return p

    @staticmethod
    def load(path: str | Path) -> Law:
        """Read a law written by :meth:`save`."""
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise InvalidInputError(f"No law file at {str(p)!r}.") from None
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"{str(p)!r} is not a JSON law file: {err}.") from err
        return Law.from_dict(data)

    def __repr__(self) -> str:
        ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"{type(self).__name__}({ps})"


def stack_eval(
    law: type[Law], theta: FloatArray, preps: Sequence[Any], grad: bool
) -> tuple[FloatArray, FloatArray | None]:
    """Evaluate ``law`` on several prepared curves, concatenated."""
    preds, jacs = [], []
    for prep in preps:
        p, j = law._evaluate(theta, prep, grad)
        preds.append(p)
        if j is not None:
            jacs.append(j)
    pred = np.concatenate(preds)
    if not grad:
        return pred, None
    return pred, np.concatenate(jacs, axis=0)


def check_fit(cost: float, n: int) -> None:
    """Raise a FitError for a non-finite fit, naming the remedy."""
    if not np.isfinite(cost):
        raise FitError(
            f"The law fit diverged (non-finite cost over {n} points). Check the curve for "
            "spikes, or try another law= or more restarts=."
        )
