"""What only the PostgreSQL store does: URLs, its schema in a shared database, connections."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")

import runcast  # noqa: E402
from runcast.errors import NotAStoreError, SchemaVersionError, StoreError  # noqa: E402
from runcast.store import PostgresStore, Series, default_db, is_url, open_store, redact  # noqa: E402


def test_a_url_picks_the_postgres_store_everywhere_a_path_goes(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(postgres_url) as store:
        assert isinstance(store, PostgresStore) and store.location == postgres_url
    monkeypatch.setenv("RUNCAST_DB", postgres_url)  # the tracker's default store
    with runcast.init(project="env", name="from-env") as run:
        run.log({"loss": 1.0})
    assert run.db == postgres_url and default_db() == postgres_url
    with open_store() as store:
        assert store.run("from-env").n_points == 1
    assert is_url("POSTGRES://x/y") and not is_url(Path("postgresql:/x"))


def test_the_tables_live_in_their_own_schema_beside_the_database_s_others(
    postgres_url: str,
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.runs(x int)")  # a team database has its own tables
    with open_store(postgres_url) as store:
        store.create_run(name="mine")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('public', 'runcast') ORDER BY 1"
        ).fetchall()
    assert [t[0] for t in tables] == [
        "public.runs", "runcast.chunks", "runcast.meta", "runcast.metrics", "runcast.runs"
    ]  # fmt: skip


def test_opening_without_create_in_an_empty_database_says_how_to_make_a_store(
    postgres_url: str,
) -> None:
    with pytest.raises(StoreError, match=r"no runcast store in .*runcast sync"):
        open_store(postgres_url, create=False)
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # nothing was created
        assert conn.execute("SELECT to_regnamespace('runcast')").fetchone()[0] is None


def test_another_schema_named_runcast_or_a_newer_store_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA runcast")
        conn.execute("CREATE TABLE runcast.other(x int)")
    with pytest.raises(NotAStoreError, match="not a runcast store"):
        open_store(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA runcast CASCADE")
    open_store(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE runcast.meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionError, match="newer runcast"):
        open_store(postgres_url)


def test_a_connection_error_names_the_url_without_its_password() -> None:
    url = "postgresql://ann:s3cret@127.0.0.1:1/runs?connect_timeout=2"
    with pytest.raises(StoreError, match=r"Cannot connect .*ann:\*\*\*@") as err:
        open_store(url)
    assert "s3cret" not in str(err.value)
    assert redact(url) == "postgresql://ann:***@127.0.0.1:1/runs?connect_timeout=2"


def test_a_dropped_connection_is_opened_again(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        info = store.create_run(name="survivor")
        with store.writer(info.id) as w:
            w.write({"loss": Series.of([0], [1.0])})
            with psycopg.connect(postgres_url, autocommit=True) as admin:  # a server restart
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            time.sleep(0.2)
            with pytest.raises(StoreError, match="was not written"):  # this batch: refused
                w.write({"loss": Series.of([1], [0.5])})
            w.write({"loss": Series.of([1], [0.5])})  # the tracker's retry: a new connection
        with pytest.raises(StoreError):
            store.runs()  # the store's own connection was dropped too: said once...
        assert store.curve(info.id, "loss").value.tolist() == [1.0, 0.5]  # ...then reconnects


def test_processes_opening_a_new_store_at_once_make_one_schema(postgres_url: str) -> None:
    code = (
        "import sys, runcast\n"
        "with runcast.init(project='race', db=sys.argv[1]) as run:\n"
        "    run.log({'loss': 1.0})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, postgres_url], stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    with open_store(postgres_url) as store:
        assert len(store.runs("race")) == 6


def test_a_metric_key_with_a_nul_character_is_refused_whole(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        info = store.create_run()
        refused = pytest.raises(runcast.errors.InvalidInputError, match="NUL")
        with store.writer(info.id) as w, refused:
            w.write({"loss": Series.of([0], [1.0]), "a\x00b": Series.of([0], [2.0])})
        assert store.summary(info.id) == {}  # nothing of the batch was written
