"""The scaling-law forms, in log space: log L(N, D) and its gradient for a parameter vector.

Chinchilla (Hoffmann et al. 2022, approach 3) writes ``L = E + A/N^alpha + B/D^beta``. Its fit is
done on ``log L`` with the log-sum-exp parameterisation ``log L = LSE(a - alpha log N,
b - beta log D, e)`` (``A = exp(a)``, ``B = exp(b)``, ``E = exp(e)``), which keeps A, B, E
positive and the three terms on one scale. The data-constrained form (Muennighoff et al. 2023)
replaces D by the effective data ``D' = U + U R* (1 - exp(-R / R*))``, where U is the number of
unique tokens and ``R = D / U - 1`` the repetitions: repeated epochs are worth less and less, with
a half-life set by ``R* = exp(r)``, fitted too.

Example:
    >>> import numpy as np
    >>> f = FORMS["chinchilla"]
    >>> epoch = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
    >>> theta = f.to_theta(epoch)
    >>> x = Inputs(np.log([70e9]), np.log([1.4e12]), None)
    >>> round(float(np.exp(f.log_loss(theta, x)[0])), 4)
    1.9739
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from runcast.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]


#: parameters stored as their logarithm in ``theta``
_LOGGED = ("E", "A", "B", "R_star")


class Inputs(NamedTuple):
    """What a form reads per point: log parameter count, log tokens, unique tokens (or None)."""

    log_n: FloatArray
    log_d: FloatArray
    unique: FloatArray | None


def _lse3(
    t1: FloatArray, t2: FloatArray, t3: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """log(exp t1 + exp t2 + exp t3) and the three softmax weights (the gradient of the LSE)."""
    m = np.maximum(np.maximum(t1, t2), t3)
    e1, e2, e3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(t3 - m)
    s = e1 + e2 + e3
    return m + np.log(s), e1 / s, e2 / s, e3 / s


def effective_log_data(
    log_d: FloatArray, unique: FloatArray, log_rstar: float | FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``log D'`` of the data-constrained form and its derivative in ``r = log R*``.

    Tokens up to one epoch count fully (``D' = D`` while ``D <= U``); each repetition beyond
    counts ``exp(-R/R*)`` as much as the first pass.

    Example:
        >>> d, _ = effective_log_data(np.log([1e9, 4e9]), np.array([1e9, 1e9]), np.log(15.0))
        >>> np.exp(d).round(-6).tolist()
        [1000000000.0, 3719000000.0]
    """
    d = np.exp(log_d)
    rstar = np.exp(log_rstar)
    # no repetition (unique = inf, or D <= U): computed with U = D, where D' = D exactly
    unique = np.where(np.isfinite(unique) & (unique < d), unique, d)
    reps = np.maximum(d / unique - 1.0, 0.0)
    decay = np.exp(-reps / rstar)
    dprime = unique * (1.0 + rstar * (1.0 - decay))
    # d/dr of U R* (1 - exp(-R/R*)) with R* = exp(r): U R* [(1 - e) - (R/R*) e]
    ddr = unique * rstar * ((1.0 - decay) - (reps / rstar) * decay)
    full = reps <= 0.0
    out = np.where(full, log_d, np.log(dprime))
    return out, np.where(full, 0.0, ddr / dprime)


