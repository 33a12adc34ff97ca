from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import runcast
from runcast.errors import InvalidInputError, RuncastWarning, StoreError
from runcast.store import open_store


def _curve(db: Path | str, run_id: str, key: str) -> tuple[list[int], list[float]]:
    with open_store(db) as store:
        c = store.curve(run_id, key)
        return c.step.tolist(), c.value.tolist()


def test_log_auto_steps_like_wandb_and_finish_marks_finished(store_db: Path | str) -> None:
    run = runcast.init(project="p", name="n", config={"lr": 0.1}, db=store_db)
    run.log({"loss": 3.0})
    run.log({"loss": 2.0})
    run.log({"loss": 1.5}, step=10)
    run.log({"loss": 1.0})  # auto step continues after the largest step logged
    run.finish()
    assert _curve(store_db, run.id, "loss") == ([0, 1, 10, 11], [3.0, 2.0, 1.5, 1.0])
    with open_store(store_db) as store:
        info = store.run(run.id)
    assert (info.name, info.project, info.status, info.config) == (
        "n",
        "p",
        "finished",
        {"lr": 0.1},
    )
    assert info.end_time is not None and info.end_time >= info.start_time
    assert run.db == store_db


def test_numpy_scalars_and_scalar_tensors_are_recorded_exactly(store_db: Path | str) -> None:
    with runcast.init(db=store_db) as run:
        run.log({"np32": np.float32(0.5), "np64": np.int64(7), "t": torch.tensor(0.25)}, step=0)
        loss = torch.tensor(2.0, requires_grad=True) * 1.5  # a live graph node
        run.log({"np32": np.float32(1.5), "np64": np.int64(8), "t": loss}, step=1)
    assert _curve(store_db, run.id, "np32") == ([0, 1], [0.5, 1.5])
    assert _curve(store_db, run.id, "np64") == ([0, 1], [7.0, 8.0])
    assert _curve(store_db, run.id, "t") == ([0, 1], [0.25, 3.0])


def test_nan_and_inf_are_missing_and_counted_in_one_warning(store_db: Path | str) -> None:
    run = runcast.init(db=store_db)
    for step, v in enumerate([1.0, float("nan"), float("inf"), 0.5, -float("inf")]):
        run.log({"loss": v, "ok": 1.0}, step=step)
    with pytest.warns(RuncastWarning, match=r"3 value\(s\) were NaN or inf.*loss \(3\)") as rec:
        run.finish()
    assert len([w for w in rec if issubclass(w.category, RuncastWarning)]) == 1
    steps, values = _curve(store_db, run.id, "loss")
    assert steps == [0, 1, 2, 3, 4]  # missing points keep their step
    assert np.isnan(values).tolist() == [False, True, True, False, True]


@pytest.mark.parametrize(
    ("data", "step", "match"),
    [
        ({"loss": "high"}, None, r"loss='high' at step 2"),
        ({"loss": 1.0}, -3, "cannot be negative"),
        ({"loss": 1.0}, 2.5, r"step=2\.5"),
        ({"loss": 1.0, "bad": torch.ones(3)}, None, r"bad=.*shape \(3,\)"),
    ],
)
def test_bad_input_raises_and_loses_nothing(
    store_db: Path | str, data: dict[str, object], step: object, match: str
) -> None:
    run = runcast.init(db=store_db)
    run.log({"loss": 3.0})
    run.log({"loss": 2.0})
    with pytest.raises(InvalidInputError, match=match):
        run.log(data, step=step)  # type: ignore[arg-type]
    run.log({"loss": 1.0})
    run.finish()
    # the points before and after are there; nothing of the bad call was recorded
    assert _curve(store_db, run.id, "loss") == ([0, 1, 2], [3.0, 2.0, 1.0])
    with open_store(store_db) as store:
        assert store.keys(run.id) == ["loss"]


def test_the_callers_dict_can_be_reused(store_db: Path | str) -> None:
    metrics = {"loss": 1.0}
    with runcast.init(db=store_db) as run:
        run.log(metrics)
        metrics["loss"] = 99.0  # mutated after logging, before the writer flushed
        run.log({"loss": 0.5})
    assert _curve(store_db, run.id, "loss")[1] == [1.0, 0.5]


@pytest.mark.parametrize(
    ("exc", "status"), [(None, "finished"), (ValueError, "failed"), (KeyboardInterrupt, "killed")]
)
def test_context_manager_status(
    store_db: Path | str, exc: type[BaseException] | None, status: str
) -> None:
    try:
        with runcast.init(db=store_db) as run:
            run.log({"loss": 1.0})
            if exc is not None:
                raise exc()
    except (ValueError, KeyboardInterrupt):
        pass
    with open_store(store_db) as store:
        assert store.run(run.id).status == status
        assert store.summary(run.id)["loss"].n_points == 1  # flushed even on failure


