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


def repeated(n: float, unique: float, epochs: float) -> tuple[np.ndarray, np.ndarray]:
    """Tokens and losses of a run on ``unique`` tokens for ``epochs`` (R* 15), whose loss turns
    up past 12 epochs (0.1 in log loss by 40)."""
    d = np.arange(1, 101) * unique * epochs / 100
    reps = np.maximum(d / unique - 1, 0)
    dprime = np.minimum(d, unique) * (1 + 15 * (1 - np.exp(-reps / 15)))
    rise = 0.1 * np.clip(np.log(d / unique / 12) / np.log(40 / 12), 0, None)
    return d, (1.8 + 480 / n**0.35 + 2000 / dprime**0.37) * np.exp(rise)


def test_reference_runs_that_overfit_do_not_bias_the_drift() -> None:
    runs = [(n, u, e) for n in (1e8, 3e8, 1e9) for u, e in ((2e10, 1.0), (5e8, 40.0))]
    curves, tps = [], []
    for n, u, e in runs:
        d, y = repeated(n, u, e)
        curves.append(Curve(np.arange(1, 101), y))
        tps.append(d[0])
    sizes, uniq = [r[0] for r in runs], [r[1] for r in runs]
    data = ScalingData.from_curves(curves, sizes, tps, uniq, drop_first=0.5)
    fixed = {"alpha": 0.35, "beta": 0.37}  # a quick fit: the drift is what is checked
    law = fit_scaling(data, form="auto", config=ScalingConfig(n_boot=0, fixed=fixed))
    ref = ScalingData.from_curves(curves, sizes, tps, uniq, drop_first=0.0)
    d, y = repeated(3e9, 5e8, 40.0)
    seen = Curve(np.arange(1, 21), y[:20])
    fc = predict_curve(law, 3e9, np.arange(1, 101), d[0], observed=seen, unique=5e8, reference=ref)
    # the turned runs' rise is the law's term, not a drift of every run's offset
    assert abs(fc.info["drift"]) < 0.005
    assert float(fc.final.median) == pytest.approx(y[-1], rel=0.01)
