"""The scaling law with LR annealing (Tissue et al. 2024), "the momentum law".

``L(s) = L0 + A * S1^-alpha - C * S2``: the forward area ``S1`` (sum of LRs, warmup included)
drives the power-law descent; the annealing area ``S2 = sum_i m_i``, with the momentum
``m_i = lam * m_{i-1} + (eta_{i-1} - eta_i)``, credits each LR drop gradually (decay ``lam``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from runcast.forecast.laws._areas import (
    FloatArray,
    IntArray,
    momentum_area,
    momentum_area_grad,
)
from runcast.forecast.laws._base import Law, Param
from runcast.forecast.laws._mpl import GAIN_FRACTION, POWER_PARAMS, power_descent, power_starts


class MomentumLaw(Law):
    """Tissue et al.'s law; parameters L0, A, alpha, C and the momentum decay lam.

    Example:
        >>> law = MomentumLaw({"L0": 3.0, "A": 0.5, "alpha": 0.5, "C": 0.3, "lam": 0.999})
        >>> spec = {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 100, "total": 5000}
        >>> a, b = law.predict(spec, [2500, 4999])
        >>> bool(b < a)
        True
    """

    name: ClassVar[str] = "momentum"
    summary: ClassVar[str] = "scaling law with LR annealing (Tissue et al. 2024)"
    PARAMS: ClassVar[tuple[Param, ...]] = (
        *POWER_PARAMS,
        Param("C", 1e-9, 1e7),
        Param("lam", 0.5, 1.0 - 1e-6, "log1m", prior=(float(np.log(1e-3)), 1.5)),
    )

    #: count LR drops only in the annealing area (:class:`~runcast.forecast.laws.GridLaw`), or
    #: Tissue et al.'s signed form, which credits a warmup's rise as negative annealing
    ANNEAL_ONLY: ClassVar[bool] = False

    @classmethod
    def _prepare(cls, lrs: FloatArray, steps: IntArray) -> Any:
        s1 = np.maximum(np.cumsum(lrs)[steps], 1e-300)
        return np.log(s1), lrs, steps

    @classmethod
    def _evaluate(
        cls, theta: FloatArray, prep: Any, grad: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        l0, a, alpha, c, lam = (float(v) for v in theta)
        log_s1, lrs, steps = prep
        descent, descent_jac = power_descent(l0, a, alpha, log_s1, grad)
        s2 = momentum_area(lrs, steps, lam, anneal_only=cls.ANNEAL_ONLY)
        pred = descent - c * s2
        if not grad:
            return pred, None
        assert descent_jac is not None
        s2_grad = momentum_area_grad(lrs, steps, lam, anneal_only=cls.ANNEAL_ONLY)
        return pred, np.column_stack([descent_jac, -s2, -c * s2_grad])

    @classmethod
    def _data_priors(cls, losses: FloatArray, peak: float) -> dict[str, tuple[float, float]]:
        # the full annealing gain C * peak / (1 - lam) is ~5% of the loss level, as in the
        # multi-power law; at the typical lam = 0.996 that puts C near 0.05 * level * 0.004 / peak
        level = float(np.median(losses))
        return {"C": (float(np.log(GAIN_FRACTION * level * 4e-3 / peak)), 1.0)}

    @classmethod
    def _starts(cls, losses: FloatArray, s1: FloatArray, peak: float) -> list[dict[str, float]]:
        lams = (0.999, 0.99, 0.9995)
        starts, spread = power_starts(losses, s1, ((0.4, 0.5), (0.15, 0.35), (0.9, 0.7)))
        return [
            {**p, "C": 0.15 * spread / peak * (1.0 - lam), "lam": lam}
            for p, lam in zip(starts, lams, strict=True)
        ]
