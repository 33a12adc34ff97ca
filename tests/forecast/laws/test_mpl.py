"""The multi-power law: the paper's published parameters reproduce its benchmark numbers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from runcast import Schedule
from runcast.errors import InvalidInputError
from runcast.forecast.laws import MultiPowerLaw
from runcast.forecast.laws._areas import loss_drop_reference
from runcast.forecast.laws._mpl import power_descent, power_starts

PREDICT = ("constant_72000", "cosine_72000", "wsd_20000_24000", "wsdld_20000_24000",
           "wsdcon_3", "wsdcon_18")  # fmt: skip


def test_prediction_matches_the_plain_formula() -> None:
    law = MultiPowerLaw.published("100M")
    p = law.params
    spec = {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 2160, "total": 24000}
    lrs = Schedule.from_spec(spec).array()
    steps = np.array([2500, 12000, 23999])
    s1 = np.cumsum(lrs)[steps]
    ld = loss_drop_reference(lrs, steps, p["C"], p["beta"], p["gamma"])
    plain = p["L0"] + p["A"] * s1 ** (-p["alpha"]) - p["B"] * ld
    # L0 + A S1^-alpha - B LD, written out plainly (the paper's formula), to 1e-6 of the loss
    np.testing.assert_allclose(law.predict(spec, steps), plain, rtol=1e-6)


@pytest.mark.parametrize(("size", "pred_e"), [("25M", 0.00110), ("100M", 0.00142),
                                              ("400M", 0.00168)])  # fmt: skip
def test_published_parameters_reproduce_published_pred_e(
    size: str, pred_e: float, mpl_curves: Any
) -> None:
    errs = []
    for name, curve in mpl_curves(size).items():
        if name not in PREDICT:
            continue
        assert curve.schedule is not None
        pred = MultiPowerLaw.published(size).predict(curve.schedule, curve.step)
        errs.append(np.mean(np.abs(curve.value - pred) / curve.value))
    assert len(errs) == 6
    # the repository's README figures: our law is the paper's law, to the 5th decimal
    assert np.mean(errs) == pytest.approx(pred_e, abs=6e-6)


def test_published_rejects_unknown_sizes() -> None:
    with pytest.raises(InvalidInputError, match="25M, 100M, 400M"):
        MultiPowerLaw.published("7B")


def test_published_table_is_json_ready() -> None:
    law = MultiPowerLaw.published("400M")
    # published parameters survive a JSON round trip untouched
    assert json.loads(json.dumps(law.to_dict()))["params"] == law.params


@pytest.mark.parametrize("theta", [(2.0, 0.5, 0.5), (3.1, 4.0, 1.2), (0.5, 0.01, 0.05)])
def test_power_descent_jacobian_matches_finite_differences(
    theta: tuple[float, float, float],
) -> None:
    log_s1 = np.log(np.array([0.05, 1.0, 7.5, 40.0]))

    def value_at(t: list[float]) -> Any:
        return power_descent(t[0], t[1], t[2], log_s1, grad=False)[0]

    l0, a, alpha = theta
    value, jac = power_descent(l0, a, alpha, log_s1, grad=True)
    # the shared descent is exactly L0 + A * S1^-alpha (both annealing laws add to it)
    assert value == pytest.approx(l0 + a * np.exp(log_s1) ** -alpha, rel=1e-12)
    assert jac is not None
    for i in range(3):
        up, down = list(theta), list(theta)
        up[i] += 1e-6
        down[i] -= 1e-6
        fd = (value_at(up) - value_at(down)) / 2e-6
        # a wrong column would send the fitter's Gauss-Newton steps the wrong way
        assert jac[:, i] == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_power_starts_meet_the_first_loss() -> None:
    losses = np.array([4.0, 3.0, 2.5])
    s1 = np.array([0.5, 2.0, 8.0])
    starts, spread = power_starts(losses, s1, ((0.4, 0.5), (0.9, 0.7)))
    assert spread == pytest.approx(1.5)  # max - min of the losses
    for p, alpha in zip(starts, (0.5, 0.7), strict=True):
        assert p["alpha"] == alpha
        # L0 sits below the lowest loss and the descent passes through the first point
        assert p["L0"] < 2.5
        assert p["L0"] + p["A"] * 0.5**-alpha == pytest.approx(4.0)
