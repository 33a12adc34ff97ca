"""The shared pruning rule: P(final beats best) < threshold, after warm-up."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from runcast.curve import Curve
from runcast.errors import FitError, InvalidInputError
from runcast.forecast import Forecast
from runcast.steer import PruneRule, metric_bounds, prune_decision
from runcast.steer._prune import DEFAULT_TOP_K_NO_SCHEDULE, DEFAULT_WARMUP_FRACTION_NO_SCHEDULE


def _fc(lo: float, hi: float, until: int = 100, direction: str = "down") -> Forecast:
    # a forecast whose final value is uniform on [lo, hi]: P(final < x) is (x-lo)/(hi-lo)
    return Forecast([until], np.linspace(lo, hi, 1001)[:, None], direction=direction)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("best", "threshold", "action", "p"),
    [
        (0.40, 0.05, "prune", 0.0),  # best is below every path: cannot win
        (0.51, 0.05, "continue", 0.1),  # 10% chance >= 5% threshold
        (0.51, 0.20, "prune", 0.1),  # the same chance under a stricter threshold
        (0.70, 0.05, "continue", 1.0),
    ],
)
def test_prune_decision_min(best: float, threshold: float, action: str, p: float) -> None:
    d = prune_decision(_fc(0.5, 0.6), best, step=50, threshold=threshold)
    assert d.action == action
    assert d.numbers["p_beat"] == pytest.approx(p, abs=2e-3)  # the probability it decided on
    assert d.numbers["final_median"] == pytest.approx(0.55)


def test_prune_decision_max_mode_uses_upper_tail() -> None:
    f = _fc(0.8, 0.9, direction="up")
    # an accuracy: beating 0.88 means ending above it, P = 0.2
    d = prune_decision(f, 0.88, step=5, mode="max", threshold=0.25)
    assert d.action == "prune" and d.numbers["p_beat"] == pytest.approx(0.2, abs=2e-3)
    assert prune_decision(f, 0.88, step=5, mode="max", threshold=0.1).action == "continue"


def test_prune_decision_warmup_and_no_best() -> None:
    f = _fc(0.5, 0.6)
    assert prune_decision(f, 0.1, step=9, warmup_steps=10).action == "continue"
    assert prune_decision(f, 0.1, step=10, warmup_steps=10).action == "prune"
    assert prune_decision(f, None, step=50).reason == "no completed trial to compare with yet"


@pytest.mark.parametrize("threshold", [-0.1, 1.0, 2.0])
def test_prune_decision_rejects_bad_threshold(threshold: float) -> None:
    with pytest.raises(InvalidInputError, match="threshold"):
        prune_decision(_fc(0.5, 0.6), 0.5, step=1, threshold=threshold)


@pytest.mark.parametrize(
    ("mode", "lo", "hi", "best"), [("min", 0.5, 0.6, 0.6), ("max", 0.5, 0.6, 0.5)]
)
def test_prune_decision_min_gain_moves_the_bar_by_a_share_of_the_best(
    mode: str, lo: float, hi: float, best: float
) -> None:
    f = _fc(lo, hi, direction="down" if mode == "min" else "up")
    # any margin: every path beats the best; by 10% of it: none can (the range is 0.1 wide)
    plain = prune_decision(f, best, step=5, mode=mode, threshold=0.05)  # type: ignore[arg-type]
    assert plain.action == "continue" and plain.numbers["p_beat"] == pytest.approx(1.0, abs=2e-3)
    d = prune_decision(
        f,
        best,
        step=5,
        mode=mode,
        threshold=0.05,
        min_gain=0.2,  # type: ignore[arg-type]
    )
    assert d.action == "prune" and d.numbers["p_beat"] == 0.0
    assert d.numbers["bar"] == pytest.approx(best * (0.8 if mode == "min" else 1.2))
    assert "min_gain 0.2" in d.reason
    # 5% of it: the bar is inside the range (0.57 or 0.525), some paths pass it
    half = prune_decision(f, best, step=5, mode=mode, min_gain=0.05)  # type: ignore[arg-type]
    assert half.numbers["p_beat"] == pytest.approx(0.7 if mode == "min" else 0.75, abs=2e-3)


@pytest.mark.parametrize("min_gain", [-0.01, 1.0, float("nan")])
def test_min_gain_outside_0_1_is_refused_by_name(min_gain: float) -> None:
    with pytest.raises(InvalidInputError, match="min_gain"):
        prune_decision(_fc(0.5, 0.6), 0.5, step=1, min_gain=min_gain)
    with pytest.raises(InvalidInputError, match="min_gain"):
        PruneRule(min_gain=min_gain)


def test_rule_min_gain_prunes_a_trial_that_can_only_win_by_a_hair() -> None:
    fc = _Recorder(0.095, 0.099)  # ends 1-5% below the best completed (0.1)
    kw: dict[str, Any] = {"total_steps": 100, "n_completed": 2, "best": 0.1}
    rule = PruneRule(threshold=0.01, n_min_trials=1, min_points=1, forecaster=fc, top_k=1)
    assert rule.decide([10, 20], [1.0, 0.9], **kw).action == "continue"
    picky = PruneRule(
        threshold=0.01, n_min_trials=1, min_points=1, forecaster=fc, top_k=1, min_gain=0.06
    )
    d = picky.decide([10, 20], [1.0, 0.9], **kw)
    assert d.action == "prune" and d.numbers["bar"] == pytest.approx(0.094)


class _Recorder:
    """A real forecaster (a fixed distribution) that remembers what it was asked."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        self.calls: list[tuple[int, int]] = []

    def __call__(self, curve: Curve, until: int) -> Forecast:
        self.calls.append((len(curve), until))
        return _fc(self.lo, self.hi, until)


