"""End to end, sweeps as users run them: every trial trains an MLP on the bundled digits in a plain
loop (a cosine torch scheduler, TrainingMonitor given it, one runcast run per trial) and reports
its validation loss to Optuna's ForecastPruner or Ray Tune's ForecastScheduler; no schedule
spec is typed. Every trial's metrics are in the store, the dashboard forecasts a trial still
training from 20% of its planned length, and ``runcast forecast RUN --from STEP`` uses the
trial's scheduler."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import runcast

STEPS, EVERY, BATCH = 100, 10, 64


def train_trial(
    lr: float,
    db: str,
    name: str,
    report: Callable[[int, float], bool],
    e2e: Any = None,
) -> float:
    """Train one trial; ``report(step, val_loss)`` returns True to stop it. With ``e2e``, the
    dashboard's forecast is checked at 20% of the run."""
    from sklearn.datasets import load_digits

    from runcast.integrations.torch import TrainingMonitor

    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    xt = torch.tensor(x / 16.0, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long)
    xv, yv, xt, yt = xt[1500:], yt[1500:], xt[:1500], yt[:1500]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS)
    gen = torch.Generator().manual_seed(1)
    val = float("nan")
    with runcast.init(project="sweep", name=name, db=db, config={"lr": lr}) as run:
        mon = TrainingMonitor(model, opt, run, schedule=sched, total_steps=STEPS)
        for step in range(STEPS):
            idx = torch.randint(0, len(yt), (BATCH,), generator=gen)
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            mon.record(step, loss)
            opt.step()
            sched.step()
            if (step + 1) % EVERY == 0:
                with torch.no_grad():
                    val = float(torch.nn.functional.cross_entropy(model(xv), yv))
                run.log({"val_loss": val}, step=step)
                if e2e is not None and step + 1 == STEPS // 5:
                    e2e.check_live_forecast(db, run, planned_end=STEPS - 1)
                if report(step, val):
                    break
    return val


def _check_store(db: Path, e2e: Any, n_trials: int) -> None:
    store = runcast.open_store(db)
    runs = store.runs(project="sweep")
    assert len(runs) == n_trials
    for info in runs:
        assert {"loss", "lr", "grad_norm", "param_norm", "val_loss"} <= set(store.keys(info.id))
        e2e.check_plan_matches_lr(store, info.id)
    out = e2e.cli_forecast_from(db, runs[-1].id, STEPS // 5, key="loss")
    assert out["schedule_known"] is True and out["until"] == STEPS - 1


def test_optuna_end_to_end(tmp_path: Path, e2e: Any) -> None:
    optuna = pytest.importorskip("optuna")
    from runcast.integrations.optuna import ForecastPruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = str(tmp_path / "optuna.db")
    pruner = ForecastPruner(total_steps=STEPS, n_warmup_steps=20, n_min_trials=1)
    study = optuna.create_study(pruner=pruner, sampler=optuna.samplers.TPESampler(seed=0))

    def objective(trial: Any) -> float:
        lr = trial.suggest_float("lr", 0.01, 0.5, log=True)

        def report(step: int, val: float) -> bool:
            trial.report(val, step)
            return bool(trial.should_prune())

        first = e2e if trial.number == 0 else None
        val = train_trial(lr, db, f"trial{trial.number}", report, first)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return val

    study.optimize(objective, n_trials=3)
    _check_store(Path(db), e2e, 3)
    # a decision with its reason for every trial that reported past the warm-up
    assert set(pruner.decisions) == {0, 1, 2}


@pytest.mark.slow
def test_ray_tune_end_to_end(tmp_path: Path, e2e: Any) -> None:
    ray = pytest.importorskip("ray")
    from ray import tune

    from runcast.integrations.ray import ForecastScheduler

    db = str(tmp_path / "ray.db")

    def trainable(config: dict[str, Any]) -> None:
        def report(step: int, val: float) -> bool:
            tune.report({"val_loss": val, "step": step + 1})
            return False

        train_trial(config["lr"], config["db"], f"lr{config['lr']}", report)

    sched = ForecastScheduler(total_steps=STEPS, time_attr="step", grace_period=20, n_min_trials=1)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        tuner = tune.Tuner(
            trainable,
            param_space={"lr": tune.grid_search([0.05, 0.2]), "db": db},
            tune_config=tune.TuneConfig(metric="val_loss", mode="min", scheduler=sched),
            run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), verbose=0),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    assert not results.errors
    _check_store(Path(db), e2e, 2)
    assert len(sched.decisions) == 2
