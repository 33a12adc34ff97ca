"""Law: predict / forecast / save / load, the same checks across every law."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runcast import Schedule
from runcast.errors import InvalidInputError, RuncastWarning, ScheduleError
from runcast.forecast import Forecast
from runcast.forecast.laws import LAWS, Law, MomentumLaw, MultiPowerLaw, RuncastLaw
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
    return RuncastLaw(MPL_25M)


def test_every_law_is_registered() -> None:
    assert set(LAWS) == {"mpl", "momentum", "runcast"}


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
