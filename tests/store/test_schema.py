from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from runcast.errors import NotAStoreError, SchemaVersionError, StoreError
from runcast.store import Series, open_store
from runcast.store._schema import APPLICATION_ID, SCHEMA_VERSION, connect, retry_busy


def test_a_new_store_is_stamped_and_in_wal_mode(db_path: Path) -> None:
    open_store(db_path).close()
    conn = sqlite3.connect(db_path)
    # the stamp is how a later open tells our files from other SQLite databases
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # WAL lets readers (dashboard, CLI) read while a run writes
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_an_empty_file_becomes_a_store(db_path: Path) -> None:
    db_path.touch()
    with open_store(db_path) as store:
        assert store.runs() == []


@pytest.mark.parametrize(
    "content",
    [b"hello, not a database\n", b"\x00" * 4096, b"SQLite format 2\x00" + b"x" * 200],
    ids=["text", "zeros", "near-miss-header"],
)
def test_a_file_that_is_not_sqlite_is_refused(db_path: Path, content: bytes) -> None:
    db_path.write_bytes(content)
    with pytest.raises(NotAStoreError, match="not a runcast store"):
        open_store(db_path)
    # refusing must not have modified the user's file
    assert db_path.read_bytes() == content


def test_another_programs_sqlite_database_is_refused_and_left_alone(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE invoices(id INTEGER, total REAL)")
    conn.commit()
    conn.close()
    with pytest.raises(NotAStoreError, match="invoices"):
        open_store(db_path)
    conn = sqlite3.connect(db_path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    conn.close()
    assert tables == ["invoices"]  # nothing of ours was created in it


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotAStoreError, match="folder"):
        open_store(tmp_path)


def test_a_newer_schema_is_refused_with_the_versions(db_path: Path) -> None:
    open_store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError, match=rf"schema {SCHEMA_VERSION + 1}.*Upgrade"):
        open_store(db_path)


def test_create_false_on_a_missing_store_says_how_to_make_one(db_path: Path) -> None:
    with pytest.raises(StoreError, match=r"runcast\.init"):
        open_store(db_path, create=False)
    assert not db_path.exists()


def test_create_false_leaves_an_empty_file_as_it_is(db_path: Path) -> None:
    # an empty file is a valid empty SQLite database: `runcast --db EMPTY runs list` wrote a
    # whole store schema (320 kB) into it; reading must not write into the user's file
    db_path.touch()
    with pytest.raises(StoreError, match=r"an empty file at .*runcast\.init"):
        open_store(db_path, create=False)
    assert db_path.stat().st_size == 0
    with open_store(db_path) as store:  # creating a store there is still fine
        assert store.runs() == []


def test_concurrent_creation_makes_one_schema(tmp_path: Path) -> None:
    # repeated: the race (a probe that read the application id before another connection
    # committed the schema and the table list after) showed up in about 1 round in 3
    for round_ in range(20):
        db = tmp_path / f"race{round_}.db"
        errors: list[BaseException] = []

        def open_it(db: Path = db, errors: list[BaseException] = errors) -> None:
            try:
                connect(db).close()
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []  # no "not a runcast store", "table exists" or "locked" from the race
        with open_store(db) as store:
            assert store.runs() == []


def test_retry_busy_retries_a_locked_database_then_succeeds() -> None:
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise sqlite3.OperationalError("database is locked")
        return "ok"

    assert retry_busy(flaky, "test") == "ok"
    assert calls["n"] == 3  # two busy answers were absorbed


def test_retry_busy_gives_a_store_error_after_its_patience() -> None:
    def always_locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    start = time.monotonic()
    with pytest.raises(StoreError, match="stayed locked"):
        retry_busy(always_locked, "write", patience=0.05)
    assert time.monotonic() - start < 2.0


def test_retry_busy_does_not_retry_other_errors() -> None:
    with pytest.raises(StoreError, match="no such table"):
        retry_busy(lambda: (_ for _ in ()).throw(sqlite3.OperationalError("no such table")), "x")


def test_an_unopenable_path_is_a_store_error_not_a_sqlite_one(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="Cannot open the store"):
        open_store(blocker / "sub" / "runcast.db")  # its folder cannot be made: a file is there


def _store_with_points(db_path: Path, n: int = 50_000) -> bytes:
    """A checkpointed store holding one run of ``n`` points, as bytes."""
    with open_store(db_path) as store:
        info = store.create_run(name="kept")
        with store.writer(info.id) as w:
            w.write({"loss": Series.of(np.arange(n), np.linspace(3, 1, n))})
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    conn.close()
    return db_path.read_bytes()


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_a_truncated_store_is_called_damaged_not_another_file(db_path: Path, keep: float) -> None:
    # it said "is not a runcast store", which sends the user looking for another file
    data = _store_with_points(db_path)
    db_path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(StoreError, match=r"is damaged.*\.recover") as err:
        open_store(db_path)
    assert not isinstance(err.value, NotAStoreError)


def test_a_store_damaged_inside_raises_a_store_error_on_read(db_path: Path) -> None:
    # a page of chunk data overwritten: reads raised sqlite3.DatabaseError, not a runcast error
    data = bytearray(_store_with_points(db_path))
    page = 32768
    messages = []
    for i in range(1, len(data) // page):
        broken = db_path.with_name(f"broken{i}.db")
        broken.write_bytes(bytes(data[: i * page] + b"\xff" * page + data[(i + 1) * page :]))
        try:
            with open_store(broken) as store:
                for run in store.runs():
                    store.curve(run.id, "loss")
        except StoreError as err:
            messages.append(str(err))
    assert messages  # some overwritten page is one a read needs
    assert all("damaged" in m and ".recover" in m for m in messages)  # says what and how