@dataclass(frozen=True)
class Form:
    """One scaling-law form: its public parameters and log L with gradient over ``theta``.

    ``theta`` is ``(e, a, b, alpha, beta)`` for Chinchilla and ``(e, a, b, alpha, beta, r)``
    for the data-constrained form, with ``E, A, B, R* = exp(e), exp(a), exp(b), exp(r)``.
    """

    name: str
    params: tuple[str, ...]
    summary: str

    @property
    def size(self) -> int:
        """The number of fitted parameters."""
        return len(self.params)

    @property
    def needs_unique(self) -> bool:
        """Whether the form reads the number of unique tokens of each point."""
        return self.name == "data_constrained"

    def to_params(self, theta: FloatArray) -> dict[str, float]:
        """The public parameters (``E, A, B, alpha, beta`` [, ``R_star``]) of ``theta``."""
        e, a, b, alpha, beta = (float(v) for v in theta[:5])
        out = {"E": np.exp(e), "A": np.exp(a), "B": np.exp(b), "alpha": alpha, "beta": beta}
        if self.needs_unique:
            out["R_star"] = float(np.exp(theta[5]))
        return {k: float(v) for k, v in out.items()}

    def to_theta(self, params: dict[str, float]) -> FloatArray:
        """The inverse of :meth:`to_params`."""
        vals = [np.log(params["E"]), np.log(params["A"]), np.log(params["B"])]
        vals += [params["alpha"], params["beta"]]
        if self.needs_unique:
            vals.append(np.log(params["R_star"]))
        return np.asarray(vals, dtype=np.float64)

    def fixed_theta(self, fixed: Mapping[str, float]) -> dict[int, float]:
        """The entries of ``theta`` that ``fixed`` (public parameters, e.g. ``alpha``) pins.

        Example:
            >>> FORMS["chinchilla"].fixed_theta({"alpha": 0.34, "E": 1.0})
            {3: 0.34, 0: 0.0}
        """
        out: dict[int, float] = {}
        for name, value in fixed.items():
            if name not in self.params:
                raise InvalidInputError(
                    f"The {self.name} form has no parameter {name!r} to fix; "
                    f"its parameters are {', '.join(self.params)}."
                )
            v = float(value)
            logged = name in _LOGGED
            if not np.isfinite(v) or (logged and v <= 0) or (not logged and not 0 <= v <= 4):
                raise InvalidInputError(
                    f"A fixed {name} must be "
                    + ("a positive number" if logged else "an exponent in [0, 4]")
                    + f", but got {value!r}."
                )
            out[self.params.index(name)] = float(np.log(v)) if logged else v
        return out

    def log_data(self, theta: FloatArray, x: Inputs) -> FloatArray:
        """``log D`` (Chinchilla) or ``log D'`` (data-constrained) of every point."""
        if self.needs_unique and x.unique is not None:
            return effective_log_data(x.log_d, x.unique, float(theta[5]))[0]
        return x.log_d

    def log_loss(self, theta: FloatArray, x: Inputs) -> FloatArray:
        """Predicted ``log L`` of every point."""
        return self.log_loss_grad(theta, x, grad=False)[0]

    def log_loss_grad(
        self, theta: FloatArray, x: Inputs, grad: bool = True
    ) -> tuple[FloatArray, FloatArray | None]:
        """Predicted ``log L`` and (if ``grad``) its Jacobian, shape ``(n_points, size)``."""
        e, a, b, alpha, beta = theta[:5]
        log_d, dlogd_dr = x.log_d, None
        if self.needs_unique and x.unique is not None:
            log_d, dlogd_dr = effective_log_data(x.log_d, x.unique, float(theta[5]))
        lse, w_n, w_d, w_e = _lse3(a - alpha * x.log_n, b - beta * log_d, np.full_like(log_d, e))
        if not grad:
            return lse, None
        jac = np.empty((lse.size, self.size))
        jac[:, 0] = w_e
        jac[:, 1] = w_n
        jac[:, 2] = w_d
        jac[:, 3] = -w_n * x.log_n
        jac[:, 4] = -w_d * log_d
        if self.needs_unique:
            jac[:, 5] = 0.0 if dlogd_dr is None else -w_d * beta * dlogd_dr
        return lse, jac

    def bounds(self) -> list[tuple[float | None, float | None]]:
        """Bounds for L-BFGS-B: exponents in [0, 4] (a loss that grows with N or D is no
        scaling law), ``R*`` in [0.1, 1000] epochs; E, A, B free (their logs are unbounded)."""
        out: list[tuple[float | None, float | None]] = [(None, None)] * 3 + [(0.0, 4.0)] * 2
        if self.needs_unique:
            out.append((float(np.log(0.1)), float(np.log(1000.0))))
        return out

    def grid(self) -> FloatArray:
        """Starting points: Hoffmann et al.'s grid (alpha, beta in 0..2, e in -1..1, a, b in
        0..25), and three repetition half-lives for the data-constrained form."""
        axes = [
            np.linspace(-1.0, 1.0, 5),
            np.linspace(0.0, 25.0, 6),
            np.linspace(0.0, 25.0, 6),
            np.linspace(0.0, 2.0, 5),
            np.linspace(0.0, 2.0, 5),
        ]
        if self.needs_unique:
            axes.append(np.log([5.0, 15.0, 50.0]))
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)


FORMS: dict[str, Form] = {
    "chinchilla": Form(
        "chinchilla",
        ("E", "A", "B", "alpha", "beta"),
        "L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022)",
    ),
    "data_constrained": Form(
        "data_constrained",
        ("E", "A", "B", "alpha", "beta", "R_star"),
        "L = E + A/N^alpha + B/D'^beta, D' discounting repeated epochs (Muennighoff et al. 2023)",
    ),
}
