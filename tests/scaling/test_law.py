"""fit_scaling and ScalingLaw: parameters, predictions with intervals, compute-optimal sizes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from runcast import Curve
from runcast.errors import InvalidInputError, NotEnoughDataError
from runcast.scaling import FORMS, ScalingConfig, ScalingData, ScalingLaw, fit_scaling
from runcast.scaling._law import optimal_numeric

TRUE = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37}


def law_loss(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    return TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]


@pytest.fixture(scope="module")
def law() -> ScalingLaw:
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(5e7, 1e9, 5), 5)
    d = np.tile(np.geomspace(1e9, 5e10, 5), 5)
    loss = law_loss(n, d) * np.exp(0.003 * rng.standard_normal(n.size))
    group = np.repeat(np.arange(5), 5)
    data = ScalingData.from_arrays(n, d, loss, group=group)
    return fit_scaling(data, config=ScalingConfig(n_boot=40))


def test_params_and_intervals(law: ScalingLaw) -> None:
    assert set(law.params) == {"E", "A", "B", "alpha", "beta"}
    iv = law.param_intervals(0.8)
    for k in ("alpha", "beta"):
        assert iv[k][0] < law.params[k] < iv[k][1]
        assert law.params[k] == pytest.approx(TRUE[k], abs=0.04)
    assert law.info["n_sizes"] == 5 and law.info["backtest_log_error"] is not None


def test_predict_holds_the_truth_and_widens_beyond_the_data(law: ScalingLaw) -> None:
    n = np.array([5e8, 4e9, 3e10])
    pred = law.predict(n, 2e10)
    lo, hi = pred.interval(0.8)
    truth = law_loss(n, np.full(3, 2e10))
    assert ((lo <= truth) & (truth <= hi)).all()
    width = (hi - lo) / pred.median
    # inside the fitted sizes the law's own spread; beyond them the extrapolation spread grows
    assert width[0] < width[1] < width[2]
    assert law.extrapolation_sd(np.array([1e8]))[0] == 0.0


def test_optimal_closed_form_matches_numeric(law: ScalingLaw) -> None:
    c = np.array([1e19, 1e21, 1e23])
    a = law.optimal(c)
    # the closed form (Hoffmann et al. eq. 4) is the minimum found on a fine grid of N
    np.testing.assert_allclose(a.n, optimal_numeric(law, law.theta, c, None), rtol=2e-3)
    np.testing.assert_allclose(6 * a.n * a.d, c, rtol=1e-12)
    assert (a.n_interval[0] <= a.n).all() and (a.n <= a.n_interval[1]).all()
    # the loss at the optimum is the lowest along the iso-FLOP line
    for scale in (0.5, 2.0):
        n2 = a.n * scale
        assert (law.predict(n2, c / (6 * n2), draws=1).point > a.loss).all()


def test_epoch_allocation_at_chinchilla_budget() -> None:
    form = FORMS["chinchilla"]
    theta = form.to_theta({"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658})
    law = ScalingLaw(form, theta, np.empty((0, 5)), 0.0, 1e9, 1.0)
    a = law.optimal(5.76e23)
    # about 20 tokens per parameter, as Besiroglu et al. report for their refit
    assert 15 < a.d[0] / a.n[0] < 22


def test_data_constrained_recovers_the_half_life() -> None:
    n = np.repeat(np.geomspace(1e8, 2e9, 4), 12)
    unique = np.tile(np.repeat([2e9, 8e9, 3e10], 4), 4)
    d = np.tile(np.geomspace(2e9, 2e11, 4), 12)
    rstar = 15.0
    seen = np.minimum(d, unique)  # Muennighoff et al.: U_D = min(D, unique tokens)
    reps = d / seen - 1
    dprime = seen * (1 + rstar * (1 - np.exp(-reps / rstar)))
    loss = 1.8 + 480 / n**0.35 + 2000 / dprime**0.37
    law = fit_scaling(n, d, loss, form="auto", unique=unique, config=ScalingConfig(n_boot=0))
    assert law.form.name == "data_constrained"
    assert law.params["R_star"] == pytest.approx(rstar, rel=0.05)
    # repeating a small data set is predicted worse than fresh data of the same size
    fresh = law.predict(1e9, 1e11, unique=1e11).median[0]
    repeated = law.predict(1e9, 1e11, unique=5e9).median[0]
    assert repeated > fresh + 0.01
    # with little unique data, the compute-optimal model is bigger and sees fewer tokens
    # (Muennighoff et al.: spend compute on parameters rather than on more epochs)
    free = law.optimal(1e21)
    scarce = law.optimal(1e21, unique=2e9)
    assert scarce.n[0] > 1.2 * free.n[0] and scarce.loss[0] > free.loss[0]


def test_save_and_load(law: ScalingLaw, tmp_path: Path) -> None:
    back = ScalingLaw.load(law.save(tmp_path / "law.json"))
    assert back.params == pytest.approx(law.params)
    np.testing.assert_allclose(back.predict(2e9, 4e10).median, law.predict(2e9, 4e10).median)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InvalidInputError, match="not a saved scaling law"):
        ScalingLaw.load(tmp_path / "bad.json")


def test_inflation_scales_the_extrapolation(law: ScalingLaw) -> None:
    wide = dataclasses.replace(law, ext_sd=law.ext_sd * 3)
    w1 = np.subtract(*law.predict(1e10, 1e11).interval(0.8)[::-1])
    w3 = np.subtract(*wide.predict(1e10, 1e11).interval(0.8)[::-1])
    assert w3[0] > 2 * w1[0]


@pytest.mark.parametrize(
    ("kwargs", "err", "msg"),
    [
        (
            {"n": [1e8] * 8, "d": np.geomspace(1e9, 1e10, 8), "loss": [3.0] * 8},
            NotEnoughDataError,
            "at least 2 model sizes",
        ),
        ({"n": [1e8, 2e8], "d": [1e9, 1e9], "loss": [3.0, 2.9]}, NotEnoughDataError, "needs at"),
        (
            {"n": [1e8, 2e8], "d": [1e9, 1e9], "loss": [3.0, 2.9], "form": "kaplan"},
            InvalidInputError,
            "Unknown form",
        ),
    ],
)
def test_bad_input(kwargs: dict[str, object], err: type[Exception], msg: str) -> None:
    with pytest.raises(err, match=msg):
        fit_scaling(**kwargs)  # type: ignore[arg-type]


def test_bad_predict_input(law: ScalingLaw) -> None:
    with pytest.raises(InvalidInputError, match="N must be positive"):
        law.predict(-1.0, 1e9)
    with pytest.raises(InvalidInputError, match="level"):
        law.optimal(1e20, level=1.5)
    with pytest.raises(InvalidInputError, match="n_boot"):
        ScalingConfig(n_boot=-1)


def test_fixed_exponents_fit_only_the_scale_terms() -> None:
    # three sizes, one token count each: E, A and alpha cannot all be told apart from three
    # final losses, but with the exponents taken from elsewhere (the Hitchhiker's guide's
    # advice for a new family with few models) E, A and B are recovered
    n = np.repeat([1e8, 3e8, 1e9], 2)
    d = np.tile([5e9, 2e10], 3)
    fixed = {"alpha": TRUE["alpha"], "beta": TRUE["beta"]}
    law = fit_scaling(n, d, law_loss(n, d), config=ScalingConfig(n_boot=10, fixed=fixed))
    assert law.params["alpha"] == TRUE["alpha"] and law.params["beta"] == TRUE["beta"]
    for k in ("E", "A", "B"):
        assert law.params[k] == pytest.approx(TRUE[k], rel=1e-3)
    # every bootstrap refit keeps the fixed values
    iv = law.param_intervals(0.8)
    assert iv["alpha"] == (TRUE["alpha"], TRUE["alpha"])
    assert law.info["fixed"] == fixed
    # a 10x larger model is then predicted from the law's own terms
    big = law.predict(1e10, 2e10, draws=1).point[0]
    assert big == pytest.approx(law_loss(np.array([1e10]), np.array([2e10]))[0], rel=1e-3)


def test_fixed_parameters_lower_the_points_needed() -> None:
    n, d = [1e8, 1e8, 4e8, 4e8], [1e9, 4e9, 1e9, 4e9]
    loss = law_loss(np.array(n), np.array(d))
    with pytest.raises(NotEnoughDataError, match="5 free parameters"):
        fit_scaling(n, d, loss, config=ScalingConfig(n_boot=0))
    law = fit_scaling(
        n, d, loss, config=ScalingConfig(n_boot=0, fixed={"alpha": 0.35, "beta": 0.37})
    )
    assert law.params["E"] == pytest.approx(TRUE["E"], rel=1e-3)


@pytest.mark.parametrize(
    ("fixed", "msg"),
    [
        ({"gamma": 0.3}, "no parameter 'gamma'.*E, A, B, alpha, beta"),
        ({"R_star": 15.0}, "no parameter 'R_star'"),
        ({"alpha": -0.2}, "fixed alpha must be an exponent in"),
        ({"E": 0.0}, "fixed E must be a positive number"),
    ],
)
def test_bad_fixed(fixed: dict[str, float], msg: str) -> None:
    n = np.repeat([1e8, 3e8, 1e9], 2)
    d = np.tile([5e9, 2e10], 3)
    with pytest.raises(InvalidInputError, match=msg):
        fit_scaling(n, d, law_loss(n, d), config=ScalingConfig(n_boot=0, fixed=fixed))
    with pytest.raises(InvalidInputError, match="fixed must map"):
        ScalingConfig(fixed=[("alpha", 0.3)])  # type: ignore[arg-type]


def _repeated_curve(n: float, unique: float, epochs: float) -> tuple[Curve, float]:
    """A data-constrained curve (R* 15) whose loss turns up past 12 epochs (0.1 in log loss
    by 40), 100 checkpoints of ``unique * epochs / 100`` tokens each."""
    tps = unique * epochs / 100
    d = np.arange(1, 101) * tps
    reps = np.maximum(d / unique - 1, 0)
    dprime = np.minimum(d, unique) * (1 + 15 * (1 - np.exp(-reps / 15)))
    rise = 0.1 * np.clip(np.log(d / unique / 12) / np.log(40 / 12), 0, None)
    loss = (1.8 + 480 / n**0.35 + 2000 / dprime**0.37) * np.exp(rise)
    return Curve(np.arange(1, 101), loss), tps


def test_a_turned_run_is_its_running_minimum_and_its_rise_a_term() -> None:
    runs = [
        (n, u, e)
        for n in np.geomspace(1e8, 1e9, 3)
        for u, e in ((2e10, 1.0), (5e9, 4.0), (2e9, 10.0), (5e8, 40.0))
    ]
    made = [_repeated_curve(n, u, e) for n, u, e in runs]
    data = ScalingData.from_curves(
        [c for c, _ in made],
        [r[0] for r in runs],
        [t for _, t in made],
        [r[1] for r in runs],
        drop_first=0.5,
    )
    # each 40-epoch run's rise above its lowest is recorded; the others did not turn
    long = [c for (c, _), r in zip(made, runs, strict=True) if r[2] > 30]
    rises = [float(np.log(c.value[-1] / c.value.min())) for c in long]
    assert [r for e, r in data.turns if e > 30] == pytest.approx(rises)
    assert min(rises) > 0.06 and all(r == 0.0 for e, r in data.turns if e < 30)
    law = fit_scaling(data, form="auto", config=ScalingConfig(n_boot=0))
    assert law.overfit[-1].tolist() == pytest.approx([40.0, np.mean(rises)])
    # a larger model at 40 epochs: the law's minimum plus the rise its smaller twins showed
    curve, tps = _repeated_curve(3e9, 5e8, 40.0)
    truth = float(curve.value[-1])
    pred = float(law.predict(3e9, 100 * tps, unique=5e8).point[0])
    plain = dataclasses.replace(law, overfit=np.empty((0, 2)))
    without = float(plain.predict(3e9, 100 * tps, unique=5e8).point[0])
    assert pred == pytest.approx(truth, rel=0.01)
    assert abs(without / truth - 1) > 0.05
    # fresh data (no repetition) and a saved law are unchanged by the term
    assert law.predict(3e9, 1e10).point[0] == pytest.approx(plain.predict(3e9, 1e10).point[0])
    back = ScalingLaw.from_dict(law.to_dict())
    np.testing.assert_allclose(back.overfit, law.overfit)
