from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from runcast.errors import InvalidInputError, RunNotFoundError, StoreError
from runcast.store import Series, SQLiteStore, SQLStore, open_store
from runcast.store import _pg_writer as pg_writer
from runcast.store._writer import CHUNK_POINTS, RunWriter


@pytest.fixture
def store(store_db: Path | str) -> Iterator[SQLStore]:
    """An SQLite store, then a PostgreSQL one: every writer test runs on both writers."""
    with open_store(store_db) as s:
        yield s


def _n_chunks(store: SQLStore) -> int:
    return int(store._fetch("SELECT count(*) FROM chunks")[0][0])


def test_series_of_stores_inf_as_missing_and_broadcasts_wall() -> None:
    s = Series.of([1, 2, 3], [1.0, float("inf"), -float("inf")], wall=5.0)
    assert np.isnan(s.value[1:]).all()
    assert s.n_missing == 2
    assert s.wall.tolist() == [5.0, 5.0, 5.0]


def test_small_flushes_grow_one_chunk_instead_of_many(store: SQLStore) -> None:
    info = store.create_run()
    with store.writer(info.id) as w:
        for i in range(300):  # a slow run: one point per flush
            w.write({"loss": Series.of([i], [1.0 / (i + 1)])})
    assert _n_chunks(store) == 1  # reads of slow runs stay one row per 8192 points
    assert store.curve(info.id, "loss").step.tolist() == list(range(300))


def test_big_batches_are_split_into_full_chunks(store: SQLStore) -> None:
    info = store.create_run()
    n = CHUNK_POINTS * 2 + 10
    with store.writer(info.id) as w:
        w.write({"x": Series.of(np.arange(n), np.arange(n, dtype=float))})
        w.write({"x": Series.of([n], [float(n)])})  # lands in the partly filled last chunk
    assert _n_chunks(store) == 3
    c = store.curve(info.id, "x")
    assert len(c) == n + 1 and (c.value == c.step).all()


def test_a_step_written_twice_reads_as_the_later_value(store: SQLStore) -> None:
    info = store.create_run()
    with store.writer(info.id) as w:
        w.write({"loss": Series.of([0, 1, 2], [3.0, 2.0, 1.0])})
        w.write({"loss": Series.of([1], [9.0])})
    assert store.curve(info.id, "loss").value.tolist() == [3.0, 9.0, 1.0]
    # the raw points keep both writes: nothing is destroyed
    assert store.points(info.id, "loss").value.tolist() == [3.0, 2.0, 1.0, 9.0]
    assert store.summary(info.id)["loss"].last_value == 1.0  # step 2 is still the latest


def test_a_ragged_series_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"shapes \(\(2,\), \(1,\), \(2,\)\)"):
        Series(np.array([0, 1]), np.array([1.0]), np.array([0.0, 0.0]))


def test_a_failed_write_leaves_nothing_half_written(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = store.create_run()
    if isinstance(store, SQLiteStore):
        real = RunWriter._append

        def fail_on_second(self: RunWriter, metric_id: int, series: Series) -> object:
            if metric_id > 1:  # the second metric of the batch: simulate a disk error mid-way
                raise sqlite3.OperationalError("database or disk is full")
            return real(self, metric_id, series)

        monkeypatch.setattr(RunWriter, "_append", fail_on_second)
    else:
        import psycopg

        real_row = pg_writer._summary_row

        def fail_after_first(metric_id: int, series: Series) -> tuple[object, ...]:
            # the batch's chunks are sent; its summaries fail mid-way, as a full disk would
            if metric_id > 1:
                raise psycopg.errors.DiskFull("could not extend file: disk is full")
            return real_row(metric_id, series)

        monkeypatch.setattr(pg_writer, "_summary_row", fail_after_first)
    with store.writer(info.id) as w, pytest.raises(StoreError, match="disk is full"):
        w.write({"good": Series.of([0], [1.0]), "bad": Series.of([0], [2.0])})
    assert store.keys(info.id) == []  # the first series of the same batch was rolled back
    assert _n_chunks(store) == 0


def test_steady_medium_flushes_start_new_chunks_instead_of_rewriting_big_ones(
    store: SQLStore,
) -> None:
    info = store.create_run()
    with store.writer(info.id) as w:
        for lo in range(0, 20_000, 100):  # a fast run flushing 100 points at a time
            w.write({"x": Series.of(np.arange(lo, lo + 100), np.zeros(100))})
    sizes = [r[0] for r in store._fetch("SELECT n FROM chunks ORDER BY id")]
    # growing stops once the tail holds 1/8 of a chunk and 8x the batch: each flush rewrites
    # at most ~1,100 points, and chunks stay large enough for fast reads
    assert max(sizes) == CHUNK_POINTS // 8 + 76  # 1024 reached at 1,100 = 11 batches
    assert min(sizes[:-1]) >= CHUNK_POINTS // 8
    assert len(store.curve(info.id, "x")) == 20_000


@pytest.mark.parametrize(
    ("step", "match"),
    [([2**63], "int64 steps"), (["a"], "int64 steps"), ([-1], "cannot be negative")],
)
def test_series_of_refuses_steps_the_store_cannot_hold(step: list[object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):  # were OverflowError / ValueError
        Series.of(step, [1.0])


@pytest.mark.parametrize("key", ["", 5, None])
def test_a_batch_with_a_key_that_is_not_a_name_is_refused_whole(
    store: SQLStore, key: object
) -> None:
    info = store.create_run()
    with store.writer(info.id) as w, pytest.raises(InvalidInputError, match="non-empty strings"):
        w.write({"loss": Series.of([0], [1.0]), key: Series.of([0], [2.0])})  # type: ignore[dict-item]
    assert store.summary(info.id) == {}  # nothing of the batch was written


def test_writing_to_a_run_deleted_meanwhile_is_refused_and_leaves_no_orphans(
    store: SQLStore,
) -> None:
    # the writer's cached metric ids took the points into chunks that belonged to no run
    info = store.create_run()
    with store.writer(info.id) as w:
        w.write({"loss": Series.of([0], [1.0])})
        store.delete(info.id)
        with pytest.raises(RunNotFoundError, match="was deleted from the store"):
            w.write({"loss": Series.of([1], [0.5])})
    assert _n_chunks(store) == 0
    assert store._fetch("SELECT count(*) FROM metrics")[0][0] == 0
