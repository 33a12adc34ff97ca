"""runcast's law: the multi-power and momentum laws, each fitted with priors, averaged.

The two laws credit an LR drop through different mechanisms (a power-law relaxation in the area
travelled since the drop vs an exponential momentum in steps), and on runs longer than the fitted
ones they err in different places: the multi-power law is best on sudden drops, the momentum
law on long constant and slow cosine runs (leave-one-curve-out on the fit curves, and the
schedule-transfer benchmark). Fitted separately (so neither can absorb the other's error) and
averaged with equal weights, their errors partly cancel; their disagreement widens the bands.
Weights are not tuned per data set: with three fit curves a tuned weight is noise.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from runcast.forecast.laws._areas import FloatArray, IntArray
from runcast.forecast.laws._base import Law, Param
from runcast.forecast.laws._momentum import MomentumLaw
from runcast.forecast.laws._mpl import MultiPowerLaw

MEMBERS: tuple[tuple[str, type[Law]], ...] = (("mpl", MultiPowerLaw), ("momentum", MomentumLaw))
WEIGHTS = (0.5, 0.5)


def _prefixed(prefix: str, p: Param) -> Param:
    return Param(f"{prefix}.{p.name}", p.lower, p.upper, p.transform, p.prior)


class RuncastLaw(Law):
    """runcast's law: equal-weight average of a fitted multi-power law and momentum law.

    Parameters are the members' own, prefixed ``mpl.`` and ``momentum.``.

    Example:
        >>> from runcast.forecast.laws import MultiPowerLaw
        >>> mpl = MultiPowerLaw.published("25M").params
        >>> mom = {"L0": 3.04, "A": 0.52, "alpha": 0.51, "C": 1.6, "lam": 0.996}
        >>> law = RuncastLaw.from_members({"mpl": mpl, "momentum": mom})
        >>> spec = {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 2160, "total": 24000}
        >>> round(float(law.predict(spec, [23999])[0]), 2)
        3.31
    """

    name: ClassVar[str] = "runcast"
    summary: ClassVar[str] = "average of the multi-power and momentum laws, fitted apart (runcast)"
    MEMBERS: ClassVar[tuple[tuple[str, type[Law]], ...]] = MEMBERS
    PARAMS: ClassVar[tuple[Param, ...]] = tuple(
        _prefixed(prefix, p) for prefix, law in MEMBERS for p in law.PARAMS
    )

    @classmethod
    def from_members(cls, params: dict[str, dict[str, float]], **kwargs: Any) -> RuncastLaw:
        """Build from each member's parameters, e.g. ``{"mpl": {...}, "momentum": {...}}``."""
        flat = {f"{m}.{k}": v for m, ps in params.items() for k, v in ps.items()}
        return cls(flat, **kwargs)

    def members(self) -> dict[str, Law]:
        """The member laws with their parameters (without uncertainty)."""
        out = {}
        for prefix, law in MEMBERS:
            out[prefix] = law({p.name: self.params[f"{prefix}.{p.name}"] for p in law.PARAMS})
        return out

    @classmethod
    def _prepare(cls, lrs: FloatArray, steps: IntArray) -> Any:
        return tuple(law._prepare(lrs, steps) for _, law in MEMBERS)

    @classmethod
    def _evaluate(
        cls, theta: FloatArray, prep: Any, grad: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        preds, jacs = [], []
        i = 0
        for (_, law), sub, w in zip(MEMBERS, prep, WEIGHTS, strict=True):
            k = len(law.PARAMS)
            p, j = law._evaluate(theta[i : i + k], sub, grad)
            preds.append(w * p)
            if j is not None:
                jacs.append(w * j)
            i += k
        pred = np.sum(preds, axis=0)
        return pred, (np.hstack(jacs) if grad else None)

    @classmethod
    def _starts(cls, losses: FloatArray, s1: FloatArray, peak: float) -> list[dict[str, float]]:
        per = [law._starts(losses, s1, peak) for _, law in MEMBERS]
        n = min(len(s) for s in per)
        return [
            {f"{prefix}.{k}": v for (prefix, _), s in zip(MEMBERS, per, strict=True)
             for k, v in s[i].items()}
            for i in range(n)
        ]  # fmt: skip