def test_rule_gates_in_order() -> None:
    fc = _Recorder(0.5, 0.6)
    rule = PruneRule(threshold=0.05, warmup_steps=3, n_min_trials=2, min_points=4, forecaster=fc)
    steps, vals = [1, 2, 3, 4, 5], [0.9, 0.8, 0.7, 0.65, 0.6]
    assert (
        "n_min_trials" in rule.decide(steps, vals, total_steps=10, best=0.3, n_completed=1).reason
    )
    assert (
        "warming up"
        in rule.decide(steps[:2], vals[:2], total_steps=10, best=0.3, n_completed=2).reason
    )
    assert (
        "min_points"
        in rule.decide(steps[:3], vals[:3], total_steps=10, best=0.3, n_completed=2).reason
    )
    assert fc.calls == []  # no forecast is spent before the gates open
    d = rule.decide(steps, vals, total_steps=10, best=0.3, n_completed=2)
    assert d.action == "prune" and fc.calls == [(5, 10)]  # forecast of 5 points to step 10


def test_rule_prunes_diverged_and_ignores_nan_points() -> None:
    fc = _Recorder(0.5, 0.6)
    rule = PruneRule(min_points=3, forecaster=fc, n_min_trials=1)
    d = rule.decide([1, 2, 3], [1.0, 0.9, float("inf")], total_steps=10, best=0.5, n_completed=1)
    assert d.action == "prune" and "diverged" in d.reason  # NaN/inf now: it cannot win
    d = rule.decide(
        [1, 2, 3, 4], [1.0, float("nan"), 0.8, 0.7], total_steps=10, best=0.9, n_completed=1
    )
    assert fc.calls == [(3, 10)]  # the NaN point is dropped before forecasting
    assert d.action == "continue"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_rule_prunes_a_diverged_trial_before_any_gate(bad: float) -> None:
    fc = _Recorder(0.0, 0.1)
    rule = PruneRule(warmup_steps=100, n_min_trials=5, forecaster=fc)
    # still warming up and no trial completed: a NaN/inf trial is pruned all the same
    d = rule.decide([1, 2], [2.3, bad], total_steps=10, best=None, n_completed=0)
    assert d.action == "prune" and "diverged" in d.reason and d.step == 2
    assert fc.calls == []  # decided without spending a forecast


def test_rule_never_prunes_on_a_failed_forecast() -> None:
    def failing(curve: Curve, until: int) -> Forecast:
        raise FitError("no convergence")

    rule = PruneRule(min_points=1, forecaster=failing)
    d = rule.decide([1, 2], [5.0, 4.0], total_steps=10, best=0.1, n_completed=3)
    assert d.action == "continue" and "no convergence" in d.reason


def test_rule_with_runcast_forecast_prunes_a_clear_loser() -> None:
    # end to end with the real default forecaster: a curve flattening at ~2.0 cannot reach 0.5
    s = np.arange(10, 310, 10)
    v = 2.0 + 3.0 * (s / 10.0) ** -1.0
    rule = PruneRule(threshold=0.05, min_points=6)
    d = rule.decide(s, v, total_steps=1000, best=0.5, n_completed=3)
    assert d.action == "prune" and d.numbers["p_beat"] < 0.05
    d = rule.decide(s, v, total_steps=1000, best=4.0, n_completed=3)
    assert d.action == "continue"  # it already beats 4.0: the forecast must keep it


