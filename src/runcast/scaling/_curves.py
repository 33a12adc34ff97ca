"""A larger model's whole loss curve from a scaling law, alone or with its own first steps.

The law fitted on smaller models' checkpoints gives the larger model's curve ``L(N, D_t)`` with
the law's spread. Once the larger run has begun, its first points (past ``drop_first``) say how
far the law is off for this model, and the two become one posterior over the run's final log
offset ``c``: prior ``Normal(0, s_law^2)``; data, the run's early mean log offset plus how the
smaller runs' (``reference``) offsets moved from the same fraction of their runs to their ends
(median, with their spread as its error). The method and its measured errors are in
bench/README.md, "Scaling laws".

Example:
    >>> import numpy as np
    >>> from runcast import Curve
    >>> from runcast.scaling import ScalingConfig, fit_scaling, predict_curve
    >>> n = np.repeat([1e8, 3e8, 1e9], 4); d = np.tile([2e9, 5e9, 1e10, 2e10], 3)
    >>> law = fit_scaling(n, d, 1.8 + 480 / n**0.35 + 2000 / d**0.37,
    ...                   config=ScalingConfig(n_boot=20))
    >>> steps = np.arange(1000, 20001, 1000)
    >>> fc = predict_curve(law, 3e9, steps, tokens_per_step=2e6)
    >>> round(float(fc.final.median), 3)
    2.27
    >>> seen = Curve(steps[:4], 1.03 * (1.8 + 480 / 3e9**0.35 + 2000 / (steps[:4] * 2e6)**0.37))
    >>> fc2 = predict_curve(law, 3e9, steps, tokens_per_step=2e6, observed=seen)
    >>> round(float(fc2.final.median), 3), round(fc2.info["early_offset"], 3)
    (2.277, 0.03)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from runcast.curve import Curve
from runcast.errors import InvalidInputError
from runcast.forecast import Forecast
from runcast.scaling._law import ScalingLaw
from runcast.scaling._points import ScalingData

#: the relative early-to-final offset change assumed without reference runs
DEFAULT_DRIFT = 0.01


@dataclass(frozen=True)
class CurvePrior:
    """How a run's own points update the law's curve.

    Attributes:
        drop_first: points at or before this fraction of the planned last step are ignored (the
            warmup; the Hitchhiker's guide drops the first 10% for the same reason).
        drift: without reference runs, the spread of the change of a run's offset from the law
            between its start and its end, in log loss.
    """

    drop_first: float = 0.1
    drift: float = DEFAULT_DRIFT

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop_first < 1.0:
            raise InvalidInputError(f"drop_first must be in [0, 1), but got {self.drop_first!r}.")
        if not self.drift >= 0.0:
            raise InvalidInputError(f"drift must be >= 0, but got {self.drift!r}.")


def predict_curve(
    law: ScalingLaw,
    n: float,
    steps: Any,
    tokens_per_step: float,
    observed: Curve | None = None,
    unique: float | None = None,
    reference: ScalingData | None = None,
    prior: CurvePrior | None = None,
    draws: int = 1000,
) -> Forecast:
    """The loss curve of a model of ``n`` parameters at ``steps`` (``tokens_per_step`` each).

    Args:
        law: a law fitted on smaller models (:func:`fit_scaling`).
        n: the model's parameter count.
        steps: the steps to predict, increasing (the last is taken as the planned end).
        tokens_per_step: tokens per optimizer step (batch size x sequence length).
        observed: the run's own points so far; combined with the law as one posterior.
        unique: unique tokens, for the data-constrained form.
        reference: the smaller runs' points, every checkpoint (``drop_first=0``), grouped by
            run: how a run's offset from the law changes from its start to its end.
        prior: how the run's points update the law (:class:`CurvePrior`).

    Returns:
        A :class:`~runcast.forecast.Forecast` whose paths are the posterior's draws.

    Example: see the module docstring.
    """
    cfg = prior or CurvePrior()
    st = np.asarray(steps)
    if st.ndim != 1 or st.size == 0 or st.dtype.kind not in "iuf" or (st <= 0).any():
        raise InvalidInputError(f"steps must be positive step numbers, but got {steps!r:.80}.")
    if st.size > 1 and (np.diff(st) <= 0).any():
        raise InvalidInputError("steps must be strictly increasing.")
    if not (isinstance(tokens_per_step, (int, float)) and tokens_per_step > 0):
        raise InvalidInputError(f"tokens_per_step must be > 0, but got {tokens_per_step!r}.")
    pred = law.predict(n, st * float(tokens_per_step), unique=unique, draws=draws)
    logs = np.log(pred.samples)
    info: dict[str, Any] = {"n": float(n), "tokens_per_step": float(tokens_per_step)}
    if observed is not None:
        c = observed.finite()
        keep = (c.step > cfg.drop_first * float(st[-1])) & (c.step > 0)
        if keep.any():
            at = c.step[keep].astype(np.float64)
            law_at = law.predict(n, at * tokens_per_step, unique=unique, draws=1).point
            resid = np.log(c.value[keep]) - np.log(law_at)
            seen = float(c.step[keep][-1]) / float(st[-1])
            shift, shift_sd, typical = _drift(law, reference, cfg, seen)
            prior_sd = max(float(np.std(logs[:, -1])), 1e-9)
            early = float(np.mean(resid))
            # a start unlike the reference runs' starts says this run is not like them, so
            # how their offsets moved is weaker evidence for how this one will: its distance
            # from theirs counts as error too (the evidence is discounted, not trusted blindly)
            noise = float(np.var(resid)) / resid.size + shift_sd**2
            if reference is not None:
                noise += (early - typical) ** 2
            precision = 1.0 / prior_sd**2 + 1.0 / max(noise, 1e-18)
            mean = (early + shift) / max(noise, 1e-18) / precision
            sd = float(np.sqrt(1.0 / precision))
            # the posterior replaces the law's spread at the end: the paths keep their shape
            # around the law's curve, shifted by the offset and scaled to its posterior sd
            point = np.log(pred.point)
            logs = point + mean + (logs - np.median(logs, axis=0)) * (sd / prior_sd)
            info.update(
                offset=mean,
                offset_sd=sd,
                early_offset=early,
                drift=shift,
                n_observed=int(resid.size),
            )
    return Forecast(st.astype(np.int64), np.exp(logs), method="scaling", info=info)


def _drift(
    law: ScalingLaw, reference: ScalingData | None, cfg: CurvePrior, seen: float
) -> tuple[float, float, float]:
    """How a run's log offset from the law changes from its start (``drop_first`` to ``seen``
    of its length) to its end, over the reference runs: the median change, its spread, and the
    median offset of their starts (0, ``drift`` and 0 without a reference)."""
    if reference is None:
        return 0.0, cfg.drift, 0.0
    changes, starts = [], []
    # a reference run that overfit is held at its running minimum (ScalingData.from_curves), the
    # part the form describes: it is compared with the law without its overfitting rise
    plain = dataclasses.replace(law, overfit=np.empty((0, 2)))
    pred = plain.predict(reference.n, reference.d, unique=reference.unique, draws=1).point
    resid = np.log(reference.loss) - np.log(pred)
    for g in np.unique(reference.group):
        idx = np.flatnonzero(reference.group == g)
        frac = reference.d[idx] / reference.d[idx].max()
        early = idx[(frac > cfg.drop_first) & (frac <= seen)]
        if early.size == 0:
            continue
        last = idx[np.argmax(reference.d[idx])]
        starts.append(float(np.mean(resid[early])))
        changes.append(float(resid[last]) - starts[-1])
    if len(changes) < 2:
        return 0.0, cfg.drift, 0.0
    ch = np.asarray(changes)
    med = float(np.median(ch))
    # a robust spread (MAD), so that one odd run (one that overfits late) does not set it
    mad = 1.4826 * float(np.median(np.abs(ch - med)))
    return med, max(mad, 1e-4), float(np.median(starts))
