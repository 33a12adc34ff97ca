"""Scaling laws across runs: predict a bigger model from smaller ones, and the compute-optimal size.

``fit_scaling`` fits Chinchilla's ``L(N, D) = E + A/N^alpha + B/D^beta`` (or the
data-constrained form that discounts repeated epochs) to losses of several model sizes, from
arrays, a table, loss curves or runs in the store. The :class:`ScalingLaw` predicts the loss of
any N and D with an interval and the compute-optimal N and D for a FLOP budget;
:func:`predict_curve` forecasts a larger model's whole loss curve, alone or combined with its own
first steps. See bench/README.md, "Scaling laws", for how well it predicts on real model families.

Example:
    >>> import numpy as np
    >>> from runcast.scaling import ScalingConfig, fit_scaling
    >>> n = np.repeat([1e8, 3e8, 1e9], 3); d = np.tile([5e9, 1e10, 2e10], 3)
    >>> law = fit_scaling(n, d, 1.8 + 480 / n**0.35 + 2000 / d**0.37,
    ...                   config=ScalingConfig(n_boot=0))
    >>> round(law.params["E"], 2)
    1.8
"""

from __future__ import annotations

from runcast.scaling._curves import CurvePrior, predict_curve
from runcast.scaling._forms import FORMS, Form
from runcast.scaling._law import (
    EPOCH_CHINCHILLA,
    Allocation,
    LossPrediction,
    ScalingConfig,
    ScalingLaw,
    fit_scaling,
)
from runcast.scaling._points import ScalingData

__all__ = [
    "EPOCH_CHINCHILLA",
    "FORMS",
    "Allocation",
    "CurvePrior",
    "Form",
    "LossPrediction",
    "ScalingConfig",
    "ScalingData",
    "ScalingLaw",
    "fit_scaling",
    "predict_curve",
]
