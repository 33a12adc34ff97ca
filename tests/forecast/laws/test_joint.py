"""fit_laws: one law per group, fitted jointly with shared parameters; checked against the
per-group fit, a finite-difference Jacobian, a known truth and the real multi-size curves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from runcast import Curve, Schedule
from runcast.errors import InvalidInputError, NotEnoughDataError
from runcast.forecast.laws import (
    LAWS,
    Law,
    MomentumLaw,
    MultiPowerLaw,
    RuncastLaw,
    fit_law,
    fit_laws,
)
from runcast.forecast.laws._data import prepare_curves
from runcast.forecast.laws._joint import DEFAULT_SHARED, Layout, _joint_problem, centred

COSINE = {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 500, "total": 12000}
CONSTANT = {"kind": "constant", "peak": 3e-4, "warmup": 500, "total": 12000}
TWO_STAGE = {"kind": "two_stage", "peak": 3e-4, "second": 9e-5, "switch": 5000, "warmup": 500,
             "total": 9000}  # fmt: skip
WSD = {"kind": "wsd", "peak": 3e-4, "end": 3e-5, "warmup": 500, "total": 12000,
       "decay_start": 10000}  # fmt: skip
SPECS = (COSINE, CONSTANT, TWO_STAGE)


def truths() -> dict[str, MultiPowerLaw]:
    """Two sizes' published laws with one LR-response shape (25M's C, beta, gamma)."""
    small = MultiPowerLaw.published("25M").params
    big = dict(MultiPowerLaw.published("400M").params)
    big.update({k: small[k] for k in ("C", "beta", "gamma")})
    return {"small": MultiPowerLaw(small), "big": MultiPowerLaw(big)}


def synth(law: Law, spec: dict[str, Any], noise: float = 0.0, seed: int = 0) -> Curve:
    steps = np.arange(500, spec["total"], 100)
    values = law.predict(spec, steps)
    values = values * np.exp(noise * np.random.default_rng(seed).standard_normal(values.size))
    return Curve(steps, values, schedule=Schedule.from_spec(spec), name=spec["kind"])


def groups_of(noise: float = 0.0) -> dict[str, list[Curve]]:
    return {
        name: [synth(law, s, noise, i + 10 * g) for i, s in enumerate(SPECS)]
        for g, (name, law) in enumerate(truths().items())
    }


@pytest.mark.parametrize("law", [MultiPowerLaw, MomentumLaw])
def test_layout_gives_shared_parameters_one_slot(law: type[Law]) -> None:
    shared = DEFAULT_SHARED[law.name]
    lay = Layout.build(law, 3, shared)
    k, s = len(law.PARAMS), len(shared)
    # every group has all k parameters; shared ones sit in the same slot for every group
    assert lay.size == s + 3 * (k - s)
    assert all(len(set(row)) == k for row in lay.index)
    names = [p.name for p in law.PARAMS]
    for j, n in enumerate(names):
        slots = {row[j] for row in lay.index}
        assert len(slots) == (1 if n in shared else 3)


def test_joint_jacobian_matches_finite_differences() -> None:
    groups = groups_of(1e-3)
    data = [prepare_curves(g, max_points=64, min_step=None) for g in groups.values()]
    law = MultiPowerLaw
    lay = Layout.build(law, 2, ("C", "beta", "gamma"))
    fun, jac, _ = _joint_problem(law, data, lay, 1e-3, 1.0)
    rng = np.random.default_rng(0)
    z = np.empty(lay.size)
    for g, truth in enumerate(truths().values()):
        for j, p in enumerate(law.PARAMS):
            z[lay.index[g][j]] = p.to_z(truth.params[p.name]) + 0.05 * rng.standard_normal()
    analytic = jac(z)
    numeric = np.empty_like(analytic)
    for i in range(lay.size):
        # the drop terms are float32 (see DropTerms): a step this large keeps their rounding
        # (~1e-9 of the loss) out of the difference quotient
        h = 1e-3 * max(1.0, abs(z[i]))
        up, down = z.copy(), z.copy()
        up[i] += h
        down[i] -= h
        numeric[:, i] = (fun(up) - fun(down)) / (2 * h)
    # the hand-assembled joint Jacobian (shared columns summed over groups) is the true one
    np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-6)


def test_one_group_is_fit_law() -> None:
    curves = groups_of(5e-4)["small"]
    joint = fit_laws({"only": curves}, "mpl", calibrate=False)["only"]
    plain = fit_law(curves, "mpl", calibrate=False)
    # with a single group nothing is shared across groups: the same problem, the same optimum
    np.testing.assert_allclose(joint.theta, plain.theta, rtol=1e-4)


@pytest.mark.parametrize("pooling", ["shared", "prior"])
def test_recovers_a_shared_shape_and_transfers(pooling: str) -> None:
    groups = groups_of(5e-4)
    laws = fit_laws(groups, "mpl", pooling=pooling)
    true = truths()
    if pooling == "shared":
        # the shared parameters are one value for both groups
        for k in ("C", "beta", "gamma"):
            assert laws["small"].params[k] == laws["big"].params[k]
    else:
        # each group's prior sits where the other group's fit put the parameter
        centre = laws["big"].info["prior_centres"]["gamma"]
        assert centre == pytest.approx(fit_law(groups["small"], "mpl").params["gamma"])
    # either way, close to the truth both groups were made from
    assert abs(laws["big"].params["gamma"] - true["big"].params["gamma"]) < 0.1
    steps = np.arange(600, 12000, 500)
    for name, law in laws.items():
        err = np.abs(law.predict(WSD, steps) / true[name].predict(WSD, steps) - 1)
        # an unseen schedule, per group, under 0.05% noise: within 0.2% everywhere
        assert err.max() < 2e-3
        # leave-one-out over curve positions calibrated each group: three held-out errors
        assert len(law.info["held_out_rms"]) == 3 and 0 < law.model_error < 1e-2
        assert law.info["group"] == name and law.info["shared"] == ["C", "beta", "gamma"]
        assert type(law) is MultiPowerLaw  # a public law, whatever variant fitted it


@pytest.mark.parametrize("name", ["auto", "mpl", "momentum"])
@pytest.mark.parametrize("pooling", ["shared", "prior"])
def test_each_law_forecasts_and_round_trips(name: str, pooling: str) -> None:
    laws = fit_laws(groups_of(5e-4), name, pooling=pooling, calibrate=False)
    law = laws["big"]
    # each group gets the public law it asked for (auto is runcast's law)
    assert law.name == ("runcast" if name == "auto" else name) and type(law).__name__ in (
        "RuncastLaw",
        "MultiPowerLaw",
        "MomentumLaw",
    )
    fc = law.forecast(WSD, [6000, 11999], n_paths=200)
    lo, hi = fc.final.interval(0.8)
    # the marginal covariance from the joint fit gives a real, non-degenerate band
    assert lo < fc.final.median < hi and hi - lo > 1e-4
    back = Law.from_dict(law.to_dict())
    assert back.params == law.params and back.info["groups"] == ["small", "big"]
    assert back.info["pooling"] == pooling


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"law": "nope"}, "Unknown law"),
        ({"shared": ("C", "delta")}, "not parameters"),
        ({"huber_delta": 0.0}, "huber_delta"),
        ({"pooling": "mean"}, "pooling"),
    ],
)
def test_bad_arguments_say_what_to_do(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        fit_laws(groups_of(), **kwargs)


def test_centred_moves_only_the_prior_means() -> None:
    var = centred(RuncastLaw, {"C": 3.0, "gamma": 0.4})
    base = {p.name: p for p in RuncastLaw.PARAMS}
    for p in var.PARAMS:
        old = base[p.name].prior
        if p.name in ("C", "gamma"):
            # the mean moves to the given value (in fitting space), the width stays
            assert old is not None
            assert p.prior == (p.to_z({"C": 3.0, "gamma": 0.4}[p.name]), old[1])
        else:
            assert p.prior == old
    # the variant is not a public law: the registry still maps "runcast" to RuncastLaw
    assert LAWS["runcast"] is RuncastLaw and var.PRIOR_SCALE == RuncastLaw.PRIOR_SCALE


def test_bad_groups() -> None:
    with pytest.raises(InvalidInputError, match="dict of group name"):
        fit_laws({})
    tiny = synth(truths()["small"], COSINE).until(900)
    with pytest.raises(NotEnoughDataError, match="'tiny'"):
        fit_laws({"tiny": tiny, "ok": groups_of()["big"]})


def mean_error(law: Law, curve: Curve) -> float:
    assert curve.schedule is not None
    return float(np.mean(np.abs(law.predict(curve.schedule, curve.step) / curve.value - 1)))


@pytest.mark.slow
def test_pooling_sizes_helps_the_selection_cv(mpl_fit_curves: Any) -> None:
    sizes = {s: mpl_fit_curves(s) for s in ("25M", "100M", "400M")}
    errs: dict[str, dict[str, list[float]]] = {
        k: {"loco": [], "horizon": []} for k in ("pooled", "per size")
    }
    for i in range(3):
        rest = {s: [c for j, c in enumerate(cs) if j != i] for s, cs in sizes.items()}
        pooled = fit_laws(rest, calibrate=False)
        for s, cs in sizes.items():
            alone = fit_law(rest[s], calibrate=False)
            errs["pooled"]["loco"].append(mean_error(pooled[s], cs[i]))
            errs["per size"]["loco"].append(mean_error(alone, cs[i]))
    cut = {s: [c.until(11999) for c in cs] for s, cs in sizes.items()}
    pooled = fit_laws(cut, calibrate=False)
    for s, cs in sizes.items():
        alone = fit_law(cut[s], calibrate=False)
        for c in cs:
            later = c.step >= 12000
            tail = Curve(c.step[later], c.value[later], schedule=c.schedule)
            errs["pooled"]["horizon"].append(mean_error(pooled[s], tail))
            errs["per size"]["horizon"].append(mean_error(alone, tail))
    mean = {k: {t: float(np.mean(v)) for t, v in d.items()} for k, d in errs.items()}
    # the selection result behind fit_laws' default (pooling="prior"): leave-one-curve-out
    # 0.00104 vs 0.00105 (no worse), from step 12000 on 0.00080 vs 0.00087 (better)
    assert mean["pooled"]["loco"] < 1.01 * mean["per size"]["loco"]
    assert mean["pooled"]["horizon"] < 0.95 * mean["per size"]["horizon"]