def test_rule_defaults() -> None:
    # the defaults the sweep benchmark reports (bench/README.md, issue 14): the threshold
    # leave-one-sweep-out chooses, 0.005 for a trial with a known schedule and 0.002 without,
    # 2 completed trials, 2 reports
    from runcast.schedules import Schedule

    rule = PruneRule()
    sch = Schedule.from_spec({"kind": "cosine", "peak": 0.1, "total": 100})
    assert (rule.threshold_for(sch), rule.threshold_for(None)) == (0.005, 0.002)
    assert (rule.n_min_trials, rule.warmup_reports) == (2, 2)
    # the analog forecast with or without a schedule: also leave-one-sweep-out's choice
    assert (rule.warmup_steps, rule.peer_method) == (0, "analog")


def test_rule_waits_for_warmup_reports() -> None:
    fc = _Recorder(0.5, 0.6)
    rule = PruneRule(warmup_reports=3, n_min_trials=1, min_points=1, forecaster=fc)
    d = rule.decide([10, 20], [2.0, float("nan")], total_steps=100, best=0.1, n_completed=1)
    assert d.action == "prune"  # NaN: diverged, no warm-up protects it
    d = rule.decide([10, 20, 30], [2.0, np.nan, 1.9], total_steps=100, best=0.1, n_completed=1)
    assert "2 report(s) < warmup_reports 3" in d.reason and fc.calls == []  # NaN not counted
    d = rule.decide([10, 20, 30], [2.0, 1.95, 1.9], total_steps=100, best=0.1, n_completed=1)
    assert d.action == "prune" and fc.calls == [(3, 100)]


S = np.arange(10, 210, 10)


@pytest.mark.parametrize(("schedule", "method"), [(None, "peers"), ("constant", "analog")])
def test_rule_auto_uses_analog_only_with_a_schedule(schedule: str | None, method: str) -> None:
    from runcast.schedules import Schedule

    sch = None if schedule is None else Schedule.from_spec({"kind": schedule, "peak": 0.1})
    peers = [Curve(S, 0.5 + 5.0 / S), Curve(S, 0.52 + 5.0 / S)]
    # threshold 0.05: with two peers the analog forecast still gives this trial 1.8%
    d = PruneRule(threshold=0.05, peer_method="auto").decide(
        S[:4],
        2.0 + 5.0 / S[:4],
        total_steps=200,
        best=0.525,
        n_completed=2,
        schedule=sch,
        peers=peers,
        peer_schedules=[sch, sch],
    )
    # far above both peers at step 40: either forecast says it cannot win; the reason says
    # which forecast decided (shift forecasts are named "peers")
    assert d.action == "prune" and f"({method} forecast)" in d.reason


def test_rule_default_uses_the_analog_forecast_without_a_schedule() -> None:
    # leave-one-sweep-out chose the analog forecast for trials without a schedule too
    peers = [Curve(S, 0.5 + 5.0 / S), Curve(S, 0.52 + 5.0 / S)]
    d = PruneRule().decide(
        S[:4], 2.0 + 5.0 / S[:4], total_steps=200, best=0.525, n_completed=2, peers=peers
    )
    assert "(analog forecast)" in d.reason and d.numbers["final_median"] > 1.0
    assert d.numbers["threshold"] == 0.002  # no schedule: the stricter default


def test_rule_rejects_bad_settings() -> None:
    with pytest.raises(InvalidInputError, match="n_min_trials"):
        PruneRule(n_min_trials=-1)
    with pytest.raises(InvalidInputError, match="peer_method"):
        PruneRule(peer_method="median")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="mode"):
        PruneRule(mode="median")  # type: ignore[arg-type]


