"""runcast's law: the multi-power form with priors PRIOR_SCALE times stronger, and why."""

from __future__ import annotations

from typing import Any

import numpy as np

from runcast.forecast.laws import MultiPowerLaw, RuncastLaw, fit_law
from runcast.forecast.laws._fit import _fit_law
from runcast.forecast.laws._joint import centred
from runcast.forecast.laws._runcast import PRIOR_CENTRES

MPL = MultiPowerLaw.published("100M").params
SPEC = {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 2160, "total": 72000}


def test_prediction_is_the_multi_power_law() -> None:
    steps = np.array([5000, 36000, 71999])
    # same form, same parameters: only the fit differs
    np.testing.assert_allclose(
        RuncastLaw(MPL).predict(SPEC, steps), MultiPowerLaw(MPL).predict(SPEC, steps), rtol=1e-12
    )


def test_fit_is_the_mpl_fit_with_scaled_priors(mpl_fit_curves: Any) -> None:
    curves = mpl_fit_curves("25M")
    ours = fit_law(curves, "runcast", calibrate=False)
    moved = centred(MultiPowerLaw, PRIOR_CENTRES)
    plain = _fit_law(
        moved, curves, seed=0, restarts=None, fast=False, huber_delta=1e-3,
        prior_strength=RuncastLaw.PRIOR_SCALE, max_points=None, min_step=None, calibrate=False,
    )  # fmt: skip
    # runcast's fit is exactly the multi-power fit with its priors PRIOR_SCALE times stronger,
    # centred at PRIOR_CENTRES
    assert type(plain) is MultiPowerLaw
    np.testing.assert_allclose(ours.theta, plain.theta, rtol=1e-6)


def test_priors_keep_the_drop_shape_and_transfer_better(mpl_fit_curves: Any) -> None:
    curves = mpl_fit_curves("25M")
    ours = fit_law(curves, "runcast", calibrate=False)
    plain = fit_law(curves, "mpl", calibrate=False)
    # the exact optimum drifts to a slowly saturating drop (beta ~0.14, B ~650); the regularised
    # fit keeps beta near its prior's 0.45 and gamma near the paper's ~0.6
    assert plain.params["beta"] < 0.3 < 0.4 < ours.params["beta"] < 0.5
    assert 0.5 < ours.params["gamma"] < 0.7
    errs = {}
    for label, name in (("ours", "runcast"), ("plain", "mpl")):
        per = []
        for i, held in enumerate(curves):
            law = fit_law([c for j, c in enumerate(curves) if j != i], name, calibrate=False)
            assert held.schedule is not None
            per.append(np.mean(np.abs(law.predict(held.schedule, held.step) / held.value - 1)))
        errs[label] = float(np.mean(per))
    # leave-one-curve-out on the fit curves (how the scale was chosen): 0.0012 vs 0.0032
    assert errs["ours"] < 0.6 * errs["plain"]
