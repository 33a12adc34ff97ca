"""peer_forecast: a trial's final value from how completed trials of the sweep went on."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from runcast.curve import Curve
from runcast.errors import InvalidInputError, NotEnoughDataError
from runcast.schedules import Schedule
from runcast.steer import PruneRule, analog_forecast, peer_forecast

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


@pytest.mark.parametrize("method", ["analog", "shift"])
def test_prune_rule_uses_peers_then_falls_back(method: str) -> None:
    # own-curve path effectively off
    rule = PruneRule(threshold=0.05, min_points=100, peer_method=method)  # type: ignore[arg-type]
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


# --- analog_forecast ------------------------------------------------------------------------
G = np.arange(10, 410, 10)  # report steps 10..400


def _decay(level: float, rate: float) -> np.ndarray:
    # a loss that falls by the factor `rate` every 100 steps, level at step 0
    return level * rate ** (G / 100.0)


def test_analog_follows_donors_exactly_when_they_agree() -> None:
    donors = [(Curve(G, _decay(1.0, 0.5)), True), (Curve(G, _decay(2.0, 0.5)), True)]
    f = analog_forecast(Curve(G[:5], _decay(1.5, 0.5)[:5]), 400, donors, window=1, state_spread=0.0)
    # every donor halves its loss per 100 steps, so every path does: 1.5 * 0.5**4 at step 400
    assert np.allclose(f.samples, 1.5 * 0.5**4)
    assert f.method == "analog" and f.info["segments"] == 3  # 50 -> 100 -> 200 -> 400


def test_analog_uses_stopped_trials_for_the_steps_they_reached() -> None:
    done = (Curve(G, _decay(8.0, 0.5)), True)  # far from the trial: level 8 vs 1
    # stopped at step 100, in the trial's state: it fell by 0.9 per 100 steps
    stopped = (Curve(G[:10], _decay(1.0, 0.9)[:10]), False)
    trial = Curve(G[:5], _decay(1.0, 0.9)[:5])
    f = analog_forecast(trial, 400, [done, stopped], window=1, mix=0.0, state_spread=0.0)
    # 50 -> 100 follows the stopped trial (x 0.9**0.5); 100 -> 400 only the completed one can
    # say (x 0.5**3): the median path is the product
    expect = float(trial.value[-1]) * 0.9**0.5 * 0.5**3
    assert f.final.median == pytest.approx(expect, rel=1e-9)
    only_done = analog_forecast(trial, 400, [done], window=1, mix=0.0, state_spread=0.0)
    assert only_done.final.median == pytest.approx(float(trial.value[-1]) * 0.5**3.5)


def _spec(kind: str) -> Schedule:
    extra = {"end": 0.0, "decay_start": 200, "decay_shape": "linear"} if kind == "wsd" else {}
    return Schedule.from_spec({"kind": kind, "peak": 0.1, "total": 400, **extra})


@pytest.mark.parametrize(("kind", "rate"), [("constant", 0.8), ("wsd", 0.4)])
def test_analog_prefers_donors_with_the_trials_schedule(kind: str, rate: float) -> None:
    # two completed trials in the same state until step 200; the one whose LR cools down from
    # there (wsd) went on falling faster. Only the schedule tells which one the trial follows.
    same = _decay(1.0, 0.9)
    const = np.where(G <= 200, same, same[19] * 0.8 ** ((G - 200) / 100.0))
    wsd = np.where(G <= 200, same, same[19] * 0.4 ** ((G - 200) / 100.0))
    donors = [(Curve(G, const), True), (Curve(G, wsd), True)]
    schedules = [_spec("constant"), _spec("wsd")]
    trial = Curve(G[:20], same[:20])
    f = analog_forecast(trial, 400, donors, schedule=_spec(kind), donor_schedules=schedules)
    # the median path follows the donor whose LR schedule matches the trial's
    assert f.final.median == pytest.approx(same[19] * rate**2, rel=1e-6)
    blind = analog_forecast(trial, 400, donors)
    # without schedules both donors are equally close: half the paths follow each
    assert 0.35 < float(np.mean(blind.samples[:, 0] < same[19] * 0.6**2)) < 0.65


def test_analog_widens_when_no_donor_shares_the_schedule() -> None:
    donors = [(Curve(G, _decay(1.0, 0.5)), True), (Curve(G, _decay(1.1, 0.5)), True)]
    trial = Curve(G[:10], _decay(1.05, 0.5)[:10])
    matched = analog_forecast(
        trial, 400, donors, schedule=_spec("wsd"), donor_schedules=[_spec("wsd")] * 2
    )
    other = analog_forecast(
        trial, 400, donors, schedule=_spec("wsd"), donor_schedules=[_spec("constant")] * 2
    )
    lo, hi = matched.final.interval(0.8)
    lo2, hi2 = other.final.interval(0.8)
    # the donors' LRs differ from the trial's: weaker evidence, a wider forecast (same centre)
    assert hi2 / lo2 > 1.2 * (hi / lo)
    assert other.final.median == pytest.approx(matched.final.median, rel=0.1)


def test_analog_smoothing_and_min_donors() -> None:
    donors = [(Curve(G, _decay(1.0, r)), True) for r in (0.4, 0.5, 0.6)]
    trial = Curve(G[:5], _decay(1.0, 0.5)[:5])
    raw = analog_forecast(trial, 400, donors, window=1, bandwidth=10.0, state_spread=0.0)
    kde = analog_forecast(
        trial, 400, donors, window=1, bandwidth=10.0, smooth=1.0, state_spread=0.0
    )
    # raw: each of the 3 segments borrows one of 3 donors' changes, 27 paths at most;
    # smoothed: the changes are drawn from a density around them
    assert len(np.unique(np.round(raw.samples, 12))) == 3**3
    assert len(np.unique(np.round(kde.samples, 12))) > 100
    assert kde.final.median == pytest.approx(raw.final.median, rel=0.1)
    with pytest.raises(NotEnoughDataError, match="min_donors=4"):
        analog_forecast(trial, 400, donors, min_donors=4)


def test_analog_is_repeatable_and_handles_accuracy() -> None:
    acc = [(Curve(G, 0.9 - 0.5 * _decay(1.0, 0.5)), True)]
    trial = Curve(G[:5], 0.8 - 0.5 * _decay(1.0, 0.5)[:5])
    f = analog_forecast(trial, 400, acc, direction="up", window=1, noise=0.0, state_spread=0.0)
    # raw units for an accuracy: it gains what the donor gained from step 50 on
    gain = (0.9 - 0.5 * _decay(1.0, 0.5)[-1]) - (0.9 - 0.5 * _decay(1.0, 0.5)[4])
    assert f.info["log"] is False and f.final.median == pytest.approx(trial.value[-1] + gain)
    g = analog_forecast(trial, 400, acc, direction="up", window=1, noise=0.0, state_spread=0.0)
    assert np.array_equal(f.samples, g.samples)  # seeded: the same decision every time


def test_analog_errors() -> None:
    trial = Curve(G[:5], _decay(1.0, 0.5)[:5])
    stopped_only = [(Curve(G, _decay(1.0, 0.5)), False)]
    with pytest.raises(NotEnoughDataError, match="completed"):
        analog_forecast(trial, 400, stopped_only)
    done = [(Curve(G, _decay(1.0, 0.5)), True)]
    with pytest.raises(InvalidInputError, match="one to one"):
        analog_forecast(trial, 400, done, donor_schedules=[None, None])
    with pytest.raises(InvalidInputError, match="bandwidth"):
        analog_forecast(trial, 400, done, bandwidth=0.0)


@pytest.mark.parametrize("sd", [0.01, 0.05])
def test_analog_final_value_carries_the_evaluation_noise(sd: float) -> None:
    # one completed donor: every path follows it, so without the noise term the forecast is a
    # point and a trial a hair from the best would be pruned with certainty
    rng = np.random.default_rng(3)
    donor = _decay(1.0, 0.5) * np.exp(sd * rng.standard_normal(G.size))
    trial = Curve(G[:30], _decay(1.0, 0.5)[:30])
    point = analog_forecast(
        trial, 400, [(Curve(G, donor), True)], window=1, noise=0.0, state_spread=0.0
    )
    noisy = analog_forecast(
        trial, 400, [(Curve(G, donor), True)], window=1, n_paths=2000, state_spread=0.0
    )
    assert np.ptp(np.log(point.samples)) == pytest.approx(0.0, abs=1e-12)
    # the log spread is about the donor's scatter (estimated from its last 8 points)
    assert 0.3 * sd < float(np.std(np.log(noisy.samples))) < 2.5 * sd
    # a smooth donor (no scatter about its trend) adds nothing
    smooth = analog_forecast(
        trial, 400, [(Curve(G, _decay(1.0, 0.5)), True)], window=1, state_spread=0.0
    )
    assert np.ptp(np.log(smooth.samples)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("state_spread", [0.5, 1.0, 2.0])
def test_analog_widens_for_a_trial_unlike_every_donor(state_spread: float) -> None:
    # donors halve their loss per 100 steps from level ~1; one trial sits among them, the
    # other 3x above every donor (a slow "late bloomer" when only fast trials finished)
    donors = [(Curve(G, _decay(lv, 0.5)), True) for lv in (0.9, 1.0, 1.1)]
    near = Curve(G[:5], _decay(1.0, 0.5)[:5])
    far = Curve(G[:5], _decay(3.0, 0.5)[:5])

    def width(trial: Curve, spread: float) -> float:
        f = analog_forecast(trial, 400, donors, state_spread=spread, mix=0.0, n_paths=2000)
        lo, hi = f.final.interval(0.8)
        return float(np.log(hi / lo))

    # without state_spread both borrow the same halvings: the same (tiny) log width
    assert width(far, 0.0) == pytest.approx(width(near, 0.0), abs=1e-9)
    # with it, the trial far from every donor gets a clearly wider forecast, growing with
    # state_spread, while the trial among the donors barely changes
    assert width(far, state_spread) > width(near, state_spread) + 0.1 * state_spread**0.5
    assert width(near, state_spread) < 0.15


def test_values_too_large_to_compare_are_an_invalid_input_error() -> None:
    # found by fuzzing: 2e300 overflowed the kernel (OverflowError) or the spread (inf samples)
    s = np.arange(10, 110, 10)
    big, trial = Curve(s, 2e300 / s), Curve(s[:3], 2e300 / s[:3])
    match = r"values as large as 2e\+299 .* rescale the metric"
    with pytest.raises(InvalidInputError, match=match):
        analog_forecast(trial, 100, [(big, True)], direction="up")
    with pytest.raises(InvalidInputError, match=match):
        peer_forecast(trial, 100, [big], direction="up")


def test_an_analog_forecast_that_leaves_the_float_range_is_refused() -> None:
    # found by fuzzing: a trial at 1e-300 among donors near 2 (log scale) borrowed a level of
    # e^690, and numpy's "overflow encountered in exp" reached the user before an inf forecast
    s = np.arange(10, 110, 10)
    donors = [(Curve(s, 2.0 + 1.0 / s), True), (Curve(s, 2.1 + 1.0 / s), True)]
    trial = Curve(s[:3], 2e-300 * (1.0 + 1.0 / s[:3]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InvalidInputError, match="leaves the float range"):
            analog_forecast(trial, 100, donors, bandwidth=1e-3, mix=0.0)


def _ceiling_donors() -> list[tuple[Curve, bool]]:
    # accuracies that reach 1.0 and scatter below it at the end (a small validation set)
    rng = np.random.default_rng(5)
    out = []
    for _ in range(4):
        v = np.minimum(1.0 - 0.5 * np.exp(-S / 40) + 0.02 * rng.standard_normal(S.size), 1.0)
        v[-1] = 1.0
        out.append((Curve(S, v), True))
    return out


def test_analog_bounds_keep_every_path_within_the_metrics_range() -> None:
    trial = Curve(S[:8], np.minimum(1.0 - 0.5 * np.exp(-S[:8] / 40) + 0.02, 1.0))
    free = analog_forecast(trial, int(S[-1]), _ceiling_donors(), direction="up")
    # unbounded, the evaluation noise carries paths past an accuracy of 1.0
    assert free.final.prob_above(1.0) > 0.1
    bounded = analog_forecast(trial, int(S[-1]), _ceiling_donors(), direction="up", bounds=(0, 1))
    assert bounded.samples.max() == 1.0 and bounded.final.prob_above(1.0) == 0.0
    # held at the bound, not moved to it: paths that end below it still do
    assert bounded.final.prob_below(1.0) > 0.05


def test_analog_bounds_on_the_log_scale_of_a_loss() -> None:
    # a perplexity's floor is 1: on the log scale the paths move on, that is a floor at 0
    done = [(Curve(S, 1.0 + _loss(0.0, 50.0) * k), True) for k in (0.5, 1.0)]
    trial = Curve(S[:5], 1.0 + _loss(0.0, 50.0)[:5] * 0.2)
    f = analog_forecast(trial, int(S[-1]), done, mismatch_spread=5.0, bounds=(1.0, np.inf))
    assert f.samples.min() >= 1.0


def test_peer_forecast_bounds() -> None:
    peers = [c for c, _ in _ceiling_donors()]
    trial = Curve(S[:8], np.full(8, 0.99))
    free = peer_forecast(trial, int(S[-1]), peers, direction="up")
    assert free.samples.max() > 1.0  # the spread floor alone carries paths past 1.0
    f = peer_forecast(trial, int(S[-1]), peers, direction="up", bounds=(0.0, 1.0))
    assert f.samples.max() == 1.0


@pytest.mark.parametrize("bad", [(1.0, 0.0), (0.0, float("nan")), "zero to one", (1.0,)])
def test_bad_bounds_are_refused_by_name(bad: object) -> None:
    trial = Curve(S[:8], np.full(8, 0.9))
    with pytest.raises(InvalidInputError, match="bounds"):
        analog_forecast(
            trial,
            int(S[-1]),
            _ceiling_donors(),
            direction="up",
            bounds=bad,  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidInputError, match="bounds"):
        PruneRule(bounds=bad)  # type: ignore[arg-type]
