"""Fitting a form: Huber loss on log loss, a grid of starts, L-BFGS, and the bootstrap.

As in Hoffmann et al. (2022) and Besiroglu et al. (2024): the objective is the *sum* (not the
mean) of Huber losses of ``log L_pred - log L`` with ``delta = 1e-3``; every start of the grid is
scored at once (one matrix product per chunk) and L-BFGS polishes the best few. Besiroglu et al.
traced Chinchilla's implausible estimates to an optimizer that stopped early on an averaged,
tiny objective: here the objective is scaled by ``1/delta`` and the tolerances are tight, so
L-BFGS stops at the minimum, not before. Bootstrap replicates resample whole curves when the
points come in groups (checkpoints of one run are not independent), else single points.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from runcast.errors import FitError
from runcast.scaling._forms import FloatArray, Form, Inputs, effective_log_data

_CHUNK = 400
_TOP_STARTS = 8


def huber(r: FloatArray, delta: float) -> FloatArray:
    """The Huber loss of residuals ``r``: quadratic within ``delta``, linear beyond.

    Example:
        >>> huber(np.array([0.0, 1e-3, 1.0]), 1e-3).round(9).tolist()
        [0.0, 5e-07, 0.0009995]
    """
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


class Objective:
    """The weighted sum of Huber losses of one data set, with its gradient, over ``theta``.

    ``fixed`` pins entries of ``theta`` (index: value): L-BFGS-B keeps them at their value
    (equal bounds) and the grid's starts take it, so only the other parameters are fitted.
    """

    def __init__(
        self,
        form: Form,
        x: Inputs,
        log_y: FloatArray,
        delta: float,
        fixed: dict[int, float] | None = None,
    ) -> None:
        self.form, self.x, self.log_y, self.delta = form, x, log_y, delta
        self.fixed = dict(fixed or {})

    def bounds(self) -> list[tuple[float | None, float | None]]:
        """The form's bounds, with each fixed entry pinned to its value."""
        out = self.form.bounds()
        for i, v in self.fixed.items():
            out[i] = (v, v)
        return out

    def grid(self) -> FloatArray:
        """The form's starting grid with the fixed entries set (repeated starts dropped)."""
        grid = self.form.grid()
        if not self.fixed:
            return grid
        for i, v in self.fixed.items():
            grid[:, i] = v
        return np.asarray(np.unique(grid, axis=0), dtype=np.float64)

    def value_grad(self, theta: FloatArray, weight: FloatArray) -> tuple[float, FloatArray]:
        """Objective (scaled by ``1/delta``) and its gradient at ``theta``."""
        pred, jac = self.form.log_loss_grad(theta, self.x)
        assert jac is not None
        r = pred - self.log_y
        f = float(weight @ huber(r, self.delta)) / self.delta
        g = (weight * np.clip(r, -self.delta, self.delta)) @ jac / self.delta
        if not np.isfinite(f) or not np.isfinite(g).all():
            return 1e300, np.zeros_like(theta)
        return f, g

    def many(self, thetas: FloatArray, weight: FloatArray) -> FloatArray:
        """The objective at every row of ``thetas`` (the grid), in chunks to bound memory."""
        out = np.empty(len(thetas))
        x = self.x
        for i in range(0, len(thetas), _CHUNK):
            t = thetas[i : i + _CHUNK]
            log_d = np.broadcast_to(x.log_d, (len(t), x.log_d.size))
            if self.form.needs_unique and x.unique is not None:
                log_d = effective_log_data(x.log_d[None, :], x.unique[None, :], t[:, 5:6])[0]
            t1 = t[:, 1:2] - t[:, 3:4] * x.log_n[None, :]
            t2 = t[:, 2:3] - t[:, 4:5] * log_d
            t3 = np.broadcast_to(t[:, 0:1], t1.shape)
            m = np.maximum(np.maximum(t1, t2), t3)
            pred = m + np.log(np.exp(t1 - m) + np.exp(t2 - m) + np.exp(t3 - m))
            out[i : i + _CHUNK] = huber(pred - self.log_y[None, :], self.delta) @ weight
        return np.asarray(np.where(np.isfinite(out), out / self.delta, np.inf), dtype=np.float64)


def polish(obj: Objective, start: FloatArray, weight: FloatArray) -> tuple[FloatArray, float]:
    """L-BFGS from ``start``; returns the parameters and the objective there."""
    from scipy.optimize import minimize

    res = minimize(
        obj.value_grad,
        start,
        args=(weight,),
        jac=True,
        method="L-BFGS-B",
        bounds=obj.bounds(),
        options={"maxiter": 3000, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20},
    )
    return np.asarray(res.x, dtype=np.float64), float(res.fun)


def fit_theta(obj: Objective, weight: FloatArray, starts: FloatArray | None = None) -> FloatArray:
    """The best fit over the form's grid: score every start, polish the best few."""
    grid = obj.grid() if starts is None else starts
    scores = obj.many(grid, weight)
    order = np.argsort(scores)[: min(_TOP_STARTS, len(grid))]
    best: FloatArray = np.asarray(grid[order[0]], dtype=np.float64)
    best_f = np.inf
    for i in order:
        if not np.isfinite(scores[i]):
            continue
        theta, f = polish(obj, grid[i], weight)
        if f < best_f and np.isfinite(theta).all():
            best, best_f = theta, f
    if not np.isfinite(best_f):
        raise FitError(
            "The scaling law could not be fitted: no start of the grid gave a finite loss. "
            "Check that the losses, parameter counts and token counts are positive numbers."
        )
    return best


class BootstrapResult(NamedTuple):
    """The parameter vectors of the bootstrap replicates, one row each."""

    thetas: FloatArray


def bootstrap(
    obj: Objective,
    theta: FloatArray,
    groups: npt.NDArray[np.int64],
    n_boot: int,
    seed: int,
) -> BootstrapResult:
    """Refit on ``n_boot`` resamples (of whole groups), each polished from the full fit."""
    rng = np.random.default_rng(seed)
    labels, index = np.unique(groups, return_inverse=True)
    out = np.empty((n_boot, theta.size))
    for k in range(n_boot):
        counts = np.bincount(rng.integers(0, labels.size, labels.size), minlength=labels.size)
        weight = counts[index].astype(np.float64)
        out[k] = polish(obj, theta, weight)[0]
    return BootstrapResult(out)
