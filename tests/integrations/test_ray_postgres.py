"""A Ray Tune sweep on a local Ray cluster of 2 worker processes, stopped by runcast's
ForecastScheduler, with every trial logging to one PostgreSQL store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

import runcast  # noqa: E402
from runcast.integrations.ray import ForecastScheduler  # noqa: E402
from runcast.store import open_store  # noqa: E402

TOTAL = 30


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    # two CPUs: two trials train at once, each in its own Ray worker process
    ray.init(
        num_cpus=2,
        object_store_memory=200 * 2**20,  # trials pass no objects; another test may run Ray too
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


def trainable(config: dict[str, Any], url: str) -> None:
    run = runcast.init(project="ray-sweep", name=f"floor-{config['floor']}", config=config, db=url)
    for it in range(1, TOTAL + 1):
        loss = config["floor"] + 2.0 / it
        run.log({"loss": loss}, step=it)
        run.flush()  # in the store before Tune hears of it: a stopped trial loses nothing
        time.sleep(0.02)
        tune.report({"loss": loss})
    run.finish()


@pytest.mark.slow
def test_every_trial_of_a_ray_sweep_logs_to_one_postgres_store(
    ray_cluster: None, postgres_url: str, tmp_path: Any
) -> None:
    # top_k 1, no warm-up share: the mechanism on 5 trials without schedules
    sched = ForecastScheduler(
        total_steps=TOTAL,
        grace_period=6,
        n_min_trials=1,
        threshold=0.05,
        top_k=1,
        warmup_fraction=0.0,
    )
    floors = [0.1, 0.2, 1.5, 2.0, 2.5]
    tuner = tune.Tuner(
        tune.with_parameters(trainable, url=postgres_url),
        param_space={"floor": tune.grid_search(floors)},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", scheduler=sched, max_concurrent_trials=2
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    iters = {r.config["floor"]: r.metrics["training_iteration"] for r in results}
    with open_store(postgres_url) as store:
        runs = {r.name: r for r in store.runs("ray-sweep")}
        assert sorted(runs) == sorted(f"floor-{f}" for f in floors)  # every trial logged
        for floor, n in iters.items():
            info = runs[f"floor-{floor}"]
            # every reported iteration is in the store, no more: the loss at each step exact
            assert info.n_points == n
            curve = store.curve(info.id, "loss")
            assert curve.value.tolist() == [floor + 2.0 / it for it in range(1, n + 1)]
            if n == TOTAL:
                assert info.status == "finished"
        # the trials ran in separate worker processes, writing to the store at once
        assert len({r.pid for r in runs.values()}) >= 2
    stopped = [d for d in sched.decisions.values() if d.action == "prune"]
    assert stopped and all(d.numbers["p_beat"] < 0.05 for d in stopped)
    assert iters[0.1] == TOTAL and min(iters.values()) < TOTAL  # losers stopped early
