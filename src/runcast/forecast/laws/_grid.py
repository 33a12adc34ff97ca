"""The grid law behind ``forecast(method="law")``: Tissue et al.'s law, fitted in closed form.

:class:`GridLaw` is the momentum law ``L = L0 + A * S1^-alpha - C * S2`` of
:class:`~runcast.forecast.laws.MomentumLaw` with one change of convention: its annealing area
counts LR drops only, so a warmup's rise is not credited as negative annealing. For a fixed
``(alpha, lam)`` the other three parameters enter linearly, so on a grid of those two, each
cell's Gaussian posterior of ``(L0, A, C)`` is closed form (a few batched 3x3 solves, ~5 ms, no
optimiser to diverge) and the cells are weighed by their evidence (:func:`grid_posterior`).
``forecast(method="law")`` samples paths from that posterior; ``fit_law(curve, "grid")`` returns
its best cell as a ``GridLaw``, which predicts any other schedule like every law. The areas are
the laws' one area code (:mod:`runcast.forecast.laws._areas`).

Example:
    >>> import numpy as np, runcast
    >>> from runcast.forecast.laws import fit_law
    >>> spec = {"kind": "wsd", "peak": 1e-3, "end": 1e-5, "warmup": 100, "total": 6000,
    ...         "decay_start": 4800}
    >>> truth = GridLaw({"L0": 2.0, "A": 0.3, "alpha": 0.4, "C": 0.6, "lam": 0.99})
    >>> steps = np.arange(200, 6000, 50)
    >>> curve = runcast.Curve(steps, truth.predict(spec, steps),
    ...                       schedule=runcast.Schedule.from_spec(spec))
    >>> law = fit_law(curve, "grid")
    >>> err = np.abs(law.predict(spec, steps) / curve.value - 1).max()
    >>> type(law).__name__, bool(err < 2e-3)
    ('GridLaw', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from runcast.errors import FitError
from runcast.forecast.laws._areas import (
    FloatArray,
    momentum_series,
)
from runcast.forecast.laws._base import Param
from runcast.forecast.laws._data import FitCurve
from runcast.forecast.laws._momentum import MomentumLaw
from runcast.schedules import Schedule

#: the exponent grid of the forward-area power law and the momentum decays of the annealing area
ALPHAS: FloatArray = np.geomspace(0.03, 3.0, 48)
LAMBDAS = (0.99, 0.995, 0.999)
#: the grid fit's priors of ``(L0, A)`` in units of the curve's scale, and of the gain of a full
#: anneal (LR to 0) as a fraction of the loss: cooldowns of LLM pre-training runs bring a few
#: percent (Hagele et al. 2024; Tissue et al. 2024)
PRIOR_SD = (2.0, 10.0)
ANNEAL_GAIN = 0.04


class GridLaw(MomentumLaw):
    """Tissue et al.'s law with LR drops only in its annealing area; parameters L0, A, alpha, C,
    lam (``L0`` and ``C`` linear: a loss heading to 0 may have an asymptote at or below it).

    Example:
        >>> law = GridLaw({"L0": 1.0, "A": 0.5, "alpha": 0.5, "C": 0.2, "lam": 0.99})
        >>> warm = {"kind": "constant", "peak": 1e-3, "warmup": 100, "total": 1000}
        >>> bool(law.predict(warm, [99])[0] > law.predict(warm, [999])[0])  # no credit for warmup
        True
    """

    name: ClassVar[str] = "grid"
    ANNEAL_ONLY: ClassVar[bool] = True
    summary: ClassVar[str] = "momentum law, drops only, closed-form grid fit (method='law')"
    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("L0", -1e3, 1e3, "lin"),
        Param("A", 1e-12, 1e6),
        Param("alpha", 0.02, 3.0, prior=(float(np.log(0.5)), 0.5)),
        Param("C", 0.0, 1e9, "lin"),
        Param("lam", 0.5, 1.0 - 1e-6, "log1m", prior=(float(np.log(1e-3)), 1.5)),
    )

    @classmethod
    def _data_priors(cls, losses: FloatArray, peak: float) -> dict[str, tuple[float, float]]:
        # (a joint least-squares fit, fit_laws): C is linear here, so its prior is too; a full
        # anneal gains C * peak / (1 - lam), ANNEAL_GAIN of the loss at the typical lam 0.995
        c = ANNEAL_GAIN * float(np.median(losses)) * 5e-3 / peak
        return {"C": (c, c)}


def _bayes_k(
    X: FloatArray,
    y: FloatArray,
    w: FloatArray,
    prior_mean: FloatArray,
    prior_sd: FloatArray,
    sigma2: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Gaussian posterior of ``y ~ X b`` for a batch of designs ``X[K, n, k]``.

    Returns the posterior means ``[K, k]``, covariances ``[K, k, k]`` and log evidences ``[K]``.
    """
    Xw = X * w[None, :, None]
    prec0 = np.diag(1.0 / prior_sd**2)
    # batched matmuls, not einsum: numpy's einsum runs these (K, n, 3) contractions unblocked
    # (measured on 144 designs x 200 points: 5.1 ms vs 2.4 ms; a law forecast with its backtest
    # makes four calls); tests/forecast/test_known.py checks it against the plain per-design form
    XwT = Xw.transpose(0, 2, 1)
    P = XwT @ X / sigma2 + prec0[None]
    b = XwT @ y / sigma2 + (prec0 @ prior_mean)[None]
    cov = np.linalg.inv(P)
    mean = (cov @ b[:, :, None])[:, :, 0]
    r = y[None, :] - (X @ mean[:, :, None])[:, :, 0]
    d = mean - prior_mean[None]
    quad = (r * r * w[None]).sum(axis=1) / sigma2 + ((d @ prec0) * d).sum(axis=1)
    _, logdet = np.linalg.slogdet(P)
    log_ev = -0.5 * quad - 0.5 * logdet - float(np.sum(np.log(prior_sd)))
    return mean, cov, log_ev