def test_rule_passes_peer_options_to_the_analog_forecast() -> None:
    from runcast.schedules import Schedule

    sch = Schedule.from_spec({"kind": "constant", "peak": 0.1})
    rng = np.random.default_rng(0)
    donor = Curve(S, (0.5 + 5.0 / S) * np.exp(0.02 * rng.standard_normal(S.size)))
    kw: dict[str, Any] = {
        "total_steps": 200,
        "best": float(donor.value[-1]),
        "n_completed": 2,
        "schedule": sch,
        "peers": [donor, donor],
        "peer_schedules": [sch, sch],
    }
    trial = (S[:15], donor.value[:15])
    point = PruneRule(peer_options={"noise": 0.0}).decide(*trial, **kw)
    noisy = PruneRule().decide(*trial, **kw)
    # the same trial as the only donor: without evaluation noise the forecast is a point
    # (an 80% interval of width 0); by default the final value carries the donor's scatter
    assert point.numbers["final_hi80"] == pytest.approx(point.numbers["final_lo80"], abs=1e-12)
    assert noisy.numbers["final_hi80"] > noisy.numbers["final_lo80"] * 1.01
    with pytest.raises(InvalidInputError, match=r"unknown key.*'nosie'"):
        PruneRule(peer_options={"nosie": 0.0})
    with pytest.raises(InvalidInputError, match=r"unknown key.*'window'"):
        PruneRule(peer_options={"window": 3})  # set by the rule itself (peer_window)


@pytest.mark.parametrize(("steps", "values"), [([10, 20, 30], [1.0, 0.9]), ([10], [])])
def test_steps_and_values_of_different_lengths_are_an_invalid_input_error(
    steps: list[int], values: list[float]
) -> None:
    # found by fuzzing: an IndexError (values empty) or a boolean-index error from numpy
    rule = PruneRule(n_min_trials=0)
    with pytest.raises(
        InvalidInputError, match=r"one value per reported step.*\(3,\) and \(2,\)|\(1,\) and \(0,\)"
    ):
        rule.decide(steps, values, total_steps=100, best=0.5, n_completed=3)


def test_peers_too_large_to_compare_fall_back_to_the_trials_own_curve() -> None:
    # found by fuzzing: peers at 2e300 raised OverflowError from the analog kernel, out of the
    # pruner and into the sweep; now the peer forecast refuses and the trial's own curve decides
    steps = np.arange(10, 110, 10)
    peers = [Curve(steps, 2e300 * (1.0 + 1.0 / steps)) for _ in range(3)]
    rule = PruneRule(n_min_trials=0, warmup_reports=0, min_points=5, peer_method="analog")
    d = rule.decide(
        [10, 20], [3e300, 2.9e300], total_steps=100, best=2e300, n_completed=3, peers=peers
    )
    assert d.action == "continue" and "min_points=5" in d.reason  # own curve: too few points


def test_rule_waits_for_its_warmup_fraction_of_the_budget() -> None:
    from runcast.schedules import Schedule

    fc = _Recorder(0.5, 0.6)
    rule = PruneRule(warmup_fraction=0.25, n_min_trials=1, min_points=1, forecaster=fc)
    steps, vals = [10, 20, 30], [2.0, 1.9, 1.8]
    d = rule.decide(steps[:2], vals[:2], total_steps=100, best=0.1, n_completed=1)
    assert d.action == "continue" and "step 20 < 0.25 of the 100 steps" in d.reason
    assert fc.calls == []  # no forecast spent during the warm-up
    d = rule.decide(steps, vals, total_steps=100, best=0.1, n_completed=1)
    assert d.action == "prune" and fc.calls == [(3, 100)]  # step 30 >= 25 of 100
    # by default: no warm-up share with a known schedule, the corpus's choice without one
    sch = Schedule.from_spec({"kind": "cosine", "peak": 0.1, "total": 100})
    assert PruneRule().warmup_fraction_for(sch) == 0.0
    assert PruneRule().warmup_fraction_for(None) == DEFAULT_WARMUP_FRACTION_NO_SCHEDULE
    assert PruneRule(warmup_fraction=0.1).warmup_fraction_for(sch) == 0.1
    for bad in (-0.1, 1.0):
        with pytest.raises(InvalidInputError, match="warmup_fraction"):
            PruneRule(warmup_fraction=bad)


@pytest.mark.parametrize(
    ("top_k", "mode", "finals", "expect"),
    [
        (1, "min", [0.3, 0.1, float("nan"), 0.2], 0.1),
        (2, "min", [0.3, 0.1, float("nan"), 0.2], 0.2),
        (2, "max", [0.3, 0.1, float("inf"), 0.2], 0.2),  # a diverged final is no reference
        (4, "min", [0.3, 0.1, float("nan"), 0.2], None),  # 3 finite: any trial makes the top 4
        (1, "min", [], None),
    ],
)
def test_rule_reference_is_the_top_kth_completed_value(
    top_k: int, mode: str, finals: list[float], expect: float | None
) -> None:
    assert PruneRule(top_k=top_k, mode=mode).reference(finals) == expect  # type: ignore[arg-type]


