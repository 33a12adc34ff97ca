"""peer_forecast: a trial's final value from how completed trials of the sweep went on."""

from __future__ import annotations

import numpy as np
import pytest

from runcast.curve import Curve
from runcast.errors import InvalidInputError, NotEnoughDataError
from runcast.steer import PruneRule, peer_forecast

S = np.arange(10, 210, 10)


def _loss(floor: float, scale: float = 5.0) -> np.ndarray:
    return floor + scale / S


def test_peer_forecast_matches_hand_computation() -> None:
    peers = [Curve(S, _loss(0.5)), Curve(S, _loss(0.7))]
    trial = Curve(S[:5], _loss(0.6)[:5])
    f = peer_forecast(trial, 200, peers, window=3, scale_floor=0.1, n_paths=1001)
    # rho_j = log(final_j) - log(min of its last 3 points up to step 50) = log(final) - log(v50)
    rho = [np.log(_loss(fl)[-1]) - np.log(_loss(fl)[4]) for fl in (0.5, 0.7)]
    center = np.log(_loss(0.6)[4]) + np.mean(rho)
    assert f.final.median == pytest.approx(np.exp(center), rel=1e-6)  # the median is exact
    assert f.method == "peers" and f.info["n_peers"] == 2
    # the spread has its floor (two peers agree closely) inflated by 1 + 1/m
    assert f.info["sd"] == pytest.approx(np.sqrt(0.1**2 * 1.5 + 0.0), rel=0.05)
    assert np.all(f.samples > 0)  # a positive loss forecast on the log scale stays positive


def test_peer_forecast_level_ignores_a_spike() -> None:
    v = _loss(0.6).copy()
    v[4] = 10.0  # a spike at the current step
    peers = [Curve(S, _loss(0.5))]
    spiky = peer_forecast(Curve(S[:5], v[:5]), 200, peers, window=3)
    clean = peer_forecast(Curve(S[:5], _loss(0.6)[:5]), 200, peers, window=3)
    # the level is the best of the last 3 points: the spike moves the forecast only a little
    assert spiky.final.median == pytest.approx(clean.final.median, rel=0.3)
    assert spiky.final.median < 2.0


def test_peer_forecast_accuracy_direction() -> None:
    acc = [Curve(S, 0.9 - 1.0 / S), Curve(S, 0.8 - 1.0 / S)]
    f = peer_forecast(Curve(S[:4], 0.85 - 1.0 / S[:4]), 200, acc, direction="up")
    assert f.direction == "up" and f.info["log"] is False
    assert 0.8 < f.final.median < 0.9  # it gains what the peers gained from step 40


def test_peer_forecast_errors() -> None:
    late = [Curve(S[5:], _loss(0.5)[5:])]  # starts after the trial's current step
    with pytest.raises(NotEnoughDataError, match="step 30"):
        peer_forecast(Curve(S[:3], _loss(0.6)[:3]), 200, late)
    with pytest.raises(InvalidInputError):
        peer_forecast(Curve(S[:3], _loss(0.6)[:3]), 200, late, window=0)


def test_prune_rule_uses_peers_then_falls_back() -> None:
    rule = PruneRule(threshold=0.05, min_points=100)  # own-curve path effectively off
    peers = [Curve(S, _loss(0.5)), Curve(S, _loss(0.52))]
    best = min(p.value[-1] for p in peers)
    # a trial far above the peers at the same step: the peers say it cannot catch up
    d = rule.decide(S[:3], _loss(2.0)[:3], total_steps=200, best=best, n_completed=2, peers=peers)
    assert d.action == "prune" and d.numbers["p_beat"] < 0.05
    # a trial below the peers is kept
    d = rule.decide(S[:3], _loss(0.3)[:3], total_steps=200, best=best, n_completed=2, peers=peers)
    assert d.action == "continue" and d.numbers["p_beat"] > 0.9
    # no peer reported that early: the own-curve path decides (here: too few points)
    late = [Curve(S[5:], _loss(0.5)[5:])]
    d = rule.decide(S[:3], _loss(2.0)[:3], total_steps=200, best=best, n_completed=2, peers=late)
    assert "min_points" in d.reason