@lru_cache(maxsize=16)
def grid_areas(
    schedule: Schedule, until: int, lams: tuple[float, ...] = LAMBDAS
) -> tuple[FloatArray, FloatArray, float]:
    """``S1`` and one ``S2`` row per decay in ``lams`` over steps ``0..until``, and the peak LR.

    LRs are in units of the peak, and each ``S2`` is scaled by ``1 - lam`` so that a full anneal
    tends to 1. Cached: a run is forecast again and again with the same schedule (every few
    steps by a pruner), and on a 143k-step schedule these O(T) passes are most of a forecast.
    """
    lrs = np.asarray(schedule.array(until + 1), dtype=np.float64)
    peak = float(lrs.max()) if lrs.size and lrs.max() > 0 else 1.0
    s1, s2 = lr_areas(lrs / peak, lams)
    s1.setflags(write=False)
    s2.setflags(write=False)
    return s1, s2, peak


def lr_areas(eta: FloatArray, lams: Sequence[float] = LAMBDAS) -> tuple[FloatArray, FloatArray]:
    """``S1`` and one ``S2`` row per decay in ``lams`` of LRs ``eta`` in units of the peak, each
    ``S2`` scaled by ``1 - lam`` so that a full anneal tends to 1 (drops only count).

    Example:
        >>> s1, s2 = lr_areas(np.array([1.0, 1.0, 0.0, 0.0]), (0.5,))
        >>> s1.tolist(), s2.tolist()
        ([1.0, 2.0, 2.0, 2.0], [[0.0, 0.0, 0.5, 0.75]])
    """
    s1 = np.cumsum(eta)
    s2 = np.stack([(1.0 - lam) * np.cumsum(momentum_series(eta, lam, anneal_only=True))
                   for lam in lams])  # fmt: skip
    return s1, s2


