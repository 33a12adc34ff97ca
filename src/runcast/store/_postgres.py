"""The team store: a PostgreSQL database that every machine of a team or cluster writes to.

Same tables and queries as the SQLite store (``_sql.py``), kept in a schema ``runcast`` of the
database the URL names, so they never mix with the database's other tables. Needs psycopg 3
(``pip install 'runcast[postgres]'``). Open one with ``runcast.open_store("postgresql://...")``
or ``runcast.init(db="postgresql://...")``; ``$RUNCAST_DB`` and ``--db`` take the URL too.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from runcast.errors import MissingDependencyError, NotAStoreError, SchemaVersionError, StoreError
from runcast.store._pg_writer import PostgresRunWriter
from runcast.store._schema import SCHEMA_VERSION
from runcast.store._sql import SQLStore, Statement

#: The URL schemes that name a PostgreSQL store.
URL_SCHEMES = ("postgresql://", "postgres://")
#: The database schema that holds runcast's tables.
SCHEMA = "runcast"

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE {SCHEMA}.meta(key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE {SCHEMA}.runs(
    id text PRIMARY KEY,
    seq bigserial,
    project text NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    config text NOT NULL DEFAULT '{{}}',
    start_time double precision NOT NULL,
    end_time double precision,
    parent_id text,
    fork_step bigint,
    host text,
    pid bigint,
    heartbeat double precision
);
CREATE INDEX runs_by_project ON {SCHEMA}.runs(project, start_time);
CREATE INDEX runs_by_name ON {SCHEMA}.runs(name, start_time);
CREATE INDEX runs_by_time ON {SCHEMA}.runs(start_time, seq);
CREATE TABLE {SCHEMA}.metrics(
    id bigserial PRIMARY KEY,
    run_id text NOT NULL,
    key text NOT NULL,
    n_points bigint NOT NULL DEFAULT 0,
    n_missing bigint NOT NULL DEFAULT 0,
    first_step bigint,
    last_step bigint,
    last_value double precision,
    UNIQUE(run_id, key)
);
CREATE TABLE {SCHEMA}.chunks(
    id bigserial PRIMARY KEY,
    metric_id bigint NOT NULL,
    min_step bigint NOT NULL,
    max_step bigint NOT NULL,
    n integer NOT NULL,
    steps bytea NOT NULL,
    vals bytea NOT NULL,
    walls bytea NOT NULL
);
CREATE INDEX chunks_by_metric ON {SCHEMA}.chunks(metric_id, id)
"""


#: Indexes added after a store's schema was first written: an older store gets them when it is
#: next opened. The run list, newest first, walks ``runs_by_time`` backwards instead of sorting
#: the whole table on every poll of the dashboard.
LATER_INDEXES = {
    "runs_by_time": f"CREATE INDEX IF NOT EXISTS runs_by_time ON {SCHEMA}.runs(start_time, seq)",
}


def is_url(db: object) -> bool:
    """Whether ``db`` names a PostgreSQL store (a ``postgresql://`` URL) rather than a file.

    Example:
        >>> is_url("postgresql://team@db.example/runs"), is_url("runcast.db")
        (True, False)
    """
    return isinstance(db, str) and db.lower().startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs.

    Example:
        >>> redact("postgresql://ann:s3cret@db/runs?password=x&sslmode=require")
        'postgresql://ann:***@db/runs?password=***&sslmode=require'
    """
    url = re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)
    return re.sub(r"(password=)[^&]*", r"\1***", url)


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    # the shared queries use SQLite's ? placeholders, and hold no literal ? or %
    return sql.replace("?", "%s")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as err:
        raise MissingDependencyError(
            "A postgresql:// store needs psycopg 3: pip install 'runcast[postgres]'."
        ) from err
    return psycopg


def connect(url: str) -> Any:
    """A connection to ``url`` in autocommit mode with runcast's schema first in its path."""
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=30)
        conn.execute(f"SET search_path TO {SCHEMA}")
    except psycopg.Error as err:
        raise StoreError(
            f"Cannot connect to the PostgreSQL store {redact(url)!r}: {str(err).strip()}. Check "
            "the URL, that the server is running, and that the database exists (createdb NAME)."
        ) from err
    return conn


