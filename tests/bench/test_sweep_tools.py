"""The issue-14 analysis scripts' own logic: ASHA's choice at runcast's regret
(bench/sweep_hindsight.py), the offline replay and the lagging pruner
(bench/sweep_discrimination.py), on small hand-made sweeps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import sweep_discrimination as sd  # noqa: E402
import sweep_hindsight as sh  # noqa: E402
import sweep_pruning as sp  # noqa: E402


def sweep(values: list[list[float]], maximize: bool = False) -> sp.CSweep:
    v = np.asarray(values, dtype=float)
    n = v.shape[1]
    return sp.CSweep(
        "toy",
        v,
        np.arange(n) * 10 + 9,  # reports at steps 9, 19, ...: the budget is 10 * n steps
        maximize,
        tuple(None for _ in values),
        np.full(v.shape, 1e-3),
    )


def test_cheapest_asha_reaches_the_regret_on_the_orders_it_sees() -> None:
    R = sp.CReplay
    asha = {
        "cheap": [R(0.2, 0.05), R(0.2, 0.0)],  # mean regret 2.5%
        "dear": [R(0.6, 0.0), R(0.6, 0.0)],
    }
    assert sh.cheapest(0.0, asha, (0, 1)) == "dear"
    assert sh.cheapest(0.03, asha, (0, 1)) == "cheap"
    # chosen on the second order only, the cheap setting has no regret
    assert sh.cheapest(0.0, asha, (1,)) == "cheap"
    assert sh.cheapest(-1.0, asha, (0, 1)) is None
    assert sh.on(None, (0, 1)) == (1.0, [0.0, 0.0])  # no setting: no pruning


def test_offline_replay_stops_at_the_first_low_score_and_keeps_the_best() -> None:
    sw = sweep([[1.0, 0.8, 0.5], [1.0, 0.9, 0.7], [1.0, 0.6, 0.4], [1.0, np.nan, np.nan]])
    order = [0, 1, 2, 3]
    rows = [
        {"i": 1, "j": 1},
        {"i": 1, "j": 2},
        {"i": 2, "j": 1},
        {"i": 2, "j": 2},
    ]
    # trial 1 scored low at its 2nd report: it stops at step 19 (20 of 30 steps); trial 2
    # scored low only at its last one (it trained everything before it)
    score = [np.array([0.001, 0.5, 0.5, 0.001])]
    compute, regrets = sd.replay(sw, [order], [rows], score, 0.01)
    # trials 0: 30, 1: 20, 2: 30 (stopped at its last step 29), 3: NaN at its 2nd report: 20
    assert compute == pytest.approx((30 + 20 + 30 + 20) / 120)
    # trial 2, the sweep's best, was stopped, so the study keeps trial 0's 0.5
    assert regrets == [pytest.approx((0.5 - 0.4) / 0.4)]
    compute, regrets = sd.replay(sw, [order], [rows], score, 0.0001)
    assert compute == pytest.approx((30 + 30 + 30 + 20) / 120) and regrets == [0.0]


def test_features_are_free_of_the_metrics_units() -> None:
    values = [[1.0, 0.8, 0.5], [1.0, 0.9, 0.7], [1.0, 0.6, 0.4], [1.0, 0.95, 0.9]]
    r = {
        "i": 3,
        "j": 1,
        "p": 0.01,
        "bar": 0.5,
        "med": 0.85,
        "lo": 0.8,
        "hi": 0.9,
        "done": [0, 1, 2],
    }
    f = sd.features(sweep(values), r)
    scaled = {**r, "bar": 50.0, "med": 85.0, "lo": 80.0, "hi": 90.0}
    g = sd.features(sweep([[100 * x for x in v] for v in values]), scaled)
    assert f == pytest.approx(g)
    assert f[3] == 1.0  # behind every completed trial at its step


def test_lagging_pruner_stops_a_trailing_trial_that_forecasting_keeps() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rng = np.random.default_rng(0)
    t = np.arange(1, 21)
    good = [list(0.2 + 1 / t + 0.001 * rng.standard_normal(20)) for _ in range(4)]
    slow = list(0.25 + 2 / t)  # behind every completed trial, and still falling
    sw = sweep([*good, slow])
    order = [0, 1, 2, 3, 4]
    plain = sp.optuna_trained(lambda sw: sd.lagging_pruner(0.0, 1.0), sw, order, False)[0]
    lagging = sp.optuna_trained(lambda sw: sd.lagging_pruner(1.0, 0.5), sw, order, False)[0]
    assert plain[4] == sw.total  # p_beat below 0 never happens: only the forecast rule
    assert lagging[4] < sw.total  # behind half the completed trials at p_beat < 1: stopped
