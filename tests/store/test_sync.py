"""runcast.store.sync: a local store copied into another (SQLite, PostgreSQL), exactly, once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import runcast
from runcast.store import Series, SQLStore, open_store, sync
from runcast.store import _sync as sync_mod


def _same_contents(a: SQLStore, b: SQLStore) -> None:
    """Every run of ``a`` is in ``b`` with the same record and the same raw points."""
    mine = {r.id: r for r in a.runs()}
    theirs = {r.id: r for r in b.runs()}
    assert set(mine) <= set(theirs)
    for run_id, info in mine.items():
        got = theirs[run_id]
        assert (got.name, got.project, got.status, got.parent_id, got.fork_step) == (
            info.name,
            info.project,
            info.status,
            info.parent_id,
            info.fork_step,
        )
        assert (got.start_time, got.end_time, got.n_points) == (
            info.start_time,
            info.end_time,
            info.n_points,
        )
        assert a.keys(run_id) == b.keys(run_id)
        for key in a.keys(run_id):
            p, q = a.points(run_id, key), b.points(run_id, key)
            np.testing.assert_array_equal(p.step, q.step)
            np.testing.assert_array_equal(p.value, q.value)  # NaN == NaN here
            np.testing.assert_array_equal(p.wall, q.wall)


def _record_local(db: Path) -> tuple[str, str]:
    """A finished run, a fork of it, a failed run with odd values: what a laptop holds."""
    with runcast.init(project="laptop", name="base", config={"lr": 0.1}, db=db) as run:
        for step in range(300):
            run.log({"loss": 3.0 / (step + 1), "acc": step / 300}, step=step)
    resumed = runcast.init(db=db, resume=run.id)
    with pytest.warns(runcast.RuncastWarning, match="forked"):
        resumed.log({"loss": 9.0}, step=100)  # a step the run has: a fork
    resumed.finish()
    failed = runcast.init(project="laptop", name="odd", config={"n": float("nan")}, db=db)
    failed.log({"loss": float("nan")}, step=5)
    with pytest.warns(runcast.RuncastWarning, match="after step 5"):
        failed.log({"loss": 2.0}, step=3)  # backwards: kept in write order
    failed.log({"loss": 1.0}, step=3)  # the same step twice
    with pytest.warns(runcast.RuncastWarning, match="NaN"):
        failed.finish("failed")
    return run.id, resumed.id


def test_sync_copies_runs_forks_and_statuses_exactly_and_twice_adds_nothing(
    tmp_path: Path, store_db: Path | str
) -> None:
    local = tmp_path / "local.db"
    parent, fork = _record_local(local)
    with open_store(local) as src, open_store(store_db) as dst:
        first = sync(src, dst)
        assert sorted(first.new) == sorted(r.id for r in src.runs())  # ids kept
        assert first.points == sum(r.n_points for r in src.runs()) == 300 * 2 + 100 * 2 + 4
        _same_contents(src, dst)
        assert dst.run(fork).parent_id == parent and dst.run(fork).fork_step == 100
        assert dst.run("odd").status == "failed"
        assert dst.run("odd").config["n"] != dst.run("odd").config["n"]  # NaN kept
        before = dst._fetch("SELECT count(*) FROM chunks")[0][0]
        again = sync(src, dst)
        # idempotent: nothing new, nothing rewritten, no new chunk
        assert (again.changed, again.points, again.unchanged) == (False, 0, 3)
        assert dst._fetch("SELECT count(*) FROM chunks")[0][0] == before


def test_a_sync_picks_up_points_and_status_logged_since_the_last_one(
    tmp_path: Path, store_db: Path | str
) -> None:
    local = tmp_path / "local.db"
    run = runcast.init(project="p", db=local, flush_every=60)
    run.log({"loss": 1.0}, step=0)
    run.flush()
    with open_store(local) as src, open_store(store_db) as dst:
        assert sync(src, dst).points == 1
        assert dst.run(run.id).status == "running"  # a live run is live there too
        run.log({"loss": 0.5}, step=1)
        run.log({"lr": 0.1}, step=1)  # a metric that is new
        run.finish()
        later = sync(src, dst)
        assert (later.updated, later.points) == ([run.id], 2)
        assert dst.run(run.id).status == "finished"
        assert dst.curve(run.id, "loss").value.tolist() == [1.0, 0.5]
        _same_contents(src, dst)


def test_a_run_interrupted_mid_copy_is_never_shown_finished_and_the_next_sync_completes_it(
    tmp_path: Path, store_db: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "local.db"
    with runcast.init(project="p", name="big", db=local) as run:
        for step in range(5000):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
    real = sync_mod._chunks_from
    calls = {"n": 0}

    def cut(store: SQLStore, run_id: str, key: str, skip: int) -> Series:
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt  # the user's Ctrl-C between two batches
        return real(store, run_id, key, skip)

    with open_store(local) as src, open_store(store_db) as dst:
        monkeypatch.setattr(sync_mod, "_chunks_from", cut)
        src_run = src.run(run.id)
        with runcast.init(project="p", name="second", db=local) as other:
            other.log({"loss": 1.0})
        with pytest.raises(KeyboardInterrupt):
            sync(src, dst, batch_points=1000)
        # the first run is whole; the second was started, not done: it must not read finished
        assert dst.run(run.id).n_points == 5000
        assert dst.run("second").status == "running"  # this process, which is alive, owns it
        monkeypatch.setattr(sync_mod, "_chunks_from", real)
        done = sync(src, dst, batch_points=1000)
        assert done.updated == [other.id] and done.points == 1
        assert dst.run("second").status == "finished"
        assert src.run(run.id) == src_run
        _same_contents(src, dst)


def test_kill_9_during_sync_then_sync_again_gives_an_exact_copy(
    tmp_path: Path, store_db: Path | str
) -> None:
    local = tmp_path / "local.db"
    with open_store(local) as src:
        for i in range(6):
            info = src.create_run("p", f"r{i}", status="finished", end_time=2e9)
            with src.writer(info.id) as w:
                n = 40_000
                w.write({"loss": Series.of(np.arange(n), np.linspace(3, 1, n), wall=1.5e9)})
    code = textwrap.dedent(
        f"""
        import runcast
        from runcast.store import sync
        with runcast.open_store({str(local)!r}) as a, runcast.open_store({str(store_db)!r}) as b:
            print("start", flush=True)
            sync(a, b, batch_points=500)
        """
    )
    partial = []
    for delay in (0.0, 0.5, 1.0):  # kills at different moments of the copy
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline() == "start\n"
        if delay:
            time.sleep(delay)
        else:
            # the first kill lands mid-copy whatever the machine's speed: as soon as the target
            # holds some points (a fixed delay was past the end of the copy on a quiet machine)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with open_store(store_db) as dst:
                    if sum(r.n_points for r in dst.runs()):
                        break
                time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        with open_store(store_db) as dst:  # the target opens and reads after every kill
            for info in dst.runs():
                assert info.status in ("killed", "finished")  # the dead syncer's runs: killed
                if info.n_points:
                    assert len(dst.curve(info.id, "loss")) == info.n_points
            partial.append(sum(r.n_points for r in dst.runs()) < 6 * 40_000)
    assert partial[0]  # the first kill at least landed mid-copy: the resume had work to do
    with open_store(local) as src, open_store(store_db) as dst:
        sync(src, dst)
        _same_contents(src, dst)
        assert not sync(src, dst).changed


def test_a_sync_while_the_run_trains_ends_with_every_point(
    tmp_path: Path, store_db: Path | str
) -> None:
    local = tmp_path / "local.db"
    code = textwrap.dedent(
        f"""
        import time, runcast
        run = runcast.init(project="live", name="train", db={str(local)!r}, flush_every=0.02)
        print(run.id, flush=True)
        for step in range(3000):
            run.log({{"loss": 1.0 / (step + 1)}}, step=step)
            if step % 100 == 0:
                time.sleep(0.01)
        run.finish()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    copied = 0
    with open_store(local) as src, open_store(store_db) as dst:
        while proc.poll() is None:
            copied += sync(src, dst).points
        assert proc.wait() == 0
        copied += sync(src, dst).points
        assert copied == 3000  # each point copied once, none twice
        assert dst.run(run_id).status == "finished"
        _same_contents(src, dst)


