"""``fit_scaling`` and the fitted ``ScalingLaw``: predictions with intervals, compute-optimal sizes.

A prediction's interval has two parts. The bootstrap (runs resampled) gives the spread of the
fitted parameters. Extrapolating to a larger model adds an error the bootstrap cannot see (the
form is not exact); it is measured on the data itself by a backtest: the law refitted without
its largest size predicts that size, and the log error of that one-size step, times
``inflation``, is the spread of the extrapolation error, growing with the distance (in log N)
beyond the largest fitted size. ``inflation`` was chosen leave-one-family-out on real scaling
data (see bench/README.md, "Scaling laws").

Example:
    >>> import numpy as np
    >>> from runcast.scaling import ScalingConfig, fit_scaling
    >>> n = np.repeat([1e8, 3e8, 1e9], 4); d = np.tile([2e9, 5e9, 1e10, 2e10], 3)
    >>> loss = 1.8 + 480 / n**0.35 + 2000 / d**0.37
    >>> law = fit_scaling(n, d, loss, config=ScalingConfig(n_boot=20))
    >>> round(law.params["alpha"], 2), round(law.params["beta"], 2)
    (0.35, 0.37)
    >>> round(float(law.predict(3e9, 6e10).median[0]), 3)
    2.237
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from runcast.errors import InvalidInputError, NotEnoughDataError
from runcast.scaling._fit import Objective, bootstrap, fit_theta
from runcast.scaling._forms import FORMS, FloatArray, Form, Inputs
from runcast.scaling._points import ScalingData

#: Epoch AI's refit of Chinchilla's approach 3 (Besiroglu et al. 2024, Table 1): exponents to fix
#: when a new family has too few sizes to fit its own (``ScalingConfig(fixed=...)``)
EPOCH_CHINCHILLA: Mapping[str, float] = MappingProxyType(
    {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
)
#: the interval inflation, chosen leave-one-family-out (bench/scaling.py)
DEFAULT_INFLATION = 0.7
#: without a backtest (fewer than 3 sizes), the extrapolation spread is this many residual sds
NO_BACKTEST_FACTOR = 3.0


@dataclass(frozen=True)
class ScalingConfig:
    """The knobs of a scaling fit.

    Attributes:
        huber_delta: the Huber threshold on log-loss residuals (1e-3, as Hoffmann et al.).
        n_boot: bootstrap replicates (0: no parameter uncertainty).
        inflation: the extrapolation spread in backtest errors (see the module docstring).
        seed: the bootstrap's random seed.
        fixed: parameters held at a given value instead of fitted, e.g. the exponents
            ``{"alpha": 0.35, "beta": 0.37}`` from other model families (the Hitchhiker's
            guide: with few sizes of a new family, fit only its scale terms E, A, B).
    """

    huber_delta: float = 1e-3
    n_boot: int = 200
    inflation: float = DEFAULT_INFLATION
    seed: int = 0
    fixed: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.huber_delta, (int, float)) and self.huber_delta > 0):
            raise InvalidInputError(f"huber_delta must be > 0, but got {self.huber_delta!r}.")
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or self.n_boot < 0:
            raise InvalidInputError(f"n_boot must be a whole number >= 0, not {self.n_boot!r}.")
        if not (isinstance(self.inflation, (int, float)) and self.inflation >= 0):
            raise InvalidInputError(f"inflation must be >= 0, but got {self.inflation!r}.")
        if not isinstance(self.fixed, Mapping):
            raise InvalidInputError(
                f"fixed must map parameter names to values, e.g. {{'alpha': 0.35}}, "
                f"not {self.fixed!r}."
            )


class LossPrediction(NamedTuple):
    """Predicted losses: the fit's ``point`` and ``samples`` (rows: draws, columns: points)."""

    n: FloatArray
    d: FloatArray
    point: FloatArray
    samples: FloatArray

    @property
    def median(self) -> FloatArray:
        """The median loss of each point."""
        return np.asarray(np.median(self.samples, axis=0))

    def quantile(self, q: float) -> FloatArray:
        """The ``q`` quantile of each point's loss."""
        return np.asarray(np.quantile(self.samples, q, axis=0))

    def interval(self, level: float = 0.8) -> tuple[FloatArray, FloatArray]:
        """The central ``level`` interval of each point's loss."""
        _check_level(level)
        a = (1.0 - level) / 2.0
        return self.quantile(a), self.quantile(1.0 - a)


