"""The grid law: the law behind forecast(method="law") is a Law like the others, one area code."""

from __future__ import annotations

import numpy as np
import pytest

import runcast
from runcast import Curve, Schedule
from runcast.forecast._known import fit_known
from runcast.forecast._prep import prepare
from runcast.forecast.laws import LAWS, GridLaw, fit_law, fit_laws
from runcast.forecast.laws._areas import momentum_area_reference
from runcast.forecast.laws._grid import LAMBDAS, grid_areas, grid_posterior

WSD = {"kind": "wsd", "peak": 1e-3, "end": 1e-5, "warmup": 100, "total": 6000,
       "decay_start": 4800}  # fmt: skip
TRUTH = {"L0": 2.0, "A": 0.3, "alpha": 0.4, "C": 0.6, "lam": 0.99}


def test_is_a_registered_law_whose_annealing_counts_drops_only() -> None:
    assert LAWS["grid"] is GridLaw
    lrs = Schedule.from_spec(WSD).array()
    steps = np.array([50, 99, 2000, 5000, 5999])
    s1 = np.cumsum(lrs)[steps]
    s2 = momentum_area_reference(lrs, steps, 0.99, anneal_only=True)
    expected = 2.0 + 0.3 * s1**-0.4 - 0.6 * s2
    np.testing.assert_allclose(GridLaw(TRUTH).predict(WSD, steps), expected, rtol=1e-10)
    # the warmup's rise is no negative annealing: before the decay, S2 is exactly 0; a full
    # anneal of the 1e-3 peak tends to 1e-3 / (1 - lam) = 0.1
    assert s2[2] == 0.0 and 0.08 < s2[4] < 0.1


def test_jacobian_matches_finite_differences() -> None:
    lrs = Schedule.from_spec(WSD).array()
    steps = np.arange(200, 6000, 400)
    prep = GridLaw._prepare(lrs, steps)
    theta = np.array([TRUTH[p.name] for p in GridLaw.PARAMS])
    _, jac = GridLaw._evaluate(theta, prep, True)
    assert jac is not None
    for j in range(theta.size):
        h = 1e-6 * max(abs(theta[j]), 1e-3)
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        fd = (GridLaw._evaluate(up, prep, False)[0] - GridLaw._evaluate(down, prep, False)[0])
        np.testing.assert_allclose(jac[:, j], fd / (2 * h), rtol=1e-4, atol=1e-9)


def test_the_forecasts_best_cell_is_a_grid_law_on_the_schedules_scale() -> None:
    # the posterior's cells are in normalised units (LR / peak, S2 scaled by 1 - lam); its best
    # cell turned into a GridLaw predicts, on the raw schedule, exactly that cell's mean path
    sched = Schedule.from_spec(WSD)
    steps = np.arange(200, 3001, 20)
    p = prepare(Curve(steps, GridLaw(TRUTH).predict(WSD, steps)), 5999)
    s1, s2, peak = grid_areas(sched, 5999)
    fit = np.round(p.x).astype(np.int64)
    post = grid_posterior(  # forecast(method="law")'s fit
        p.y, p.weight, s1[fit], s2[:, fit], peak=peak, center=p.center, scale=p.scale,
        noise_floor=(1.2533 * p.noise_y) ** 2,
    )  # fmt: skip
    k = post.best
    alpha, lam = post.cell(k)
    l0, a, c = post.mean[k]
    at = np.array([3000, 4800, 5500, 5999])
    y = l0 + a * (s1[at] / s1[fit[0]]) ** -alpha - c * s2[LAMBDAS.index(lam), at]
    law = post.law(p.center, p.scale)
    np.testing.assert_allclose(law.predict(WSD, at), p.to_values(y), rtol=1e-9)
    # and forecast(method="law") reports it, from the same posterior
    raw = fit_known(p, sched, n_paths=50)
    assert raw.info["params"] == pytest.approx(law.params)


def test_fit_law_grid_is_closed_form_and_predicts_another_schedule() -> None:
    steps = np.arange(200, 6000, 50)
    curve = Curve(steps, GridLaw(TRUTH).predict(WSD, steps), schedule=Schedule.from_spec(WSD))
    law = fit_law(curve, "grid")
    assert isinstance(law, GridLaw) and law.info["nfev"] == 0  # no optimiser ran
    cosine = {"kind": "cosine", "peak": 1e-3, "end": 1e-5, "warmup": 100, "total": 6000}
    at = np.arange(1000, 6000, 500)
    np.testing.assert_allclose(law.predict(cosine, at), GridLaw(TRUTH).predict(cosine, at),
                               rtol=0.01)  # fmt: skip
    # its bands come from the posterior's covariance: a forecast of the same run covers it
    f = law.forecast(WSD, at, seed=0)
    lo, hi = f.interval(0.8)
    assert np.all(lo <= law.predict(WSD, at)) and np.all(law.predict(WSD, at) <= hi)


def test_several_curves_fit_jointly_and_a_joint_fit_uses_its_linear_priors() -> None:
    cosine = {"kind": "cosine", "peak": 1e-3, "end": 1e-5, "warmup": 100, "total": 6000}
    steps = np.arange(200, 6000, 100)
    curves = [Curve(steps, GridLaw(TRUTH).predict(s, steps), schedule=Schedule.from_spec(s))
              for s in (WSD, cosine)]  # fmt: skip
    law = fit_law(curves, "grid")
    assert law.params["lam"] == pytest.approx(0.99)
    assert law.params["alpha"] == pytest.approx(0.4, rel=0.1)
    # fit_laws fits it by least squares like every law (C's prior is linear, as C is)
    groups = fit_laws({"a": curves}, "grid")
    pred = groups["a"].predict(WSD, steps)
    np.testing.assert_allclose(pred, curves[0].value, rtol=5e-3)


def test_forecast_law_reports_its_parameters() -> None:
    steps = np.arange(200, 3001, 20)
    curve = Curve(steps, GridLaw(TRUTH).predict(WSD, steps))
    f = runcast.forecast(curve, until=5999, schedule=WSD, method="law")
    assert f.info["law"] == "grid" and set(f.info["params"]) == set(TRUTH)
