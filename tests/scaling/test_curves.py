"""predict_curve: the law's curve for a larger model, and the posterior with its own start."""

from __future__ import annotations

import numpy as np
import pytest

from runcast import Curve
from runcast.errors import InvalidInputError
from runcast.scaling import (
    CurvePrior,
    ScalingConfig,
    ScalingData,
    ScalingLaw,
    fit_scaling,
    predict_curve,
)

TPS = 1e6
STEPS = np.arange(1000, 20001, 500)


def true_curve(n: float, steps: np.ndarray, bump: float = 0.0) -> np.ndarray:
    return (1.8 + 480 / n**0.35 + 2000 / (steps * TPS) ** 0.37) * np.exp(bump)


@pytest.fixture(scope="module")
def setup() -> tuple[ScalingLaw, ScalingData]:
    sizes = [1e8, 3e8, 1e9]
    curves = [Curve(STEPS, true_curve(n, STEPS)) for n in sizes]
    data = ScalingData.from_curves(curves, sizes, TPS, drop_first=0.1)
    law = fit_scaling(data, config=ScalingConfig(n_boot=20))
    ref = ScalingData.from_curves(curves, sizes, TPS, drop_first=0.0)
    return law, ref


def test_law_alone_is_the_law(setup: tuple[ScalingLaw, ScalingData]) -> None:
    law, _ = setup
    fc = predict_curve(law, 3e9, STEPS, TPS)
    assert fc.method == "scaling" and fc.steps.tolist() == STEPS.tolist()
    np.testing.assert_allclose(fc.median, true_curve(3e9, STEPS), rtol=0.01)
    lo, hi = fc.interval(0.8)
    assert (lo <= fc.median).all() and (fc.median <= hi).all()


def test_own_start_moves_the_curve(setup: tuple[ScalingLaw, ScalingData]) -> None:
    law, ref = setup
    seen = STEPS[STEPS <= 4000]
    # a larger model 3% worse than the law from its start to its end
    obs = Curve(seen, true_curve(3e9, seen, bump=0.03))
    alone = predict_curve(law, 3e9, STEPS, TPS)
    both = predict_curve(law, 3e9, STEPS, TPS, observed=obs, reference=ref)
    truth = true_curve(3e9, STEPS, bump=0.03)[-1]
    # the posterior moves toward what the run shows, and is closer to its end than the law
    assert abs(both.final.median - truth) < abs(alone.final.median - truth)
    assert both.info["n_observed"] == int((seen > 0.1 * STEPS[-1]).sum())
    assert both.info["early_offset"] == pytest.approx(0.03, abs=0.01)


def test_start_that_agrees_keeps_the_law(setup: tuple[ScalingLaw, ScalingData]) -> None:
    law, ref = setup
    seen = STEPS[STEPS <= 4000]
    obs = Curve(seen, true_curve(3e9, seen))
    both = predict_curve(law, 3e9, STEPS, TPS, observed=obs, reference=ref)
    assert both.final.median == pytest.approx(true_curve(3e9, STEPS)[-1], rel=0.01)


def test_bad_input(setup: tuple[ScalingLaw, ScalingData]) -> None:
    law, _ = setup
    with pytest.raises(InvalidInputError, match="steps"):
        predict_curve(law, 3e9, [0, 10], TPS)
    with pytest.raises(InvalidInputError, match="tokens_per_step"):
        predict_curve(law, 3e9, STEPS, 0.0)
    with pytest.raises(InvalidInputError, match="drop_first"):
        CurvePrior(drop_first=1.0)