def test_rule_top_k_keeps_a_trial_that_would_end_second() -> None:
    fc = _Recorder(0.15, 0.25)  # ends between the best (0.1) and the 2nd best (0.3)
    one = PruneRule(threshold=0.01, n_min_trials=1, min_points=1, forecaster=fc, top_k=1)
    two = PruneRule(threshold=0.01, n_min_trials=1, min_points=1, forecaster=fc, top_k=2)
    kw: dict[str, Any] = {"total_steps": 100, "n_completed": 2}
    finals = [0.3, 0.1]
    assert one.decide([10, 20], [1.0, 0.9], best=one.reference(finals), **kw).action == "prune"
    d = two.decide([10, 20], [1.0, 0.9], best=two.reference(finals), **kw)
    assert d.action == "continue" and d.numbers["best"] == 0.3 and d.numbers["p_beat"] == 1.0
    with pytest.raises(InvalidInputError, match="top_k"):
        PruneRule(top_k=0)


def test_rule_top_k_default_depends_on_the_schedule() -> None:
    from runcast.schedules import Schedule

    sch = Schedule.from_spec({"kind": "constant", "peak": 0.1})
    rule = PruneRule()
    assert (rule.top_k_for(sch), rule.top_k_for(None)) == (1, DEFAULT_TOP_K_NO_SCHEDULE)
    finals = [0.4, 0.1, 0.3, 0.2]
    assert rule.reference(finals, sch) == 0.1  # with a schedule: the best
    assert rule.reference(finals) == sorted(finals)[DEFAULT_TOP_K_NO_SCHEDULE - 1]
    assert PruneRule(top_k=2).reference(finals, sch) == 0.2  # given: it holds for every trial


@pytest.mark.parametrize(
    ("given", "name", "values", "mode", "bounds"),
    [
        ("auto", "val_acc", [0.5, 0.9], "max", (0.0, 1.0)),
        ("auto", "val/accuracy", [50.0, 97.5], "max", (0.0, 100.0)),  # in percent
        ("auto", "val_r2", [0.2, 0.8], "max", (0.0, 1.0)),
        ("auto", "val_r2", [-0.4, 0.8], "max", None),  # R² below 0: no floor, so no bounds
        ("auto", None, [0.5, 1.0], "max", (0.0, 1.0)),  # unnamed, maximised, within [0, 1]
        ("auto", None, [0.5, 1.5], "max", None),
        ("auto", "reward", [3.0], "max", None),
        ("auto", "loss", [2.3, 0.4], "min", (0.0, np.inf)),
        ((0, 100), None, [], "max", (0.0, 100.0)),
        (None, "val_acc", [0.5], "max", None),  # None: unbounded, whatever the name says
    ],
)
def test_metric_bounds_reads_the_range_from_the_name_and_values(
    given: Any, name: str | None, values: list[float], mode: Any, bounds: Any
) -> None:
    assert metric_bounds(given, name, values, mode) == bounds


def test_metric_bounds_refuses_an_unknown_word() -> None:
    with pytest.raises(InvalidInputError, match="'auto'"):
        metric_bounds("infer", None, [0.5], "max")  # type: ignore[arg-type]


def test_rule_with_bounds_prunes_a_trial_that_can_only_tie_at_the_ceiling() -> None:
    # two completed trials reached an accuracy of 1.0; a third at 0.98-1.0 can tie them, never
    # beat them. Unbounded, the evaluation noise of the donors' last points says it might
    s = np.arange(1, 41)
    rng = np.random.default_rng(0)
    acc = np.minimum(1 - 0.5 * np.exp(-s / 5) + 0.02 * rng.standard_normal((2, 40)), 1.0)
    acc[:, -1] = 1.0
    done = [Curve(s, a) for a in acc]
    trial = acc[0, :20]
    kw: dict[str, Any] = {"total_steps": 40, "best": 1.0, "n_completed": 2, "peers": done}
    free = PruneRule(mode="max").decide(s[:20], trial, **kw)
    bounded = PruneRule(mode="max", bounds=(0.0, 1.0)).decide(s[:20], trial, **kw)
    assert free.action == "continue" and free.numbers["final_hi80"] > 1.0
    assert bounded.action == "prune" and bounded.numbers["p_beat"] == 0.0
    assert bounded.numbers["final_hi80"] <= 1.0
