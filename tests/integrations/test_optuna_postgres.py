"""An Optuna study on an RDB storage in PostgreSQL, shared by two processes (two machines of a
sweep): runcast's pruner in the second prunes its trials from the trials the first completed,
read from the storage; every trial logs its curve to a runcast store in the same database."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("sqlalchemy")

from runcast.store import open_store  # noqa: E402

WORKER = textwrap.dedent(
    """
    import sys, optuna, runcast
    from runcast.integrations.optuna import ForecastPruner
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage, url, floors = sys.argv[1], sys.argv[2], [float(f) for f in sys.argv[3:]]
    # two finished trials are too few for the cautious defaults: the mechanism is under test
    pruner = ForecastPruner(total_steps=60, n_warmup_steps=10, n_min_trials=2, threshold=0.05,
                            top_k=1, warmup_fraction=0.0)
    study = optuna.create_study(study_name="sweep", storage=storage, load_if_exists=True,
                                pruner=pruner)
    todo = iter(floors)

    def objective(trial):
        floor = next(todo)
        trial.set_user_attr("floor", floor)
        with runcast.init(project="optuna", name=f"trial-{trial.number}", db=url,
                          config={"floor": floor}) as run:
            for step in range(1, 61):
                value = floor + 2.0 / step
                run.log({"loss": value}, step=step)
                trial.report(value, step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=len(floors), catch=())
    for n, d in sorted(pruner.decisions.items()):
        print(n, d.action, d.step, flush=True)
    """
)


def _worker(storage: str, url: str, floors: list[float]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, storage, url, *map(str, floors)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_a_second_process_prunes_from_the_trials_the_first_completed(postgres_url: str) -> None:
    storage = "postgresql+psycopg://" + postgres_url.split("://", 1)[1]
    _worker(storage, postgres_url, [0.5, 0.45])  # machine A: two good trials, completed
    out = _worker(storage, postgres_url, [2.0, 3.0])  # machine B: two that cannot win
    study = optuna.load_study(study_name="sweep", storage=storage)
    states = [t.state.name for t in study.trials]
    # B's own trials never completed: only A's, read back from PostgreSQL, set the bar
    assert states == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]
    pruned_at = [int(line.split()[2]) for line in out.splitlines() if " prune " in line]
    assert len(pruned_at) == 2 and all(10 <= s < 30 for s in pruned_at)  # soon after warm-up
    with open_store(postgres_url) as store:
        runs = {r.name: r for r in store.runs("optuna")}
        assert sorted(runs) == ["trial-0", "trial-1", "trial-2", "trial-3"]
        assert runs["trial-0"].n_points == 60 and runs["trial-0"].status == "finished"
        for name, step in zip(["trial-2", "trial-3"], pruned_at, strict=True):
            assert runs[name].n_points == step  # every step up to the prune, logged
            assert runs[name].status == "failed"  # TrialPruned left the run's with-block
