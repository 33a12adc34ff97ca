"""Ray's ForecastScheduler decides as Optuna's ForecastPruner when both count the same steps.

Trials are fed to the scheduler through the callbacks Tune's controller calls (as
bench/sweep_pruning.py replays a sweep), so the two integrations see the same curves.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("ray")
from ray.tune.schedulers import TrialScheduler  # noqa: E402

from runcast.integrations.optuna import ForecastPruner  # noqa: E402
from runcast.integrations.ray import ForecastScheduler  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
STEPS = np.arange(4, 81, 4)  # 20 reports, as steps 4..80
# final levels and LR schedules of 12 trials: the LR decays over the last 20% for "wsd" trials
FLOORS = [0.9, 0.5, 1.2, 0.7, 0.45, 1.5, 0.6, 2.0, 0.55, 0.8, 1.1, float("nan")]
WSD = [False, True, False, False, True, False, True, False, False, True, False, False]


def _curve(i: int) -> tuple[np.ndarray, np.ndarray]:
    floor = FLOORS[i]
    if math.isnan(floor):  # diverges at its 8th report
        values = 2.0 + 0.0 * STEPS
        values[7:] = np.nan
    else:
        values = floor + 1.5 * np.exp(-STEPS / 15)
    lr = np.where(WSD[i] & (STEPS > 64), 0.1 * (80 - STEPS) / 16, 0.1)
    return values, lr


class _Trial:
    """What Ray's schedulers read of a trial: its id and config."""

    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id
        self.config: dict[str, Any] = {}


def _optuna(**kw: Any) -> tuple[list[int], dict[int, float]]:
    pruner = ForecastPruner(**kw)
    study = optuna.create_study(pruner=pruner)
    for i in range(len(FLOORS)):
        trial = study.ask()
        values, lr = _curve(i)
        for s, v, r in zip(STEPS, values, lr, strict=True):
            trial.set_user_attr("runcast_lr", float(r))
            trial.report(float(v), int(s))
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            if math.isfinite(values[-1]):
                study.tell(trial, float(values[-1]))
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
    used = [t.last_step for t in study.trials]
    return used, {i: d.numbers.get("p_beat", -1.0) for i, d in pruner.decisions.items()}


def _ray(**kw: Any) -> tuple[list[int], dict[int, float], ForecastScheduler]:
    sched = ForecastScheduler(metric="loss", mode="min", time_attr="step", **kw)
    used = []
    for i in range(len(FLOORS)):
        ref = _Trial(f"t{i}")
        sched.on_trial_add(None, ref)
        values, lr = _curve(i)
        for k, (s, v, r) in enumerate(zip(STEPS, values, lr, strict=True), start=1):
            result = {"training_iteration": k, "step": int(s), "loss": float(v), "lr": float(r)}
            if k == STEPS.size:
                sched.on_trial_complete(None, ref, result)
                break
            if sched.on_trial_result(None, ref, result) == TrialScheduler.STOP:
                sched.on_trial_complete(None, ref, result)
                break
        used.append(int(s))
    p = {int(t[1:]): d.numbers.get("p_beat", -1.0) for t, d in sched.decisions.items()}
    return used, p, sched


@pytest.mark.parametrize(
    "kw",
    [
        {},  # the defaults (no schedule: top_k 2, threshold 0.002; with logged LRs: theirs)
        {"threshold": 0.05, "top_k": 1},
    ],
)
def test_ray_decides_as_optuna_on_the_same_steps_and_lrs(kw: dict[str, Any]) -> None:
    o_used, o_p = _optuna(**kw, n_warmup_reports=2)
    r_used, r_p, _ = _ray(**kw, grace_reports=2)
    # Optuna's last decision on each trial is at its last should_prune(); Ray's at its last
    # on_trial_result (a completed trial's final result goes to on_trial_complete)
    assert r_used == o_used
    # the same forecast at every stop (a completed trial's last decisions differ by design)
    stops = [i for i, u in enumerate(o_used) if u < STEPS[-1]]
    assert [r_p[i] for i in stops] == pytest.approx([o_p[i] for i in stops])
    assert sum(u < STEPS[-1] for u in o_used) >= 3  # some trials were pruned at all