def test_conflicts_are_reported_and_nothing_is_overwritten(
    tmp_path: Path, store_db: Path | str
) -> None:
    with open_store(tmp_path / "local.db") as src, open_store(store_db) as dst:
        mine = src.create_run("p", "mine", status="finished")
        with src.writer(mine.id) as w:
            w.write({"loss": Series.of([0, 1], [1.0, 0.5])})
        sync(src, dst)
        with dst.writer(mine.id) as w:  # the run went on in the team store
            w.write({"loss": Series.of([2, 3, 4], [0.4, 0.3, 0.2])})
        other = src.create_run("q", "clash")
        # another run with the same id in the target: 1 in 4 billion, or a second laptop
        dst.put_run(
            runcast.store.RunInfo(id=other.id, name="theirs", project="q", status="finished")
        )
        report = sync(src, dst)
        assert any("has 5 points in the target but 2" in c for c in report.conflicts)
        clash = f"{other.id}: the target has another run"
        assert any(c.startswith(clash) for c in report.conflicts)
        assert dst.run(other.id).name == "theirs"  # not overwritten
        assert dst.summary(mine.id)["loss"].n_points == 5


def test_sync_refuses_a_bad_batch_size(tmp_path: Path) -> None:
    with (
        open_store(tmp_path / "a.db") as a,
        open_store(tmp_path / "b.db") as b,
        pytest.raises(runcast.errors.InvalidInputError, match="batch_points"),
    ):
        sync(a, b, batch_points=0)