def _probe(conn: Any) -> tuple[bool, bool]:
    """Whether runcast's schema and its meta table exist, read from the catalog tables: a
    fresh snapshot per statement, where to_regclass() may answer from a stale cache and miss
    a store that another process created a moment ago."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s), "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = 'meta')",
        (SCHEMA, SCHEMA),
    ).fetchone()
    return bool(row[0]), bool(row[1])


def _open_schema(conn: Any, where: str, create: bool) -> None:
    """Check (or create) runcast's tables in the connected database."""
    found = _probe(conn)
    if not found[1]:
        if found[0]:
            raise NotAStoreError(
                f"The database {where!r} has a schema {SCHEMA!r} that is not a runcast store "
                "(no meta table). Use another database; runcast will not write into it."
            )
        if not create:
            raise StoreError(
                f"There is no runcast store in {where!r}. Record a run with "
                "runcast.init(db=URL), or copy runs into it with `runcast sync LOCAL.db URL`."
            )
        with conn.transaction():
            # one creator at a time: processes starting together on a new database wait here
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('runcast-create-schema'))")
            if not _probe(conn)[1]:
                for statement in _DDL.split(";"):
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {SCHEMA}.meta VALUES ('schema_version', %s), ('created', %s)",
                    (str(SCHEMA_VERSION), repr(time.time())),
                )
    _add_indexes(conn)
    row = conn.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row is not None else 0
    if version > SCHEMA_VERSION:
        from runcast._version import __version__

        raise SchemaVersionError(
            f"{where!r} was written by a newer runcast (store schema {version}; runcast "
            f"{__version__} reads up to {SCHEMA_VERSION}). Upgrade runcast: pip install -U runcast."
        )


def _add_indexes(conn: Any) -> None:
    """Make the :data:`LATER_INDEXES` an older store lacks. Looked up first: CREATE INDEX
    locks the table against writes even when the index exists, and 32 writers open at once."""
    rows = conn.execute(
        "SELECT indexname FROM pg_catalog.pg_indexes WHERE schemaname = %s", (SCHEMA,)
    ).fetchall()
    have = {r[0] for r in rows}
    for name, sql in LATER_INDEXES.items():
        if name not in have:
            # best effort: a user who may only read keeps a slower list, and of two processes
            # making it at once the second may fail on the catalog's unique name (autocommit:
            # the connection is fine after it)
            with contextlib.suppress(_psycopg().Error):
                conn.execute(sql)


class PostgresStore(SQLStore):
    """The run store in the PostgreSQL database at ``url``; see :func:`runcast.open_store`.

    Many processes on many machines may write to one store at once: each run's points go
    through its own connection, one transaction per batch.
    """

    _SEQ = "r.seq"

    def __init__(self, url: str, create: bool = True) -> None:
        self.url = url
        self._where = redact(url)
        psycopg = _psycopg()
        self._errors: type[Exception] = psycopg.Error
        self._conn: Any = connect(url)
        try:
            _open_schema(self._conn, self._where, create)
        except psycopg.Error as err:
            self._conn.close()
            raise StoreError(f"Cannot open the store {self._where!r}: {err}.") from err
        except BaseException:
            self._conn.close()
            raise
        # one connection shared by the calling threads: serialize its use
        self._lock = threading.RLock()

    @property
    def where(self) -> str:
        """The URL without its password."""
        return self._where

    @property
    def location(self) -> str:
        """The URL, as given."""
        return self.url

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r})"

    def _live(self) -> Any:
        if self._conn is None:
            raise StoreError(f"The store {self._where!r} is closed; open it again.")
        if self._conn.broken:  # the server restarted or the network dropped: connect again
            self._conn = connect(self.url)
        return self._conn

    def _fetch(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query (bytea read in binary: no hex text to decode)."""
        try:
            with self._lock, self._live().cursor(binary=True) as cur:
                cur.execute(_pg(sql), args)
                return list(cur.fetchall())
        except self._errors as err:
            raise StoreError(f"Could not read {self._where!r}: {err}.") from err

    def _execute(self, statements: Sequence[Statement], what: str) -> list[int]:
        """Run ``statements`` in one transaction."""
        try:
            with self._lock:
                conn = self._live()
                with conn.transaction(), conn.cursor() as cur:
                    counts = []
                    for sql, args in statements:
                        cur.execute(_pg(sql), args)
                        counts.append(cur.rowcount)
                return counts
        except self._errors as err:
            raise StoreError(f"Could not {what} in {self._where!r}: {err}.") from err

    def close(self) -> None:
        """Close the store's connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def writer(self, run: str) -> PostgresRunWriter:
        """A writer appending to ``run`` over its own connection (use it from one thread)."""
        run_id = self.run(run).id
        return PostgresRunWriter(lambda: connect(self.url), run_id, self._where)
