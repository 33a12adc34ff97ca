"""Law: predict / forecast / save / load, the same checks across every law."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runcast import Schedule
from runcast.errors import FitError, InvalidInputError, RuncastWarning, ScheduleError
from runcast.forecast import Forecast
from runcast.forecast.laws import LAWS, GridLaw, Law, MomentumLaw, MultiPowerLaw, RuncastLaw
from runcast.forecast.laws._base import Param

MPL_25M = MultiPowerLaw.published("25M").params
MOM = {"L0": 3.04, "A": 0.52, "alpha": 0.51, "C": 1.6, "lam": 0.996}
SPEC = {"kind": "wsd", "peak": 3e-4, "end": 3e-5, "warmup": 2160, "total": 24000,
        "decay_start": 20000}  # fmt: skip


def make(name: str) -> Law:
    if name == "mpl":
        return MultiPowerLaw(MPL_25M)
    if name == "momentum":
        return MomentumLaw(MOM)
    if name == "grid":
        return GridLaw(MOM)
    return RuncastLaw(MPL_25M)


def test_every_law_is_registered() -> None:
    assert set(LAWS) == {"mpl", "momentum", "runcast", "grid"}


@pytest.mark.parametrize("name", sorted(LAWS))
def test_predict_is_order_free_and_accepts_spec_or_schedule(name: str) -> None:
    law = make(name)
    a = law.predict(SPEC, [23999, 3000, 12000])
    b = law.predict(Schedule.from_spec(SPEC), [3000, 12000, 23999])
    # same steps in another order give the same values, in the caller's order
    np.testing.assert_allclose(a, b[[2, 0, 1]])
    # a loss curve under WSD: falls during the stable phase, falls faster in the decay
    assert b[0] > b[1] > b[2]
    assert 3.0 < b[2] < 4.5


@pytest.mark.parametrize("name", sorted(LAWS))
def test_forecast_bands_hold_the_point_prediction(name: str) -> None:
    law = make(name)
    law.cov = np.eye(len(law.PARAMS)) * 1e-6
    steps = np.arange(3000, 24000, 3000)
    fc = law.forecast(SPEC, steps, n_paths=300, seed=1)
    assert isinstance(fc, Forecast) and fc.method == f"law:{name}"
    lo, hi = fc.interval(0.8)
    point = law.predict(SPEC, steps)
    # the 80% band brackets the point prediction and has the width of ~±1.28 model errors
    assert np.all(lo < point) and np.all(point < hi)
    width = (hi - lo) / point
    assert np.all(width > 2 * 1.0 * law.model_error) and np.all(width < 10 * law.model_error)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_forecast_widens_beyond_the_fitted_area(name: str) -> None:
    law = make(name)
    law.info["s1_max"] = 3.0  # as if fitted up to S1 = 3 (step ~11000 at 3e-4)
    fc = law.forecast({**SPEC, "decay_start": 24000}, [8000, 23999], n_paths=400)
    lo, hi = fc.interval(0.8)
    # extrapolating in forward area costs certainty: the band at 2x the area is wider
    assert (hi[1] - lo[1]) / fc.median[1] > 1.3 * (hi[0] - lo[0]) / fc.median[0]


@pytest.mark.parametrize("name", sorted(LAWS))
def test_save_and_load_round_trip(name: str, tmp_path: Path) -> None:
    law = make(name)
    law.cov = np.diag(np.linspace(1e-4, 1e-3, len(law.PARAMS)))
    law.info["note"] = "kept"
    back = Law.load(law.save(tmp_path / "law.json"))
    # the same class, parameters, covariance and metadata: predictions identical
    assert type(back) is type(law) and back.params == law.params
    np.testing.assert_array_equal(back.cov, law.cov)
    assert back.info["note"] == "kept"
    np.testing.assert_array_equal(back.predict(SPEC, [5000]), law.predict(SPEC, [5000]))


def test_bad_inputs_raise_with_the_fix(tmp_path: Path) -> None:
    law = make("mpl")
    with pytest.raises(ScheduleError, match="recorded schedule has 100 steps"):
        law.predict(Schedule.from_array(np.full(100, 1e-3)), [150])
    with pytest.raises(InvalidInputError, match="before any LR"):
        law.predict(SPEC, [0, 5000])
    with pytest.raises(InvalidInputError, match="negative"):
        law.predict(SPEC, [-5])
    with pytest.raises(InvalidInputError, match="missing"):
        MultiPowerLaw({"L0": 1.0})
    with pytest.raises(InvalidInputError, match=r"format 'runcast\.law'"):
        Law.from_dict({"law": "mpl"})
    with pytest.raises(InvalidInputError, match="Unknown law"):
        Law.from_dict({"format": "runcast.law", "law": "nope", "params": {}})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="not a JSON law"):
        Law.load(tmp_path / "bad.json")
    with pytest.raises(ScheduleError, match="spec dict"):
        law.predict("cosine", [10])  # type: ignore[arg-type]


def test_nonsense_predictions_warn() -> None:
    # a huge annealing gain drives the loss below zero once the LR decays: say so, loudly
    law = MultiPowerLaw({**MPL_25M, "B": 1e5})
    with pytest.warns(RuncastWarning, match="far outside what it was fitted on"):
        law.predict({**SPEC, "warmup": 0}, [23999])


@pytest.mark.parametrize(
    ("param", "x"),
    [(Param("a", 1e-3, 10.0), 2.5), (Param("g", 0.0, 1.0, "lin"), 0.3),
     (Param("lam", 0.5, 0.9999, "log1m"), 0.999)],
)  # fmt: skip
def test_param_transforms_round_trip(param: Param, x: float) -> None:
    z = param.to_z(x)
    assert param.from_z(z) == pytest.approx(x, rel=1e-12)
    h = 1e-6
    # dx/dz by finite differences: the chain rule of every fit uses it
    fd = (param.from_z(z + h) - param.from_z(z - h)) / (2 * h)
    assert param.dx_dz(x) == pytest.approx(fd, rel=1e-5)


def test_a_variant_inheriting_a_name_does_not_replace_the_registered_law() -> None:
    class Variant(MultiPowerLaw):  # a tweak of the law, e.g. an ensemble's member
        pass

    # protects: fit_law("mpl") and Law.from_dict still build the multi-power law itself
    assert LAWS["mpl"] is MultiPowerLaw
    assert Variant.name == "mpl"  # protects: the variant still reports the law it tweaks


@pytest.mark.parametrize("name", sorted(LAWS))
def test_forecast_refuses_a_loss_the_law_takes_below_zero(name: str) -> None:
    # found by fuzzing: predict() warned, but forecast() returned paths ending near -20 for a
    # positive loss (its fallback for bad sampled paths was the point fit, itself negative)
    big = {**MPL_25M, "B": 1e5} if name not in ("momentum", "grid") else {**MOM, "C": 1e3}
    law = type(make(name))(big)
    with pytest.raises(FitError, match=r"predicts a loss of -\d.* at step"):
        law.forecast({**SPEC, "warmup": 0}, [12000, 23999])


def test_forecast_samples_a_covariance_a_rounding_error_off_without_numpy_warnings() -> None:
    # found by fuzzing: a Laplace covariance with an eigenvalue of -1e-7 made numpy emit a
    # RuntimeWarning ("not symmetric positive-semidefinite") at the user on every forecast
    cov = np.diag([1e-4, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4, -1e-7])
    law = MultiPowerLaw(MPL_25M, cov=cov)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = law.forecast(SPEC, [23999], n_paths=64)
    lo, hi = f.final.interval(0.8)
    assert 3.0 < lo < hi < 3.7  # still a sound band around the point prediction (3.32)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"params": {**MPL_25M, "L0": -5.0}}, r"L0 must be > 0, but got -5\.0"),
        ({"params": {**MPL_25M, "alpha": 0.0}}, r"alpha must be > 0"),
        ({"params": {**MPL_25M, "B": "abc"}}, r"Parameter B must be a number, but got 'abc'"),
        ({"params": None}, r"takes its parameters as a dict"),
        ({"cov": [[float("nan")] * 7] * 7}, r"cov must be finite"),
        ({"cov": "x"}, r"cov must be a square matrix of numbers"),
        ({"noise": -1.0}, r"noise must be finite and >= 0, but got -1\.0"),
        ({"noise": "x"}, r"noise must be a number"),
        ({"model_error": float("inf")}, r"model_error must be finite"),
        ({"info": [1, 2]}, r"info must be a dict"),
    ],
)
def test_a_malformed_saved_law_is_an_invalid_input_error(
    change: dict[str, Any], match: str
) -> None:
    # found by fuzzing Law.from_dict: these were accepted and forecast nonsense (L0 = -5: a loss
    # of -3.6; noise = -1: a band from 1.4 to 14), or crashed in numpy (ValueError, TypeError,
    # LinAlgError on a NaN covariance)
    data = {**MultiPowerLaw.published("25M").to_dict(), **change}
    with pytest.raises(InvalidInputError, match=match):
        Law.from_dict(data)


def test_a_momentum_decay_outside_0_1_is_refused() -> None:
    # lam = 1.5 made the momentum area grow without bound: a predicted loss of -inf
    with pytest.raises(InvalidInputError, match=r"lam must be in \(0, 1\), but got 1\.5"):
        MomentumLaw({**MOM, "lam": 1.5})


def test_a_step_past_any_training_run_is_a_schedule_error() -> None:
    # found by fuzzing: step 1e12 asked numpy for a 7 TiB LR array (MemoryError)
    with pytest.raises(ScheduleError, match=r"past the 1e\+08 steps a law can evaluate"):
        make("mpl").predict(SPEC, [10**12])


def test_a_forecast_whose_draws_leave_the_fit_says_so(unpinned_law: Law) -> None:
    law = unpinned_law
    longer = {"kind": "cosine", "peak": 3e-3, "end": 3e-4, "warmup": 50, "total": 3000}
    with pytest.warns(RuncastWarning, match=r"median of \d+.* where the law predicts 1\.\d+"):
        fc = law.forecast(longer, [2999])
    # the draws put the median hundreds of times above the law's own prediction: said, and
    # marked, so that callers leave the interval out (the point prediction stands)
    assert fc.info["unpinned"] is True
    assert fc.final.median > 2 * float(law.predict(longer, [2999])[0])
    # a plan made with it keeps the law's point predictions and shows no interval
    from runcast.schedules import plan_schedule

    with pytest.warns(RuncastWarning, match="unpinned"):
        plan = plan_schedule(law, 3000, 3e-3, warmup=50, free_form=False)
    assert plan.final is None and plan.gain_samples is None and plan.prob_gain is None
    assert 1.0 < plan.loss < 2.0


def test_a_pinned_forecast_says_nothing() -> None:
    law = MultiPowerLaw(MPL_25M, cov=np.eye(7) * 1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fc = law.forecast(SPEC, [12000, 23999], n_paths=64)
    assert fc.info["unpinned"] is False
