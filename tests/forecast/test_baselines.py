from __future__ import annotations

import numpy as np
import pytest

from runcast import Curve
from runcast.forecast._baselines import fit_last, fit_powerlaw
from runcast.forecast._mcmc import fit_mcmc
from runcast.forecast._prep import prepare

S = np.arange(100, 3001, 50)
TRUTH = 2.0 + 5.0 * (S / 100.0) ** -0.6
FINAL = 2.0 + 5.0 * 100.0**-0.6


def _final(raw) -> float:  # type: ignore[no-untyped-def]
    return float(raw.prep.to_values(np.median(raw.paths, axis=0))[-1])


def test_last_is_flat_at_the_last_value() -> None:
    raw = fit_last(prepare(Curve(S, TRUTH), 10_000))
    # the mean of the last 5% of points, held flat
    assert _final(raw) == pytest.approx(TRUTH[-3:].mean(), rel=1e-3)


def test_powerlaw_recovers_an_exact_power_law() -> None:
    raw = fit_powerlaw(prepare(Curve(S, TRUTH), 10_000), n_paths=100)
    assert _final(raw) == pytest.approx(FINAL, rel=1e-3)


@pytest.mark.slow
def test_mcmc_lands_near_the_truth() -> None:
    pytest.importorskip("emcee")
    raw = fit_mcmc(prepare(Curve(S, TRUTH), 10_000), n_paths=100, n_steps=150)
    # short chains from the grid posterior's mode: within 3%
    assert _final(raw) == pytest.approx(FINAL, rel=0.03)
    assert raw.info["n_steps"] == 150
