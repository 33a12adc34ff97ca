"""A larger model's whole loss curve from a scaling law, alone or with its own first steps.

The law fitted on smaller models' checkpoints gives the curve ``L(N, D_t)`` of the larger model
at every step (``D_t = t x tokens per step``), with the law's own spread. Once the larger run has
begun, its first points say how far the law is off for this model: the law and the forecast
become one posterior over an offset ``c`` (in loss) that shifts the whole curve. Prior:
``c ~ Normal(0, s_law^2)``, ``s_law`` the law's spread at the run's end. Data: the mean
difference between the run's points (past ``drop_first`` of its planned length) and the law,
whose error is the points' own scatter over ``sqrt(n)`` plus ``drift``: how much the offset of
a curve's start differs from that of its end, as a fraction of the loss (chosen
leave-one-family-out, see bench/README.md, "Scaling laws"). Few points or a law that fits them
well leave the law in charge; many points that disagree with it move the curve.

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
    2.268
    >>> seen = Curve(steps[:4], 0.05 + 1.8 + 480 / 3e9**0.35 + 2000 / (steps[:4] * 2e6)**0.37)
    >>> fc2 = predict_curve(law, 3e9, steps, tokens_per_step=2e6, observed=seen)
    >>> bool(fc2.final.median > fc.final.median)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from runcast.curve import Curve
from runcast.errors import InvalidInputError
from runcast.forecast import Forecast
from runcast.scaling._law import ScalingLaw

#: chosen leave-one-family-out (bench/scaling.py)
DEFAULT_DRIFT = 0.005


@dataclass(frozen=True)
class CurvePrior:
    """How a run's own points update the law's curve.

    Attributes:
        drop_first: points at or before this fraction of the planned last step are ignored (the
            warmup; the Hitchhiker's guide drops the first 10% for the same reason).
        drift: the relative difference between a curve's early and final offset from the law.
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
        prior: how the run's points update the law (:class:`CurvePrior`).

    Returns:
        A :class:`~runcast.forecast.Forecast` whose paths are the posterior's draws.

    Example: see the module docstring.
    """
    cfg = prior or CurvePrior()
    st = np.asarray(steps)
    if st.ndim != 1 or st.size == 0 or st.dtype.kind not in "iuf" or (st <= 0).any():
        raise InvalidInputError(f"steps must be positive step numbers, but got {steps!r:.80}.")
    if not (isinstance(tokens_per_step, (int, float)) and tokens_per_step > 0):
        raise InvalidInputError(f"tokens_per_step must be > 0, but got {tokens_per_step!r}.")
    pred = law.predict(n, st * float(tokens_per_step), unique=unique, draws=draws)
    samples = pred.samples
    info: dict[str, Any] = {"n": float(n), "tokens_per_step": float(tokens_per_step)}
    if observed is not None:
        shift, sd, used = _offset(
            law, n, observed, st, float(tokens_per_step), unique, cfg, pred.samples[:, -1]
        )
        if used:
            # the posterior replaces the law's spread at the end: re-centre its paths on the
            # shifted curve and scale them to the posterior sd
            end = samples[:, -1]
            spread = max(float(np.std(end)), 1e-12)
            scale = sd / spread
            samples = pred.point + shift + (samples - np.median(samples, axis=0)) * scale
            info.update(offset=shift, offset_sd=sd, n_observed=used)
    return Forecast(st.astype(np.int64), samples, method="scaling", info=info)


def _offset(
    law: ScalingLaw,
    n: float,
    observed: Curve,
    steps: np.ndarray,
    tokens_per_step: float,
    unique: float | None,
    cfg: CurvePrior,
    final_samples: np.ndarray,
) -> tuple[float, float, int]:
    """The posterior mean and sd of the run's offset from the law, and the points used."""
    c = observed.finite()
    keep = (c.step > cfg.drop_first * float(steps[-1])) & (c.step > 0)
    prior_sd = float(np.std(final_samples))
    if not keep.any():
        return 0.0, prior_sd, 0
    at = c.step[keep].astype(np.float64)
    law_at = law.predict(n, at * tokens_per_step, unique=unique, draws=1).point
    resid = c.value[keep] - law_at
    c_hat = float(np.mean(resid))
    final = float(np.median(final_samples))
    noise = float(np.std(resid)) ** 2 / resid.size + (cfg.drift * final) ** 2
    precision = 1.0 / max(prior_sd**2, 1e-18) + 1.0 / max(noise, 1e-18)
    mean = (c_hat / max(noise, 1e-18)) / precision
    return mean, float(np.sqrt(1.0 / precision)), int(resid.size)
