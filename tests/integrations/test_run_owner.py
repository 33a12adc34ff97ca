"""RunOwner: the run the HF and Lightning callbacks record into, started and finished once."""

from __future__ import annotations

from pathlib import Path

import pytest

import runcast
from runcast.integrations._run_owner import RunOwner


@pytest.mark.parametrize(
    ("user", "framework", "merged"),
    [
        ({}, {"lr": 0.5}, {"lr": 0.5}),
        ({"lr": 0.1}, {"lr": 0.5, "epochs": 3}, {"lr": 0.1, "epochs": 3}),  # the user's wins
        (None, {}, {}),
    ],
)
def test_started_run_merges_configs_and_is_finished(
    db_path: Path, user: dict[str, float] | None, framework: dict[str, float], merged: object
) -> None:
    owner = RunOwner(project="p", name="n", db=str(db_path), config=user, run=None)
    owner.start_run("n", framework)
    run_id = owner.run.id
    owner.start_run("other", {"x": 1})  # a second start (e.g. a second fit) keeps the run
    assert owner.run.id == run_id
    owner.finish_run()
    with runcast.open_store(db_path) as store:
        info = store.run(run_id)
        # the run the owner started is recorded with the merged config and finished by it
        assert (info.project, info.name, info.config) == ("p", "n", merged)
        assert info.status == "finished"
        assert len(store.runs()) == 1


def test_a_given_run_is_left_to_its_caller(db_path: Path) -> None:
    run = runcast.init(project="p", name="mine", db=db_path)
    owner = RunOwner(project="ignored", name=None, db=None, config=None, run=run)
    owner.start_run("x", {"lr": 1.0})
    owner.finish_run()
    assert owner.run is run  # no second run was started
    with runcast.open_store(db_path) as store:
        # the caller's run is still running: finishing it is the caller's job
        assert store.run(run.id).status == "running"
    run.finish()