def test_a_trial_that_ended_on_nan_is_no_completed_trial() -> None:
    _, _, sched = _ray(total_steps=80)
    # the diverged trial (t11) was stopped at its first NaN; one that runs to a NaN end (no
    # budget known yet, so nothing is decided) fails, as in Optuna: no final value to beat
    assert "t11" in sched._stopped and "t11" not in sched._finals
    late = ForecastScheduler(metric="loss", mode="min", time_attr="step")
    ref = _Trial("x")
    late.on_trial_add(None, ref)
    late.on_trial_result(None, ref, {"step": 4, "loss": 2.0})
    late.on_trial_complete(None, ref, {"step": 80, "loss": float("nan")})
    assert late._finals == {} and "0 completed" in late.debug_string()
    # the logged LRs are kept per trial, in the steps the rule counts
    assert sched._lrs["t1"][0][:3] == [4, 8, 12] and sched._lrs["t1"][1][0] == 0.1


@pytest.mark.parametrize(
    ("metric", "bounds", "stopped"),
    [("val_acc", "auto", 3), ("score", "auto", 0), ("score", (0.0, 1.0), 3)],
)
def test_ray_bounds_stop_trials_that_can_only_tie_a_perfect_accuracy(
    metric: str, bounds: Any, stopped: int
) -> None:
    # as the Optuna pruner: two trials end at an accuracy of 1.0, three more can only tie them.
    # The metric's name says it cannot pass 1.0 ("score" says nothing: unbounded)
    sched = ForecastScheduler(metric=metric, mode="max", bounds=bounds)
    rng = np.random.default_rng(0)
    clean = 1 - 0.5 * np.exp(-np.arange(1, 41) / 5)
    for i in range(5):
        ref = _Trial(f"t{i}")
        sched.on_trial_add(None, ref)
        values = np.minimum(np.round((clean + 0.02 * rng.standard_normal(40)) * 38) / 38, 1.0)
        values[-1] = 1.0
        for k, v in enumerate(values, start=1):
            result = {"training_iteration": k, metric: float(v)}
            if k == values.size:
                sched.on_trial_complete(None, ref, result)
            elif sched.on_trial_result(None, ref, result) == TrialScheduler.STOP:
                sched.on_trial_complete(None, ref, result)
                break
    assert len(sched._stopped) == stopped
    assert all(
        d.numbers["final_hi80"] <= 1.0 for d in sched.decisions.values() if d.action == "prune"
    )


def test_one_rule_serves_both_integrations_and_is_not_changed() -> None:
    from runcast.steer import PruneRule

    rule = PruneRule(top_k=3, warmup_steps=4, bounds=(0.0, 1.0))
    pruner = ForecastPruner(rule=rule)
    sched = ForecastScheduler(metric="acc", mode="max", rule=rule)
    for own in (pruner._rule, sched._rule):
        assert own is not rule and (own.top_k, own.warmup_steps) == (3, 4)
    assert sched._rule.mode == "max" and rule.mode == "min"  # each sets its own copy
    assert pruner._bounds == sched._bounds == (0.0, 1.0)  # the rule's range is kept
    # the same decisions as the settings given one by one
    assert _optuna(rule=PruneRule(threshold=0.05, top_k=1)) == _optuna(threshold=0.05, top_k=1)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda rule: ForecastPruner(rule=rule, n_warmup_steps=5), r"\['n_warmup_steps'\]"),
        (lambda rule: ForecastScheduler(rule=rule, grace_reports=3), r"\['grace_reports'\]"),
        (lambda rule: ForecastPruner(rule={"top_k": 2}), "PruneRule, but got dict"),
    ],
)
def test_a_rule_and_its_settings_together_are_refused_by_name(make: Any, match: str) -> None:
    from runcast.errors import InvalidInputError
    from runcast.steer import PruneRule

    with pytest.raises(InvalidInputError, match=match):
        make(PruneRule(top_k=2))
