"""The parametric learning-curve families of Domhan et al. (2015), vectorised over parameters.

Every family is written as ``y(x) = c + a * g(x; theta)`` with ``a >= 0`` and ``g`` falling in
``x`` (a loss, in runcast's falling orientation; accuracies are flipped before fitting). ``c``
and ``a`` enter linearly, so the fitter solves them in closed form for every ``theta`` on a grid
(variable projection) and only the one or two shape parameters ``theta`` are searched: the
whole ensemble is a few vectorised numpy passes, with no iterative optimiser to fail.

``x`` is the step divided by the last observed step, so the observed part is ``x <= 1`` and the
grids below cover the shapes seen on that scale. Domhan's 11 families collapse to 8 shapes here:
Janoschek and Weibull are ``exp4`` (``c + a exp(-b x^d)``), Hill3 and log-power are ``mmf``
(``c + a / (1 + (k x)^d)``) once an offset ``c`` is allowed.

Example:
    >>> import numpy as np
    >>> fam = FAMILIES["pow3"]
    >>> g = fam.basis(np.array([1.0, 4.0]), np.array([[0.5]]))
    >>> g.round(3).tolist()
    [[1.0, 0.5]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Basis = Callable[[FloatArray, FloatArray], FloatArray]


@dataclass(frozen=True)
class Family:
    """One curve family: ``c + a * basis(x, theta)``, with a grid of shape parameters."""

    name: str
    formula: str
    basis: Basis  # (x[m], theta[K, d]) -> g[K, m]
    grid: FloatArray  # (K, d) shape parameters, the family's prior support (uniform on it)
    aliases: tuple[str, ...] = ()


def _mesh(*axes: FloatArray) -> FloatArray:
    grids = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def _pow3(x: FloatArray, th: FloatArray) -> FloatArray:
    return np.asarray(x[None, :] ** -th[:, 0:1], dtype=np.float64)


def _pow4(x: FloatArray, th: FloatArray) -> FloatArray:
    return np.asarray((x[None, :] + th[:, 1:2]) ** -th[:, 0:1], dtype=np.float64)


def _exp3(x: FloatArray, th: FloatArray) -> FloatArray:
    return np.exp(-th[:, 0:1] * x[None, :])


def _exp4(x: FloatArray, th: FloatArray) -> FloatArray:
    return np.exp(-th[:, 0:1] * x[None, :] ** th[:, 1:2])


def _mmf(x: FloatArray, th: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + (th[:, 0:1] * x[None, :]) ** th[:, 1:2]), dtype=np.float64)


def _ilog2(x: FloatArray, th: FloatArray) -> FloatArray:
    return np.asarray(1.0 / np.log(np.e + th[:, 0:1] * x[None, :]), dtype=np.float64)


def _vap(x: FloatArray, th: FloatArray) -> FloatArray:
    # exp(a + b/x + c log x) with the level a folded into the linear scale
    return np.exp(th[:, 0:1] / x[None, :] - th[:, 1:2] * np.log(x[None, :]))


def _loglin(x: FloatArray, th: FloatArray) -> FloatArray:
    # log-log-linear: falls without bound, but only as log(log(x))
    return np.asarray(-np.log(np.log1p(th[:, 0:1] * x[None, :])), dtype=np.float64)


def _log(lo: float, hi: float, n: int) -> FloatArray:
    return np.logspace(np.log10(lo), np.log10(hi), n)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("pow3", "c + a x^-alpha", _pow3, _log(0.01, 4.0, 64)[:, None]),
        Family(
            "pow4", "c + a (x + b)^-alpha", _pow4, _mesh(_log(0.03, 8.0, 24), _log(1e-3, 3.0, 24))
        ),
        Family("exp3", "c + a exp(-b x)", _exp3, _log(0.05, 40.0, 64)[:, None]),
        Family(
            "exp4",
            "c + a exp(-b x^d)",
            _exp4,
            _mesh(_log(0.05, 40.0, 24), _log(0.1, 3.0, 24)),
            aliases=("janoschek", "weibull"),
        ),
        Family(
            "mmf",
            "c + a / (1 + (k x)^d)",
            _mmf,
            _mesh(_log(0.1, 100.0, 24), _log(0.2, 4.0, 24)),
            aliases=("log_power", "hill3"),
        ),
        Family("ilog2", "c + a / log(e + b x)", _ilog2, _log(0.1, 1e4, 64)[:, None]),
        Family(
            "vap",
            "c + a exp(b / x - d log x)",
            _vap,
            _mesh(np.linspace(0.0, 1.0, 16), np.linspace(0.0, 3.0, 24)),
            aliases=("vapor_pressure",),
        ),
        Family(
            "loglin",
            "c - a log(log(1 + b x))",
            _loglin,
            _log(0.1, 1e4, 64)[:, None],
            aliases=("log_log_linear",),
        ),
    )
}


def evaluate(
    name: str, x: FloatArray, theta: FloatArray, c: FloatArray, a: FloatArray
) -> FloatArray:
    """The curves ``c + a * g(x; theta)`` of family ``name``, one row per parameter set.

    A plain reference for the fitter's vectorised path (the tests check they agree).

    Example:
        >>> evaluate("exp3", np.array([0.0, 1.0]), np.array([[1.0]]), np.array([1.0]),
        ...          np.array([2.0])).round(3).tolist()
        [[3.0, 1.736]]
    """
    g = FAMILIES[name].basis(np.asarray(x, dtype=np.float64), np.atleast_2d(theta))
    return np.asarray(c[:, None] + a[:, None] * g, dtype=np.float64)
