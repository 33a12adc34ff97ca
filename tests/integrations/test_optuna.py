"""Optuna ForecastPruner: a real study, real should_prune(), the real runcast forecast."""

from __future__ import annotations

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
    pruner = ForecastPruner(total_steps=TOTAL, n_warmup_steps=10, n_min_trials=1)
    study = optuna.create_study(direction=direction, pruner=pruner)
    study.optimize(_objective(floors, sign), n_trials=len(floors))
    states = [t.state.name for t in study.trials]
    # trial 0 sets the bar; 2.0 and 3.0 cannot reach ~0.53; 0.45 will beat it and must survive
    assert states == ["COMPLETE", "PRUNED", "COMPLETE", "PRUNED"]
    for n in (1, 3):
        d = pruner.decisions[n]
        assert d.action == "prune" and d.numbers["p_beat"] < 0.05
        assert 10 <= d.step < 20  # soon after the warm-up, not at the end
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
        total_steps=TOTAL, n_warmup_steps=5, interval_steps=4, min_points=1, forecaster=pessimist
    )
    study = optuna.create_study(pruner=pruner)
    study.optimize(_objective([0.5, 0.1]), n_trials=2)
    assert study.trials[1].state.name == "PRUNED"
    assert calls == [5]  # first decision step after warm-up; it pruned at once
    assert study.trials[1].last_step == 5


def test_pruner_needs_total_steps_and_single_objective() -> None:
    study = optuna.create_study(pruner=ForecastPruner())
    with pytest.raises(InvalidInputError, match="runcast_total_steps"):
        study.optimize(_objective([0.5]), n_trials=1)
    multi = optuna.create_study(directions=["minimize", "minimize"], pruner=ForecastPruner(10))
    multi.ask()
    with pytest.raises(InvalidInputError, match="single-objective"):
        ForecastPruner(10).prune(multi, multi.trials[0])


@pytest.mark.parametrize("kwargs", [{"total_steps": 0}, {"interval_steps": 0}, {"threshold": 1.5}])
def test_pruner_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        ForecastPruner(**kwargs)
