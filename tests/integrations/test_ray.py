"""Ray Tune ForecastScheduler: a real Tuner run with a few tiny trials (one Ray session)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from runcast.errors import InvalidInputError  # noqa: E402
from runcast.integrations.ray import ForecastScheduler  # noqa: E402

TOTAL = 40
# the rule's mechanism on a handful of trials: compare with the best completed trial from the
# first result (a trial without a schedule is otherwise compared with the k-th best after a
# share of the budget, the defaults leave-one-sweep-out chose on sweeps of 40 trials)
ONE_BEST: dict[str, Any] = {"top_k": 1, "warmup_fraction": 0.0}


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def trainable(config: dict[str, Any]) -> None:
    # loss curves that flatten at `floor`: the first config (floor 0.1) wins by far
    for it in range(1, TOTAL + 1):
        tune.report({"loss": config["floor"] + 2.0 / it})


@pytest.mark.slow
def test_forecast_scheduler_stops_losers(ray_session: None, tmp_path: Any) -> None:
    sched = ForecastScheduler(
        total_steps=TOTAL, grace_period=8, n_min_trials=1, threshold=0.05, **ONE_BEST
    )
    tuner = tune.Tuner(
        trainable,
        param_space={
            "floor": tune.grid_search([0.1, 1.0, 1.5, 2.0]),
            "runcast_schedule": {"kind": "constant", "peak": 0.1, "total": TOTAL},
        },
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=sched),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    iters = {r.config["floor"]: r.metrics["training_iteration"] for r in results}
    assert iters[0.1] == TOTAL  # the first trial runs to the end: it sets the bar
    for floor in (1.0, 1.5, 2.0):
        # floors >= 1.0 cannot get under ~0.15: each is stopped soon after the grace period
        assert 8 <= iters[floor] < TOTAL / 2, iters
    stopped = [d for d in sched.decisions.values() if d.action == "prune"]
    assert len(stopped) == 3 and all(d.numbers["p_beat"] < 0.05 for d in stopped)
    assert "3 stopped, 1 completed" in sched.debug_string()
    # each trial's schedule spec was read from its config, for the analog forecast
    assert [s.kind for s in sched._schedules.values() if s is not None] == ["constant"] * 4


@pytest.mark.slow
def test_forecast_scheduler_infers_the_budget(ray_session: None, tmp_path: Any) -> None:
    # no total_steps: the last training_iteration a completed trial reported (as Optuna's
    # HyperbandPruner with max_resource="auto")
    # threshold 0.05: with one finished trial the default (leave-one-sweep-out's, for sweeps
    # of 40 trials) waits for more evidence than this 40-iteration test gives
    sched = ForecastScheduler(grace_period=8, n_min_trials=1, threshold=0.05, **ONE_BEST)
    tuner = tune.Tuner(
        trainable,
        param_space={"floor": tune.grid_search([0.1, 1.5])},
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=sched),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    iters = {r.config["floor"]: r.metrics["training_iteration"] for r in tuner.fit()}
    assert iters[0.1] == TOTAL and 8 <= iters[1.5] < TOTAL / 2, iters
    (stop,) = [d for d in sched.decisions.values() if d.action == "prune"]
    assert stop.numbers["final_step"] == TOTAL


def test_forecast_scheduler_settings() -> None:
    with pytest.raises(InvalidInputError, match="mode"):
        ForecastScheduler(total_steps=10, mode="median")
    with pytest.raises(InvalidInputError, match="total_steps"):
        ForecastScheduler(total_steps=0)
    s = ForecastScheduler(total_steps=10)
    assert s.set_search_properties("acc", "max") and s._rule.mode == "max"
    # the defaults the sweep benchmark reports
    assert (s.threshold, s._rule.n_min_trials, s._rule.peer_method) == (None, 2, "analog")
    opts = ForecastScheduler(total_steps=10, peer_options={"mix": 0.1})._rule.peer_options
    assert dict(opts) == {"mix": 0.1}  # the same settings as the Optuna pruner's
    rule = ForecastScheduler(total_steps=10, top_k=3, warmup_fraction=0.2)._rule
    assert (rule.top_k, rule.warmup_fraction) == (3, 0.2)
    with pytest.raises(InvalidInputError, match="top_k"):
        ForecastScheduler(total_steps=10, top_k=0)
    assert ForecastScheduler(total_steps=10, min_gain=0.01)._rule.min_gain == 0.01
    with pytest.raises(InvalidInputError, match="min_gain"):
        ForecastScheduler(total_steps=10, min_gain=1.5)
    with pytest.raises(InvalidInputError, match="bandwith"):
        ForecastScheduler(total_steps=10, peer_options={"bandwith": 0.3})
    # already set: Ray must not override what the user gave the constructor
    assert not ForecastScheduler(total_steps=10, metric="x").set_search_properties("y", None)


def diverging(config: dict[str, Any]) -> None:
    # a negative floor stands for a run that looks best at first, then blows up: inf from
    # iteration 10 on
    for it in range(1, TOTAL + 1):
        loss = float("inf") if config["floor"] < 0 and it >= 10 else abs(config["floor"]) + 2.0 / it
        tune.report({"loss": loss})


@pytest.mark.slow
def test_a_trial_that_reported_inf_does_not_break_later_decisions(
    ray_session: None, tmp_path: Any
) -> None:
    # the diverged trial is stopped, and its history (inf as missing) is a donor for the
    # trials after it: before, building its curve raised InvalidCurveError in every later
    # on_trial_result, and those trials errored
    sched = ForecastScheduler(
        total_steps=TOTAL, grace_period=4, n_min_trials=1, threshold=0.05, **ONE_BEST
    )
    tuner = tune.Tuner(
        diverging,
        param_space={"floor": tune.grid_search([0.1, -0.05, 1.0, 1.5])},
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=sched),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    assert results.num_errors == 0
    reasons = [d.reason for d in sched.decisions.values() if d.action == "prune"]
    assert any("diverged" in r for r in reasons) and len(reasons) == 3