class Allocation(NamedTuple):
    """The compute-optimal model size and tokens for each FLOP budget, with intervals."""

    flops: FloatArray
    n: FloatArray
    d: FloatArray
    loss: FloatArray
    n_interval: tuple[FloatArray, FloatArray]
    d_interval: tuple[FloatArray, FloatArray]
    loss_interval: tuple[FloatArray, FloatArray]


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"An interval level must be in (0, 1), but got {level=}.")


def _positive(name: str, values: Any) -> FloatArray:
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be positive numbers, but got {values!r}.") from None
    if arr.size == 0 or not (np.isfinite(arr) & (arr > 0)).all():
        raise InvalidInputError(f"{name} must be positive numbers, but got {values!r}.")
    return arr


@dataclass
class ScalingLaw:
    """A fitted scaling law: ``params``, ``predict(N, D)`` and ``optimal(flops)``.

    ``theta`` is the fit on all points, ``boot`` the bootstrap refits (one row each), ``ext_sd``
    the log-loss spread of a one-size extrapolation, ``n_max`` and ``n_step`` the largest fitted
    size and the log-ratio of the backtest's step, ``info`` facts about the fit. ``overfit``
    (data-constrained form) holds rows (epochs, log rise): how far the fitted runs' final losses
    rose above their lowest after that many epochs of repeated data (:func:`overfit_table`).
    """

    form: Form
    theta: FloatArray
    boot: FloatArray
    ext_sd: float
    n_max: float
    n_step: float
    info: dict[str, Any] = field(default_factory=dict)
    overfit: FloatArray = field(default_factory=lambda: np.empty((0, 2)))

    @property
    def params(self) -> dict[str, float]:
        """``E, A, B, alpha, beta`` (and ``R_star`` for the data-constrained form)."""
        return self.form.to_params(self.theta)

    def param_intervals(self, level: float = 0.8) -> dict[str, tuple[float, float]]:
        """Each parameter's bootstrap interval (the point value twice without a bootstrap)."""
        _check_level(level)
        if len(self.boot) == 0:
            return {k: (v, v) for k, v in self.params.items()}
        rows = np.array([list(self.form.to_params(t).values()) for t in self.boot])
        a = (1.0 - level) / 2.0
        lo, hi = np.quantile(rows, a, axis=0), np.quantile(rows, 1.0 - a, axis=0)
        return {k: (float(lo[i]), float(hi[i])) for i, k in enumerate(self.form.params)}

    def _inputs(self, n: FloatArray, d: FloatArray, unique: Any) -> Inputs:
        u = None
        if self.form.needs_unique:
            u = np.full(n.size, np.inf) if unique is None else _positive("unique", unique)
            u = np.broadcast_to(u, n.shape).astype(np.float64)
        return Inputs(np.log(n), np.log(d), u)

    def _log_loss(self, theta: FloatArray, x: Inputs) -> FloatArray:
        """The form's log loss plus the overfitting rise after as many epochs."""
        out = self.form.log_loss(theta, x)
        if len(self.overfit) and x.unique is not None:
            out = out + overfit_rise(self.overfit, np.exp(x.log_d) / x.unique)
        return out

    def extrapolation_sd(self, n: FloatArray) -> FloatArray:
        """The log-loss spread of the extrapolation error at sizes ``n`` (0 inside the data)."""
        beyond = np.maximum(np.log(n / self.n_max), 0.0) / max(self.n_step, 1e-12)
        return self.ext_sd * beyond

    def predict(
        self, n: Any, d: Any, unique: Any = None, draws: int = 1000, seed: int = 0
    ) -> LossPrediction:
        """The loss of models of ``n`` parameters trained on ``d`` tokens (arrays broadcast).

        ``unique``: unique tokens, for the data-constrained form (default: no repetition).

        Example: see the module docstring.
        """
        n_arr, d_arr = np.broadcast_arrays(_positive("N", n), _positive("D", d))
        n_arr, d_arr = n_arr.astype(np.float64), d_arr.astype(np.float64)
        x = self._inputs(n_arr, d_arr, unique)
        point = self._log_loss(self.theta, x)
        rng = np.random.default_rng(seed)
        if len(self.boot):
            logs = np.array([self._log_loss(t, x) for t in self.boot])
            logs = logs - np.median(logs, axis=0) + point
            logs = logs[rng.integers(0, len(logs), draws)]
        else:
            logs = np.broadcast_to(point, (draws, point.size)).copy()
        # one draw of the extrapolation error per path: a too-optimistic law is too optimistic at
        # every D of a larger model, not independently at each
        z = rng.standard_normal((draws, 1))
        logs = logs + z * self.extrapolation_sd(n_arr)[None, :]
        return LossPrediction(n_arr, d_arr, np.exp(point), np.exp(logs))

    def optimal(self, flops: Any, level: float = 0.8, unique: float | None = None) -> Allocation:
        """The compute-optimal N and D (``C = 6 N D``) for each FLOP budget, with intervals.

        Chinchilla's closed form: ``N* = G (C/6)^(beta/(alpha+beta))`` with
        ``G = (alpha A / (beta B))^(1/(alpha+beta))``; the data-constrained form (or a given
        ``unique``) is minimised numerically over log N.

        Example:
            >>> law = ScalingLaw(FORMS["chinchilla"], FORMS["chinchilla"].to_theta(
            ...     {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}),
            ...     np.empty((0, 5)), 0.0, 1e9, 1.0)
            >>> a = law.optimal(5.76e23)
            >>> round(float(a.n[0]) / 1e9, 1), round(float(a.d[0] / a.n[0]), 1)
            (72.2, 18.4)
        """
        _check_level(level)
        c = _positive("flops", flops)
        thetas = [self.theta, *self.boot]
        rows = np.array([self._optimal_one(t, c, unique) for t in thetas])  # (k, 3, n)
        a = (1.0 - level) / 2.0

        def iv(j: int) -> tuple[FloatArray, FloatArray]:
            if len(thetas) == 1:
                return rows[0, j], rows[0, j]
            return np.quantile(rows[1:, j], a, axis=0), np.quantile(rows[1:, j], 1 - a, axis=0)

        return Allocation(c, rows[0, 0], rows[0, 1], rows[0, 2], iv(0), iv(1), iv(2))

    def _optimal_one(self, theta: FloatArray, c: FloatArray, unique: float | None) -> FloatArray:
        p = self.form.to_params(theta)
        if not self.form.needs_unique and unique is None:
            al, be = p["alpha"], p["beta"]
            g = (al * p["A"] / (be * p["B"])) ** (1.0 / (al + be))
            n = g * (c / 6.0) ** (be / (al + be))
        else:
            n = optimal_numeric(self, theta, c, unique)
        d = c / (6.0 * n)
        x = self._inputs(n, d, unique)
        return np.stack([n, d, np.exp(self._log_loss(theta, x))])

    # -- saving --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to predict again, JSON-ready."""
        return {
            "form": self.form.name,
            "params": self.params,
            "theta": self.theta.tolist(),
            "boot": self.boot.tolist(),
            "ext_sd": self.ext_sd,
            "n_max": self.n_max,
            "n_step": self.n_step,
            "info": self.info,
            "overfit": self.overfit.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScalingLaw:
        """The inverse of :meth:`to_dict`."""
        try:
            form = FORMS[data["form"]]
            boot = np.asarray(data["boot"], dtype=np.float64).reshape(-1, form.size)
            return cls(
                form,
                np.asarray(data["theta"], dtype=np.float64),
                boot,
                float(data["ext_sd"]),
                float(data["n_max"]),
                float(data["n_step"]),
                dict(data.get("info", {})),
                np.asarray(data.get("overfit", []), dtype=np.float64).reshape(-1, 2),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInputError(
                f"Not a saved scaling law ({err!r} missing or wrong)."
            ) from None

    def save(self, path: str | Path) -> Path:
        """Write the law as JSON; :meth:`load` reads it back."""
        out = Path(path)
        out.write_text(json.dumps(self.to_dict()), encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | Path) -> ScalingLaw:
        """A law written by :meth:`save`."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InvalidInputError(f"{p}: not a saved scaling law ({err}).") from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"{p}: not a saved scaling law (not a JSON object).")
        return cls.from_dict(data)

    def __repr__(self) -> str:
        ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"ScalingLaw({self.form.name}: {ps})"


def optimal_numeric(
    law: ScalingLaw, theta: FloatArray, c: FloatArray, unique: float | None
) -> FloatArray:
    """The loss-minimising N for each budget, on a fine grid of log N refined by a parabola.

    The plain twin of Chinchilla's closed form (the tests check both agree).
    """
    grid = np.linspace(np.log(1e3), np.log(1e15), 2401)
    out = np.empty(c.size)
    for i, ci in enumerate(c):
        n = np.exp(grid)
        d = ci / (6.0 * n)
        ok = d > 1.0
        x = law._inputs(n[ok], d[ok], unique)
        vals = law._log_loss(theta, x)
        j = int(np.argmin(vals))
        g = grid[ok]
        if 0 < j < len(g) - 1:
            y0, y1, y2 = vals[j - 1 : j + 2]
            den = y0 - 2 * y1 + y2
            shift = 0.5 * (y0 - y2) / den if den > 0 else 0.0
            out[i] = np.exp(g[j] + shift * (g[1] - g[0]))
        else:
            out[i] = np.exp(g[j])
    return out


def overfit_table(turns: tuple[tuple[float, float], ...]) -> FloatArray:
    """Rows (epochs, mean log rise) from runs' (epochs, rise), runs within 5% of each other's
    epochs pooled; empty where no run rose (nothing to add to the law).

    Example:
        >>> overfit_table(((44.0, 0.12), (43.9, 0.10), (14.0, 0.0))).round(3).tolist()
        [[14.0, 0.0], [43.95, 0.11]]
    """
    if not turns or max(r for _, r in turns) <= 0.0:
        return np.empty((0, 2))
    rows = sorted(turns)
    pools: list[list[tuple[float, float]]] = [[rows[0]]]
    for e, r in rows[1:]:
        if e <= 1.05 * pools[-1][0][0]:
            pools[-1].append((e, r))
        else:
            pools.append([(e, r)])
    return np.array([[np.mean([e for e, _ in p]), np.mean([r for _, r in p])] for p in pools])


def overfit_rise(table: FloatArray, epochs: FloatArray) -> FloatArray:
    """The log rise after ``epochs`` of repeated data: 0 up to one epoch, linear in log epochs
    between the table's rows, the last row's beyond them (a rise not seen is not guessed).

    Example:
        >>> table = np.array([[14.0, 0.0], [44.0, 0.11]])
        >>> overfit_rise(table, np.array([1.0, 14.0, 25.0, 80.0])).round(3).tolist()
        [0.0, 0.0, 0.056, 0.11]
    """
    x = np.log(np.concatenate([[1.0], table[:, 0]]))
    y = np.concatenate([[0.0], table[:, 1]])
    e = np.log(np.maximum(np.where(np.isfinite(epochs), epochs, 1.0), 1.0))
    return np.asarray(np.interp(e, x, y), dtype=np.float64)


def _as_data(n: Any, d: Any, loss: Any, unique: Any) -> ScalingData:
    if isinstance(n, ScalingData):
        if d is not None or loss is not None:
            raise InvalidInputError("Pass either a ScalingData or arrays N, D, loss, not both.")
        return n
    if d is None or loss is None:
        raise InvalidInputError("fit_scaling needs N, D and loss (or one ScalingData).")
    return ScalingData.from_arrays(n, d, loss, unique)


def fit_scaling(
    n: Any,
    d: Any = None,
    loss: Any = None,
    form: str = "chinchilla",
    *,
    unique: Any = None,
    config: ScalingConfig | None = None,
) -> ScalingLaw:
    """Fit a scaling law ``L(N, D)`` to losses of models of N parameters trained on D tokens.

    Args:
        n: parameter counts, or a :class:`ScalingData` (from a table, curves or the store).
        d: training tokens of each point.
        loss: the loss of each point.
        form: ``"chinchilla"``, ``"data_constrained"`` (needs ``unique`` tokens) or ``"auto"``
            (data-constrained where some point saw a token twice, else Chinchilla).
        unique: unique tokens of each point, for the data-constrained form.
        config: the fit's knobs (:class:`ScalingConfig`).

    Example: see the module docstring.
    """
    cfg = config or ScalingConfig()
    if form not in (*FORMS, "auto"):
        raise InvalidInputError(f"Unknown form {form!r}; use one of auto, {', '.join(FORMS)}.")
    data = _as_data(n, d, loss, unique)
    if form == "auto":
        form = "data_constrained" if data.repeats else "chinchilla"
    f = FORMS[form]
    fixed = f.fixed_theta(cfg.fixed)
    free = f.size - len(fixed)
    if len(data) < free + 1:
        raise NotEnoughDataError(
            f"The {form} form has {free} free parameters and needs at least {free + 1} points, "
            f"but got {len(data)}."
        )
    if data.sizes.size < 2:
        raise NotEnoughDataError(
            "A scaling law needs losses of at least 2 model sizes (N) to tell the size term "
            f"from the data term, but every point has N = {data.sizes[0]:.4g}."
        )
    t0 = time.perf_counter()
    theta = _fit(f, data, cfg.huber_delta, fixed)
    boot = np.empty((0, f.size))
    if cfg.n_boot:
        obj = _objective(f, data, cfg.huber_delta, fixed)
        boot = bootstrap(obj, theta, data.group, cfg.n_boot, cfg.seed).thetas
    resid = np.log(data.loss) - f.log_loss(theta, _inputs(f, data))
    backtest, step = _backtest(f, data, cfg.huber_delta, fixed)
    rms = float(np.sqrt(np.mean(resid**2)))
    ext = NO_BACKTEST_FACTOR * rms if backtest is None else backtest
    sizes = data.sizes
    return ScalingLaw(
        f,
        theta,
        boot,
        cfg.inflation * ext,
        float(sizes[-1]),
        step,
        {
            "n_points": len(data),
            "n_runs": int(np.unique(data.group).size),
            "n_sizes": int(sizes.size),
            "rms_log_residual": float(np.sqrt(np.mean(resid**2))),
            "backtest_log_error": backtest,
            "huber_delta": cfg.huber_delta,
            "n_boot": cfg.n_boot,
            "inflation": cfg.inflation,
            "fixed": {k: float(v) for k, v in cfg.fixed.items()},
            "fit_seconds": time.perf_counter() - t0,
        },
        overfit_table(data.turns) if f.needs_unique else np.empty((0, 2)),
    )


def _inputs(f: Form, data: ScalingData) -> Inputs:
    return Inputs(np.log(data.n), np.log(data.d), data.unique if f.needs_unique else None)


def _objective(
    f: Form, data: ScalingData, delta: float, fixed: dict[int, float] | None = None
) -> Objective:
    return Objective(f, _inputs(f, data), np.log(data.loss), delta, fixed)


def _fit(
    f: Form, data: ScalingData, delta: float, fixed: dict[int, float] | None = None
) -> FloatArray:
    return fit_theta(_objective(f, data, delta, fixed), np.ones(len(data)))


def _backtest(
    f: Form, data: ScalingData, delta: float, fixed: dict[int, float] | None = None
) -> tuple[float | None, float]:
    """The RMS log error of predicting the largest size's last checkpoints from the others,
    and the log-ratio of that step (the largest size over the next one)."""
    sizes = data.sizes
    step = float(np.log(sizes[-1] / sizes[-2]))
    if sizes.size < 3:
        return None, step
    small = data.subset(data.n < sizes[-1])
    if len(small) < f.size - len(fixed or {}) + 1:
        return None, step
    theta = _fit(f, small, delta, fixed)
    big = data.subset(data.n == sizes[-1])
    last = np.array(
        [
            np.flatnonzero(big.group == g)[np.argmax(big.d[big.group == g])]
            for g in np.unique(big.group)
        ]
    )
    final = big.subset(np.isin(np.arange(len(big)), last))
    err = np.log(final.loss) - f.log_loss(theta, _inputs(f, final))
    return float(np.sqrt(np.mean(err**2))), step
