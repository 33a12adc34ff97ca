"""Optuna ForecastPruner: a real study, real should_prune(), the real runcast forecast."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from runcast.curve import Curve  # noqa: E402
from runcast.errors import InvalidInputError  # noqa: E402
from runcast.forecast import Forecast  # noqa: E402
from runcast.integrations.optuna import ForecastPruner  # noqa: E402

TOTAL = 60
optuna.logging.set_verbosity(optuna.logging.WARNING)
# the rule's mechanism on a handful of trials: compare with the best completed trial from the
# first report (a trial without a schedule is otherwise compared with the k-th best after a
# share of the budget, the defaults leave-one-sweep-out chose on sweeps of 40 trials)
ONE_BEST: dict[str, Any] = {"top_k": 1, "warmup_fraction": 0.0}


def _objective(floors: list[float], sign: float = 1.0, schedule: bool = False) -> Any:
    def objective(trial: Any) -> float:
        floor = floors[trial.number]
        if schedule:
            trial.set_user_attr(
                "runcast_schedule", {"kind": "constant", "peak": 0.1, "total": TOTAL + 1}
            )
        value = 0.0
        for step in range(1, TOTAL + 1):
            value = sign * (floor + 2.0 / step)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    return objective


@pytest.mark.parametrize(("direction", "sign"), [("minimize", 1.0), ("maximize", -1.0)])
def test_pruner_prunes_losers_keeps_winners(direction: str, sign: float) -> None:
    floors = [0.5, 2.0, 0.45, 3.0]
    # threshold 0.05: the mechanism on one finished trial (the defaults, chosen on sweeps of 40
    # trials, wait for more evidence when a trial has no schedule)
    pruner = ForecastPruner(
        total_steps=TOTAL, n_warmup_steps=10, n_min_trials=1, threshold=0.05, **ONE_BEST
    )
    study = optuna.create_study(direction=direction, pruner=pruner)
    study.optimize(_objective(floors, sign), n_trials=len(floors))
    states = [t.state.name for t in study.trials]
    # trial 0 sets the bar; 2.0 and 3.0 cannot reach ~0.53; 0.45 will beat it and must survive
    assert states == ["COMPLETE", "PRUNED", "COMPLETE", "PRUNED"]
    for n in (1, 3):
        d = pruner.decisions[n]
        assert d.action == "prune" and d.numbers["p_beat"] < pruner.threshold
        # before half the budget, not at the end: with one finished trial to learn from, the
        # analog forecast stays wide for a while (it was pruned at step 28 of 60)
        assert 10 <= d.step < TOTAL // 2
    assert pruner.decisions[2].action == "continue"


def test_pruner_waits_for_n_min_trials_and_uses_schedule() -> None:
    floors = [0.5, 2.0, 3.0, 2.5]
    pruner = ForecastPruner(total_steps=TOTAL, n_warmup_steps=10, n_min_trials=2)
    study = optuna.create_study(pruner=pruner)
    study.optimize(_objective(floors, schedule=True), n_trials=len(floors))
    # trial 1 runs to the end (only 1 complete before it); later losers are pruned
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]


def test_pruner_interval_and_custom_forecaster() -> None:
    calls: list[int] = []

    def pessimist(curve: Curve, until: int) -> Forecast:
        calls.append(int(curve.step[-1]))
        return Forecast([until], np.full((10, 1), 99.0))

    pruner = ForecastPruner(
        total_steps=TOTAL,
        n_warmup_steps=5,
        interval_steps=4,
        min_points=1,
        n_min_trials=1,
        forecaster=pessimist,
        **ONE_BEST,
    )
    study = optuna.create_study(pruner=pruner)
    study.optimize(_objective([0.5, 0.1]), n_trials=2)
    assert study.trials[1].state.name == "PRUNED"
    assert calls == [5]  # first decision step after warm-up; it pruned at once
    assert study.trials[1].last_step == 5


def test_pruner_prunes_a_nan_trial_at_its_first_report() -> None:
    pruner = ForecastPruner(total_steps=TOTAL, n_warmup_steps=30)  # defaults: n_min_trials 2

    def objective(trial: Any) -> float:
        for step in range(1, TOTAL + 1):
            trial.report(float("nan") if step >= 3 else 2.0, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 2.0

    study = optuna.create_study(pruner=pruner)
    study.optimize(objective, n_trials=1)
    # no trial completed and still warming up: the NaN trial is pruned all the same, at once
    assert study.trials[0].state.name == "PRUNED" and study.trials[0].last_step == 3
    assert "diverged" in pruner.decisions[0].reason


@pytest.mark.parametrize("bad", [float("inf"), float("-inf")])
def test_a_trial_that_reported_inf_does_not_break_later_decisions(bad: float) -> None:
    # trial 2 blows up to inf and is pruned; trials 3.. forecast with it among the donors, whose
    # diverged points count as missing (a Curve refuses inf): before, every later should_prune()
    # raised InvalidCurveError and the study stopped
    pruner = ForecastPruner(total_steps=TOTAL, n_warmup_steps=5)

    def objective(trial: Any) -> float:
        value = 0.0
        for step in range(1, TOTAL + 1):
            value = 1.0 + 2.0 / step
            if trial.number == 2 and step >= 10:
                value = bad
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study = optuna.create_study(pruner=pruner)
    study.optimize(objective, n_trials=6)
    states = [t.state.name for t in study.trials]
    assert states[2] == "PRUNED" and states.count("FAIL") == 0 and len(states) == 6
    assert "diverged" in pruner.decisions[2].reason


# A sweep reporting every 10 steps to 400. Until step 200 every trial falls by 0.9 per 100
# steps; then a trial with a cooldown (wsd: the LR decays from 200 to 0) falls by 0.4 per 100,
# one with a constant LR by 0.8 per 100.
GRID = np.arange(10, 410, 10)
WSD = {"kind": "wsd", "peak": 0.1, "total": 400, "end": 0.0, "decay_start": 200}
CONST = {"kind": "constant", "peak": 0.1, "total": 400}


def _sweep_objective(trials: list[tuple[float, dict[str, Any]]], attrs: bool) -> Any:
    def objective(trial: Any) -> float:
        scale, spec = trials[trial.number]
        if attrs:
            trial.set_user_attr("runcast_schedule", spec)
        rate = 0.4 if spec["kind"] == "wsd" else 0.8
        value = 0.0
        for step in GRID:
            value = scale * 0.9 ** (min(step, 200) / 100) * rate ** (max(step - 200, 0) / 100)
            trial.report(value, int(step))
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    return objective


@pytest.mark.parametrize("attrs", [True, False])
def test_pruner_forecasts_with_the_trials_schedule(attrs: bool) -> None:
    trials = [(1.0, WSD), (1.0, CONST), (0.95, CONST), (0.95, WSD)]
    pruner = ForecastPruner(total_steps=400, threshold=0.2)
    study = optuna.create_study(pruner=pruner)
    study.optimize(_sweep_objective(trials, attrs), n_trials=len(trials))
    states = [t.state.name for t in study.trials]
    # the 4th trial (wsd, 5% below the best all along) wins: it must run to the end
    assert states[3] == "COMPLETE" and study.best_trial.number == 3
    if attrs:
        # the 3rd looks like the 4th until step 200, but its LR stays constant: only its
        # schedule says it will end 4x above the best; it is stopped long before step 200
        assert states[2] == "PRUNED" and study.trials[2].last_step < 200
    else:
        # blind to schedules, both continuations look equally likely until its own curve
        # shows, after step 200, that it has no cooldown: it runs past step 200 (compute lost)
        assert study.trials[2].last_step > 200


def test_pruner_collects_pruned_trials_curves() -> None:
    # two completed trials, then losers; the pruned losers' curves reach the forecast too
    pruner = ForecastPruner(total_steps=TOTAL, n_warmup_steps=10, threshold=0.05, **ONE_BEST)
    study = optuna.create_study(pruner=pruner)
    study.optimize(_objective([0.5, 0.6, 2.0, 3.0, 2.5]), n_trials=5)
    assert [t.state.name for t in study.trials] == [
        "COMPLETE",
        "COMPLETE",
        "PRUNED",
        "PRUNED",
        "PRUNED",
    ]
    # the curves of the pruned trials, as the pruner hands them to the analog forecast: each
    # up to where it stopped, with its schedule (none given here)
    stopped, schedules = pruner._curves(study.get_trials(states=(optuna.trial.TrialState.PRUNED,)))
    assert [int(c.step[-1]) for c in stopped] == [t.last_step for t in study.trials[2:]]
    assert schedules == [None, None, None]
    assert all(10 <= int(c.step[-1]) < TOTAL for c in stopped)  # stopped after the warm-up


def test_pruner_without_arguments_infers_the_budget_and_keeps_the_forecast() -> None:
    # written as every Optuna pruner is: no budget; it is where completed trials ended (each
    # trial's schedule given: its default threshold is then 0.005)
    floors = [0.5, 0.45, 2.0, 3.0, 0.4]
    pruner = ForecastPruner()
    study = optuna.create_study(pruner=pruner)
    study.optimize(_objective(floors, schedule=True), n_trials=len(floors))
    assert [t.state.name for t in study.trials] == [
        "COMPLETE",
        "COMPLETE",
        "PRUNED",
        "PRUNED",
        "COMPLETE",
    ]
    # only pruned trials get a forecast kept
    assert not any("runcast_forecast" in study.trials[i].user_attrs for i in (0, 1, 4))
    for t in study.trials[2:4]:
        kept = t.user_attrs["runcast_forecast"]
        assert kept["final_step"] == TOTAL  # the inferred budget: completed trials' last step
        assert kept["step"] == t.last_step < TOTAL
        assert kept["best"] == pytest.approx(0.45 + 2.0 / TOTAL)
        assert kept["p_beat"] < 0.01
        # the estimate a sampler can use instead of the lost trial: worse than the best, and
        # (pruned early, the peers' improvement borrowed) not above its truth
        assert kept["best"] < kept["final_lo80"] <= kept["final_median"] <= kept["final_hi80"]
        assert kept["final_median"] < floors[t.number] + 2.0 / TOTAL


@pytest.mark.parametrize(("argument", "attribute", "expect"), [(90, None, 90), (90, 120, 120)])
def test_pruner_budget_argument_and_trial_attribute_win_over_inference(
    argument: int, attribute: int | None, expect: int
) -> None:
    pruner = ForecastPruner(argument, n_min_trials=1, **ONE_BEST)
    study = optuna.create_study(pruner=pruner)

    def objective(trial: Any) -> float:
        if attribute is not None:
            trial.set_user_attr("runcast_total_steps", attribute)
        floor = [0.5, 3.0][trial.number]
        for step in range(1, TOTAL + 1):
            trial.report(floor + 2.0 / step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return floor + 2.0 / TOTAL

    study.optimize(objective, n_trials=2)
    assert study.trials[1].state.name == "PRUNED"
    assert study.trials[1].user_attrs["runcast_forecast"]["final_step"] == expect


def test_pruner_needs_a_single_objective() -> None:
    multi = optuna.create_study(directions=["minimize", "minimize"], pruner=ForecastPruner(10))
    multi.ask()
    with pytest.raises(InvalidInputError, match="single-objective"):
        ForecastPruner(10).prune(multi, multi.trials[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"total_steps": 0}, "total_steps"),
        ({"interval_steps": 0}, "interval_steps"),
        ({"threshold": 1.5}, "threshold"),
        ({"peer_options": {"bandwith": 0.3}}, "bandwith"),  # a typo fails at once, by name
        ({"min_gain": -0.1}, "min_gain"),
    ],
)
def test_pruner_rejects_bad_settings(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        ForecastPruner(**kwargs)


def test_pruner_passes_peer_options_to_the_rule() -> None:
    pruner = ForecastPruner(10, peer_options={"mix": 0.0, "noise": 0.5})
    # the same settings reach the rule the scheduler for Ray uses
    assert dict(pruner._rule.peer_options) == {"mix": 0.0, "noise": 0.5}


@pytest.mark.parametrize(("top_k", "states"), [(1, "PRUNED"), (2, "COMPLETE")])
def test_pruner_top_k_keeps_a_trial_that_would_end_second(top_k: int, states: str) -> None:
    # floors 0.5 and 2.0 complete; 1.0 cannot beat the best (0.5) but beats the 2nd (2.0)
    floors = [0.5, 2.0, 1.0]
    pruner = ForecastPruner(
        total_steps=TOTAL, n_warmup_steps=10, n_min_trials=2, threshold=0.05, top_k=top_k
    )
    study = optuna.create_study(pruner=pruner)
    study.optimize(_objective(floors), n_trials=3)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", states]
    # the value trial 2 had to beat: the best final, or the 2nd best
    finals = [t.value for t in study.trials[:2]]
    assert pruner._rule.reference(finals) == pytest.approx(floors[top_k - 1] + 2.0 / TOTAL)


@pytest.mark.parametrize(("min_gain", "state"), [(0.0, "COMPLETE"), (0.5, "PRUNED")])
def test_pruner_min_gain_prunes_a_trial_that_cannot_win_by_that_much(
    min_gain: float, state: str
) -> None:
    # the third trial ends about 10% below the best: worth finishing unless the least gain
    # worth it is half the best
    pruner = ForecastPruner(
        total_steps=TOTAL, n_warmup_steps=10, threshold=0.05, min_gain=min_gain, **ONE_BEST
    )
    study = optuna.create_study(pruner=pruner)
    study.optimize(_objective([0.5, 2.0, 0.45]), n_trials=3)
    assert study.trials[2].state.name == state
    if state == "PRUNED":  # the bar it could not pass: half the best final
        bar = study.trials[0].value * (1 - min_gain)
        assert pruner.decisions[2].numbers["bar"] == pytest.approx(bar)


def test_pruner_warmup_fraction_of_the_inferred_budget() -> None:
    floors = [0.5, 0.45, 3.0]
    pruner = ForecastPruner(warmup_fraction=0.5, threshold=0.05, top_k=1)  # the budget: 60
    study = optuna.create_study(pruner=pruner)
    study.optimize(_objective(floors), n_trials=3)
    assert study.trials[2].state.name == "PRUNED"
    assert study.trials[2].last_step == TOTAL // 2  # the first report at half the budget
    assert pruner._rule.warmup_fraction == 0.5


def _accuracy(seed: int) -> list[float]:
    # a validation set of 38: the accuracy moves in steps of 1/38 and reaches 1.0, never past
    rng = np.random.default_rng(seed)
    clean = 1 - 0.5 * np.exp(-np.arange(1, 41) / 5)
    return list(np.minimum(np.round((clean + 0.02 * rng.standard_normal(40)) * 38) / 38, 1.0))


@pytest.mark.parametrize(
    ("bounds", "names", "scale", "pruned"),
    [
        ("auto", None, 1.0, True),  # unnamed, maximised, within [0, 1]: a rate
        ("auto", ["val_acc"], 100.0, True),  # in percent: the name says it is an accuracy
        ("auto", None, 100.0, False),  # unnamed in [0, 100]: could be anything
        ((0.0, 1.0), None, 1.0, True),
        (None, None, 1.0, False),
    ],
)
def test_pruner_bounds_prune_trials_that_can_only_tie_a_perfect_accuracy(
    bounds: Any, names: list[str] | None, scale: float, pruned: bool
) -> None:
    # the first two trials end at 1.0: the rest can tie them, never beat them. Unbounded, the
    # completed trials' scatter below 1.0 (their evaluation noise) puts forecasts above it
    pruner = ForecastPruner(bounds=bounds)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    if names:
        with warnings.catch_warnings():  # set_metric_names is "experimental" in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)

    def objective(trial: Any) -> float:
        values = [scale * v for v in _accuracy(trial.number)]
        for step, value in enumerate(values, start=1):
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return values[-1]

    study.optimize(objective, n_trials=5)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE"] * 2 + (["PRUNED"] * 3 if pruned else ["COMPLETE"] * 3)
    assert study.best_value == scale
    for t in study.trials[2:]:
        if pruned:
            assert t.user_attrs["runcast_forecast"]["final_hi80"] <= scale


def test_pruner_refuses_bad_bounds_at_once() -> None:
    with pytest.raises(InvalidInputError, match="bounds"):
        ForecastPruner(bounds=(1.0, 0.0))
    with pytest.raises(InvalidInputError, match="'auto'"):
        ForecastPruner(bounds="infer")  # type: ignore[arg-type]


def test_pruner_takes_bounds_as_any_pair_of_numbers() -> None:
    # a numpy array == "auto" is an array, not a bool: it must not reach an `if`
    assert ForecastPruner(bounds=np.array([0.0, 100.0]))._bounds == (0.0, 100.0)  # type: ignore[arg-type]
    assert ForecastPruner(bounds=[0, 1])._bounds == (0.0, 1.0)  # type: ignore[arg-type]