def test_logging_after_finish_is_an_error_and_finish_is_idempotent(store_db: Path | str) -> None:
    run = runcast.init(db=store_db)
    assert not run.finished
    run.finish()
    run.finish()
    assert run.finished  # the public flag callbacks read instead of private attributes
    with pytest.raises(StoreError, match="is finished"):
        run.log({"loss": 1.0})


def test_resume_continues_after_the_last_step(store_db: Path | str) -> None:
    with runcast.init(db=store_db, name="long") as run:
        for _ in range(5):
            run.log({"loss": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # continuing must not fork nor warn
        with runcast.init(db=store_db, resume=run.id, config={"phase": 2}) as again:
            assert again.id == run.id and again.step == 5
            again.log({"loss": 0.5})
    assert _curve(store_db, run.id, "loss")[0] == [0, 1, 2, 3, 4, 5]
    with open_store(store_db) as store:
        assert store.run(run.id).config == {"phase": 2}
        assert store.run(run.id).status == "finished"


def test_resume_that_logs_an_existing_step_forks(store_db: Path | str) -> None:
    with runcast.init(db=store_db, name="base") as run:
        for step in range(10):
            run.log({"loss": float(step)}, step=step)
    parent = run.id
    resumed = runcast.init(db=store_db, resume=parent)
    with pytest.warns(RuncastWarning, match=rf"Run {parent} already has step 6.*forked"):
        resumed.log({"loss": 60.0}, step=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fork's next steps are not "going backwards"
        resumed.log({"loss": 70.0})
    resumed.finish()
    assert resumed.id != parent
    assert (resumed.parent_id, resumed.fork_step) == (parent, 6)
    # the fork holds the parent's points before step 6, then the new ones
    assert _curve(store_db, resumed.id, "loss") == (
        [0, 1, 2, 3, 4, 5, 6, 7],
        [0, 1, 2, 3, 4, 5, 60, 70],
    )
    # the parent is untouched: same points, same status as before the resume
    assert _curve(store_db, parent, "loss")[1] == [float(s) for s in range(10)]
    with open_store(store_db) as store:
        assert store.run(parent).status == "finished"
        child = store.run(resumed.id)
        assert (child.parent_id, child.fork_step, child.status) == (parent, 6, "finished")


def test_resume_of_a_run_still_running_is_refused(store_db: Path | str) -> None:
    run = runcast.init(db=store_db)
    with pytest.raises(StoreError, match="still running"):
        runcast.init(db=store_db, resume=run.id)
    run.finish()


def test_a_step_going_backwards_warns_once_and_keeps_both(store_db: Path | str) -> None:
    run = runcast.init(db=store_db)
    run.log({"loss": 1.0}, step=10)
    with pytest.warns(RuncastWarning, match="step 5 was logged after step 10"):
        run.log({"loss": 2.0}, step=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.log({"loss": 3.0}, step=4)  # warned once per run only
    run.finish()
    assert _curve(store_db, run.id, "loss") == ([4, 5, 10], [3.0, 2.0, 1.0])


def test_non_zero_rank_records_nothing_by_default(
    store_db: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    run = runcast.init(db=store_db)
    assert not run.enabled and not run.finished  # records nothing, yet is not finished
    run.log({"loss": 1.0})
    run.finish()
    assert run.finished
    with pytest.raises(StoreError):  # not even a store was made
        open_store(store_db, create=False).close()
    # a bug that logs after finish() shows on every rank, as on rank 0
    with pytest.raises(StoreError, match="is finished"):
        run.log({"loss": 0.5})


def test_every_rank_records_its_own_run_when_asked(
    store_db: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    with runcast.init(db=store_db, name="ddp", rank_zero_only=False, config={"lr": 1}) as run:
        run.log({"loss": 1.0})
    with open_store(store_db) as store:
        info = store.run(run.id)
    assert info.name == "ddp/rank3"
    assert info.config == {"lr": 1, "rank": 3, "world_size": 4}


def test_flush_every_must_be_positive(store_db: Path | str) -> None:
    with pytest.raises(InvalidInputError, match="flush_every=0"):
        runcast.init(db=store_db, flush_every=0)


def _run_script(db: Path | str, body: str) -> subprocess.CompletedProcess[str]:
    code = f"import runcast\nrun = runcast.init(db={str(db)!r}, name='child')\n" + textwrap.dedent(
        body
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("tail", "status", "rc"),
    [("pass", "finished", 0), ("raise RuntimeError('boom')", "failed", 1)],
)
def test_interpreter_exit_flushes_and_sets_the_status(
    store_db: Path | str, tail: str, status: str, rc: int
) -> None:
    proc = _run_script(store_db, f"for s in range(500):\n    run.log({{'loss': s}})\n{tail}\n")
    assert proc.returncode == rc, proc.stderr
    with open_store(store_db) as store:
        info = store.runs()[0]
        assert info.status == status
        assert store.curve(info.id, "loss").step.tolist() == list(range(500))


def test_a_fork_after_continuing_keeps_the_continued_points_in_the_parent(
    store_db: Path | str,
) -> None:
    with runcast.init(db=store_db) as run:
        for step in range(5):
            run.log({"loss": float(step)}, step=step)
    resumed = runcast.init(db=store_db, resume=run.id)
    resumed.log({"loss": 5.0}, step=5)  # continues the parent
    with pytest.warns(RuncastWarning, match="already has step 2"):
        resumed.log({"loss": 20.0}, step=2)  # a step the parent has: fork
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed.log({"loss": 30.0}, step=3)
    resumed.finish()
    assert _curve(store_db, run.id, "loss")[0] == [0, 1, 2, 3, 4, 5]
    assert _curve(store_db, resumed.id, "loss") == ([0, 1, 2, 3], [0.0, 1.0, 20.0, 30.0])


def test_a_huge_step_is_refused_and_the_points_around_it_are_kept(store_db: Path | str) -> None:
    # before the fix, step=2**63 was buffered and failed every later write: 0..9 were lost
    run = runcast.init(db=store_db)
    for s in range(5):
        run.log({"loss": float(s)})
    with pytest.raises(InvalidInputError, match="largest step"):
        run.log({"loss": 1.0}, step=2**63)
    for s in range(5, 10):
        run.log({"loss": float(s)})
    run.finish()
    assert _curve(store_db, run.id, "loss") == (list(range(10)), [float(s) for s in range(10)])


def test_a_meta_tensor_is_refused_and_earlier_points_are_kept(store_db: Path | str) -> None:
    # before the fix, it was accepted and its conversion failed the writer's batch at finish
    run = runcast.init(db=store_db)
    run.log({"loss": 2.0})
    with pytest.raises(InvalidInputError, match="meta"):
        run.log({"loss": torch.tensor(1.0, device="meta")})
    run.log({"loss": 1.0})
    run.finish()
    assert _curve(store_db, run.id, "loss") == ([0, 1], [2.0, 1.0])


@pytest.mark.parametrize("data", [None, 5, "loss", [1.0]], ids=["None", "int", "str", "list"])
def test_log_of_something_not_a_dict_says_so(store_db: Path | str, data: Any) -> None:
    with runcast.init(db=store_db) as run, pytest.raises(InvalidInputError, match="takes a dict"):
        run.log(data)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"project": None}, "project=None"),  # was 'Could not draw a unique run id'
        ({"project": 3}, "project must be a string"),
        ({"name": 5}, "name must be a string"),
        ({"resume": 5}, "resume must be a string"),  # was AttributeError
        ({"config": "lr=0.1"}, "config must be a dict"),  # was ValueError
        ({"config": 5}, "config must be a dict"),  # was TypeError
        ({"flush_every": "1"}, "flush_every"),  # was TypeError
        ({"flush_every": float("nan")}, "flush_every"),  # was accepted
    ],
)
def test_bad_init_arguments_are_clear_errors_and_record_nothing(
    store_db: Path | str, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        runcast.init(db=store_db, **kwargs)
    with open_store(store_db) as store:
        assert store.runs() == []  # refused before any run was created


def test_resume_with_a_config_json_cannot_hold_is_a_clear_error(store_db: Path | str) -> None:
    with runcast.init(db=store_db) as run:
        run.log({"loss": 1.0})
    with pytest.raises(InvalidInputError, match="cannot be stored as JSON"):  # was TypeError
        runcast.init(db=store_db, resume=run.id, config={(1, 2): 3})


def test_finish_says_so_when_the_store_file_was_deleted_under_the_run(db_path: Path) -> None:
    # SQLite went on writing into the deleted file: finish() returned and the points were gone
    run = runcast.init(db=db_path)
    run.log({"loss": 1.0})
    run.flush()
    for f in db_path.parent.glob(db_path.name + "*"):
        f.unlink()
    run.log({"loss": 0.5})
    with pytest.raises(StoreError, match="was deleted or replaced while the run was recording"):
        run.finish()


def test_a_relative_store_path_still_names_the_same_file_after_a_chdir(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the writer thread opened the relative path after the chdir: another store got the points
    monkeypatch.chdir(db_path.parent)
    run = runcast.init(db=db_path.name)
    monkeypatch.chdir(tmp_path.parent)  # training code that changes directory
    run.log({"loss": 1.0})
    run.finish()  # the same file: no false alarm either
    assert _curve(db_path, run.id, "loss") == ([0], [1.0])
    assert not (tmp_path.parent / db_path.name).exists()  # no second store made elsewhere


@pytest.mark.parametrize("value", [1.0, torch.tensor(1.0)], ids=["float", "tensor"])
def test_an_empty_metric_key_is_refused_at_log(store_db: Path | str, value: Any) -> None:
    # the fast path took any str key: '' was buffered, and the store refuses it later
    run = runcast.init(db=store_db)
    run.log({"loss": 2.0})
    with pytest.raises(InvalidInputError, match="non-empty strings"):
        run.log({"": value})
    run.finish()  # no error: the refused point never reached the writer
    assert _curve(store_db, run.id, "loss") == ([0], [2.0])
