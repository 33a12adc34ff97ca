"""The momentum law (Tissue et al. 2024): constant LR is a pure power law; drops pay off."""

from __future__ import annotations

import numpy as np

from runcast import Schedule
from runcast.forecast.laws import MomentumLaw
from runcast.forecast.laws._areas import momentum_area_reference

P = {"L0": 3.0, "A": 0.5, "alpha": 0.5, "C": 0.8, "lam": 0.995}


def test_constant_lr_is_a_pure_power_law() -> None:
    spec = {"kind": "constant", "peak": 1e-3, "total": 5000}
    steps = np.array([100, 1000, 4999])
    s1 = 1e-3 * (steps + 1)
    # no LR drop: S2 = 0 and L = L0 + A * S1^-alpha exactly
    np.testing.assert_allclose(MomentumLaw(P).predict(spec, steps), 3.0 + 0.5 * s1**-0.5)


def test_annealing_term_matches_reference_recursion() -> None:
    spec = {"kind": "two_stage", "peak": 1e-3, "second": 1e-4, "switch": 2000, "total": 5000}
    lrs = Schedule.from_spec(spec).array()
    steps = np.array([1999, 2100, 4999])
    s1 = np.cumsum(lrs)[steps]
    s2 = momentum_area_reference(lrs, steps, P["lam"])
    expected = 3.0 + 0.5 * s1**-0.5 - 0.8 * s2
    np.testing.assert_allclose(MomentumLaw(P).predict(spec, steps), expected, rtol=1e-10)
    # the drop at 2000 lowers the loss within ~1/(1-lam) = 200 steps
    assert expected[1] < expected[0] - 0.05