@dataclass(frozen=True)
class GridPosterior:
    """The grid law's posterior over its cells, in the units of the values it was fitted on.

    ``mean[k]`` and ``cov[k]`` are cell ``k``'s Gaussian posterior of ``(L0, A, C)``, ``prob[k]``
    its weight; cell ``k`` has ``alpha = ALPHAS[k % len(ALPHAS)]`` and
    ``lam = lams[k // len(ALPHAS)]``. ``A`` multiplies ``(S1 / s1_ref)^-alpha``; the areas are
    in units of the ``peak`` LR, as :func:`grid_areas` gives them.
    """

    mean: FloatArray
    cov: FloatArray
    prob: FloatArray
    s1_ref: float
    peak: float
    lams: tuple[float, ...] = LAMBDAS

    @property
    def best(self) -> int:
        """The cell of highest posterior weight."""
        return int(np.argmax(self.prob))

    def cell(self, k: int) -> tuple[float, float]:
        """``(alpha, lam)`` of cell ``k``."""
        return float(ALPHAS[k % ALPHAS.size]), self.lams[k // ALPHAS.size]

    def sample(
        self, s1: FloatArray, s2: FloatArray, n: int, rng: np.random.Generator
    ) -> FloatArray:
        """``n`` paths at the steps whose areas are ``s1`` and ``s2`` (one row per lam): a cell
        drawn by weight, its ``(L0, A, C)`` from its Gaussian (``A`` and ``C`` kept >= 0)."""
        picks = rng.choice(self.prob.size, size=n, p=self.prob)
        chol = np.linalg.cholesky(self.cov[picks] + 1e-12 * np.eye(3)[None])
        coefs = self.mean[picks] + np.einsum("kij,kj->ki", chol, rng.standard_normal((n, 3)))
        coefs[:, 1:] = np.maximum(coefs[:, 1:], 0.0)
        paths = np.empty((n, s1.size))
        n_alpha = ALPHAS.size
        for li in range(len(self.lams)):
            rows = np.flatnonzero(picks // n_alpha == li)
            if rows.size:
                alpha = ALPHAS[picks[rows] % n_alpha]
                g = (s1[None, :] / self.s1_ref) ** -alpha[:, None]
                paths[rows] = coefs[rows, :1] + coefs[rows, 1:2] * g - coefs[rows, 2:3] * s2[li]
        return paths

    def law(self, center: float = 0.0, scale: float = 1.0, **info: Any) -> GridLaw:
        """The best cell as a :class:`GridLaw` on the schedule's own LR scale, for values
        ``center + scale * y`` of the fitted ``y``.

        Its covariance (in the fitting space) is the cell's Gaussian for ``L0, A, C`` (by the
        delta method) and the posterior spread over the grid for ``alpha`` and ``lam``.
        """
        k = self.best
        alpha, lam = self.cell(k)
        l0, a, c = (float(v) for v in self.mean[k])
        params = {
            "L0": center + scale * l0,
            # (S1 / s1_ref)^-alpha with S1 in peak units = S1_lr^-alpha * (peak * s1_ref)^alpha
            "A": max(scale * a, 1e-12) * (self.peak * self.s1_ref) ** alpha,
            "alpha": alpha,
            "C": max(scale * c, 0.0) * (1.0 - lam) / self.peak,
            "lam": lam,
        }
        # L0 and C are fitted linearly, A as its log (d log A = dA / A)
        jac = np.diag([scale, 1.0 / max(a, 1e-12), scale * (1.0 - lam) / self.peak])
        cells = [self.cell(j) for j in range(self.prob.size)]
        spread = [np.log([al for al, _ in cells]), np.log1p(-np.array([la for _, la in cells]))]
        cov = np.zeros((5, 5))
        idx = [0, 1, 3]
        cov[np.ix_(idx, idx)] = jac @ self.cov[k] @ jac.T
        cov[2, 2], cov[4, 4] = (float(self.prob @ (v - self.prob @ v) ** 2) for v in spread)
        return GridLaw(params, cov=cov, info={"cell_weight": float(self.prob[k]), **info})


def grid_posterior(
    y: FloatArray,
    weight: FloatArray,
    s1: FloatArray,
    s2: FloatArray,
    *,
    peak: float,
    center: float,
    scale: float,
    noise_floor: float = 0.0,
    lams: Sequence[float] = LAMBDAS,
) -> GridPosterior:
    """Fit the grid law to losses normalised as ``y = (loss - center) / scale``, whose steps
    have areas ``s1`` and ``s2`` (one row per decay in ``lams``; from :func:`grid_areas`).

    The noise is the best (nearly unregularised) cell's residual SD, floored by
    ``noise_floor`` (a variance). The Gaussian prior of ``(L0, A, C)``, ``A`` multiplying
    ``(S1 / min S1)^-alpha``, is :data:`PRIOR_SD` around 0 for the first two and a full anneal
    gaining :data:`ANNEAL_GAIN` of the loss level ``center`` for ``C``. Cells whose amplitude
    comes out negative (a rising power law) are dropped, unless every cell's is.
    """
    gain = ANNEAL_GAIN * abs(center) / scale
    prior_mean, prior_sd = np.array([0.0, 0.0, gain]), np.array([*PRIOR_SD, gain])
    w = weight / weight.mean()
    s1_ref = float(np.min(s1))
    g = (s1[None, :] / s1_ref) ** -ALPHAS[:, None]
    X = np.concatenate([
        np.stack([np.ones_like(g), g, -np.broadcast_to(row, g.shape)], axis=2) for row in s2
    ])  # fmt: skip
    ls_mean, _, _ = _bayes_k(X, y, w, prior_mean, 1e3 * prior_sd, 1.0)
    sse = np.sum(w * (y[None] - (X @ ls_mean[:, :, None])[:, :, 0]) ** 2, axis=1)
    sigma2 = max(float(np.nanmin(sse)) / max(float(w.sum()) - 4.0, 1.0), noise_floor, 1e-12)
    mean, cov, log_ev = _bayes_k(X, y, w, prior_mean, prior_sd, sigma2)
    finite = np.isfinite(log_ev) & np.all(np.isfinite(mean), axis=1)
    if not finite.any():
        # a degenerate curve or schedule (an area of 0 at a fitted step): no design fits, and
        # sampling from NaN weights would fail inside numpy; auto falls back to the PFN
        raise FitError(
            "The schedule-aware law cannot be fitted to this curve (no finite fit over its "
            "schedule). Use method='pfn' or method='ensemble'."
        )
    ok = (mean[:, 1] > 0) & finite
    log_ev = np.where(ok if ok.any() else finite, log_ev, -np.inf)
    prob = np.exp(log_ev - log_ev.max())
    return GridPosterior(mean, cov, prob / prob.sum(), s1_ref, peak, tuple(lams))


def fit_closed_form(data: Sequence[FitCurve]) -> tuple[FloatArray, FloatArray]:
    """``fit_law(..., "grid")``: the grid posterior of one or several curves, its best cell as
    the parameters and their covariance in the fitting space.

    The losses are normalised as a forecast normalises them (the recent level, and the scale of
    the fall toward it), so the priors mean the same as in ``forecast(method="law")``.
    """
    from runcast.forecast._prep import fall_scale

    losses = np.concatenate([c.losses for c in data])
    tail = np.concatenate([c.losses[-max(c.losses.size // 10, 1):] for c in data])
    center = float(np.median(tail))
    scale = fall_scale(losses, center)
    peak = max(float(c.planned.max()) for c in data)
    areas = [lr_areas(c.lrs / peak) for c in data]
    s1 = np.concatenate([a1[c.steps] for c, (a1, _) in zip(data, areas, strict=True)])
    s2 = np.concatenate([a2[:, c.steps] for c, (_, a2) in zip(data, areas, strict=True)], axis=1)
    post = grid_posterior((losses - center) / scale, np.ones_like(losses), s1, s2, peak=peak,
                          center=center, scale=scale)  # fmt: skip
    law = post.law(center, scale)
    return np.array([law.params[p.name] for p in GridLaw.PARAMS]), law.cov
