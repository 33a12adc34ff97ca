"""The multi-power law (Luo et al., ICLR 2025): a loss curve from any LR schedule.

``L(t) = L0 + A * S1(t)^-alpha - B * LD(t)`` with the forward area ``S1`` (warmup included,
which is the paper's ``S1 + S_W``) and the loss drop
``LD(t) = sum_{k<=t} (eta_{k-1} - eta_k) * G(eta_k^-gamma * S_k(t))``,
``G(x) = 1 - (C x + 1)^-beta``, ``S_k(t) = sum_{tau=k}^{t} eta_tau``. A drop of the LR lowers the
loss gradually, saturating as more area is travelled at the lower LR.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from runcast.errors import InvalidInputError
from runcast.forecast.laws._areas import DropTerms, FloatArray, IntArray
from runcast.forecast.laws._base import Law, Param

# The parameters published with the paper's repository (thu-yao-01-luo/MultiPowerLaw,
# README "Best Parameters"), for LLaMA-style models trained with peak LR 3e-4, warmup 2160.
PUBLISHED: dict[str, dict[str, float]] = {
    "25M": {"L0": 3.04045406, "A": 0.52468604, "alpha": 0.50786857, "B": 363.78751622,
            "C": 2.06560812, "beta": 0.58279013, "gamma": 0.64142257},
    "100M": {"L0": 2.6514477, "A": 0.60115152, "alpha": 0.45295811, "B": 437.9464276,
             "C": 2.13245612, "beta": 0.59785199, "gamma": 0.65523644},
    "400M": {"L0": 2.37474466, "A": 0.65421216, "alpha": 0.42878731, "B": 523.42464371,
             "C": 2.02462735, "beta": 0.59350493, "gamma": 0.63472457},
}  # fmt: skip


CHUNK = 2048
# typical full annealing gain (peak LR to zero) as a fraction of the loss level
GAIN_FRACTION = 0.05

# L0, A, alpha of the power-law descent ``L0 + A * S1^-alpha`` that both annealing laws (this
# one and the momentum law) start from; each adds its own annealing term and parameters.
POWER_PARAMS: tuple[Param, ...] = (
    Param("L0", 1e-6, 1e3),
    Param("A", 1e-6, 1e4),
    Param("alpha", 0.02, 3.0, prior=(float(np.log(0.5)), 0.5)),
)


def power_descent(
    l0: float, a: float, alpha: float, log_s1: FloatArray, grad: bool
) -> tuple[FloatArray, FloatArray | None]:
    """``L0 + A * S1^-alpha`` and, if ``grad``, its Jacobian (columns L0, A, alpha).

    Example:
        >>> value, jac = power_descent(2.0, 1.0, 0.5, np.log(np.array([4.0])), grad=True)
        >>> value.tolist(), jac.tolist()
        ([2.5], [[1.0, 0.5, -0.6931471805599453]])
    """
    power = np.exp(-alpha * log_s1)
    value = l0 + a * power
    if not grad:
        return value, None
    jac = np.empty((power.size, 3))
    jac[:, 0] = 1.0
    jac[:, 1] = power
    jac[:, 2] = -a * power * log_s1
    return value, jac


def power_starts(
    losses: FloatArray, s1: FloatArray, guesses: tuple[tuple[float, float], ...]
) -> tuple[list[dict[str, float]], float]:
    """Fit starts of L0, A, alpha, one per ``(l0_frac, alpha)`` guess, and the losses' spread.

    L0 starts ``l0_frac`` of the spread below the lowest loss; A makes the descent meet the
    first loss at the smallest area. The spread scales the annealing term's own start.

    Example:
        >>> starts, spread = power_starts(np.array([3.0, 2.0]), np.array([1.0, 4.0]), ((0.5, 1.0),))
        >>> starts, spread
        ([{'L0': 1.5, 'A': 1.5, 'alpha': 1.0}], 1.0)
    """
    lo, hi = float(losses.min()), float(losses.max())
    spread = max(hi - lo, 1e-3 * hi)
    first = float(losses[np.argmin(s1)])
    starts = []
    for l0_frac, alpha in guesses:
        l0 = max(lo - l0_frac * spread, 1e-3)
        a = max(first - l0, 1e-3) * float(s1.min()) ** alpha
        starts.append({"L0": l0, "A": a, "alpha": alpha})
    return starts, spread


def drop_terms(
    chunks: list[DropTerms], c: float, beta: float, gamma: float, delta: float, grad: bool
) -> tuple[FloatArray, FloatArray | None]:
    """The loss drop over all prepared chunks of steps, and its Jacobian if ``grad``."""
    parts = [t.value_and_grad(c, beta, gamma, delta, grad) for t in chunks]
    value = np.concatenate([v for v, _ in parts])
    if not grad:
        return value, None
    return value, np.vstack([j for _, j in parts if j is not None])


class MultiPowerLaw(Law):
    """The multi-power law of Luo et al. (2025); parameters L0, A, alpha, B, C, beta, gamma.

    Example:
        >>> law = MultiPowerLaw.published("400M")
        >>> spec = {"kind": "two_stage", "peak": 3e-4, "second": 3e-5, "switch": 8000,
        ...         "warmup": 2160, "total": 16000}
        >>> before, after = law.predict(spec, [7999, 15999])
        >>> bool(after < before - 0.15)  # the LR drop at 8000 lowers the loss
        True
    """

    name: ClassVar[str] = "mpl"
    summary: ClassVar[str] = "multi-power law (Luo et al. 2025)"
    PARAMS: ClassVar[tuple[Param, ...]] = (
        *POWER_PARAMS,
        Param("B", 1e-6, 1e7),
        Param("C", 1e-4, 1e4, prior=(float(np.log(2.0)), 1.0)),
        Param("beta", 0.02, 5.0, prior=(float(np.log(0.6)), 0.5)),
        Param("gamma", 0.0, 1.5, "lin", prior=(0.6, 0.3)),
    )

    @classmethod
    def published(cls, size: str) -> MultiPowerLaw:
        """The law with the paper's published parameters for ``size`` in 25M, 100M, 400M."""
        if size not in PUBLISHED:
            raise InvalidInputError(
                f"No published multi-power law parameters for {size!r}; "
                f"use one of {', '.join(PUBLISHED)}."
            )
        return cls(PUBLISHED[size], info={"source": "Luo et al. 2025, published", "size": size})

    @classmethod
    def _prepare(cls, lrs: FloatArray, steps: IntArray) -> Any:
        s1 = np.maximum(np.cumsum(lrs)[steps], 1e-300)
        # chunks of steps bound the (steps x blocks) matrices: ~10 MB whatever the request
        chunks = [DropTerms.build(lrs, steps[i : i + CHUNK]) for i in range(0, steps.size, CHUNK)]
        return s1, np.log(s1), chunks

    @classmethod
    def _evaluate(
        cls, theta: FloatArray, prep: Any, grad: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        l0, a, alpha, b, c, beta, gamma = (float(v) for v in theta)
        _, log_s1, drops = prep
        descent, descent_jac = power_descent(l0, a, alpha, log_s1, grad)
        ld, ld_jac = drop_terms(drops, c, beta, gamma, 0.0, grad)
        pred = descent - b * ld
        if not grad:
            return pred, None
        assert descent_jac is not None and ld_jac is not None
        return pred, np.hstack([descent_jac, -ld[:, None], -b * ld_jac[:, :3]])

    @classmethod
    def _data_priors(cls, losses: FloatArray, peak: float) -> dict[str, tuple[float, float]]:
        # The full gain of annealing from the peak to zero, B * peak, is 3-8% of the loss level
        # in the paper's fits and ours (25M-400M). A curve that has not decayed its LR yet says
        # nothing about B; this prior then keeps its forecast of a later decay sensible.
        level = float(np.median(losses))
        return {"B": (float(np.log(GAIN_FRACTION * level / peak)), 0.5)}

    @classmethod
    def _starts(cls, losses: FloatArray, s1: FloatArray, peak: float) -> list[dict[str, float]]:
        starts, spread = power_starts(
            losses, s1, ((0.4, 0.5), (0.15, 0.35), (0.9, 0.7), (0.25, 0.5))
        )
        b = 0.15 * spread / peak
        return [{**p, "B": b, "C": 2.0, "beta": 0.6, "gamma": 0.6} for p in starts]
