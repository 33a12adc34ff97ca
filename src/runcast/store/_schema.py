"""The SQLite schema of a runcast store, opening a file safely, and retrying busy writes.

Points are stored in *chunks*: one row holds many consecutive points of one metric as three
packed arrays (int64 steps, float64 values, float64 wall times). Reading a 1,000,000-point metric
is then one indexed query over a few hundred rows and a ``np.frombuffer``, instead of a million
Python tuples; and the writer thread spends almost no time holding the GIL.
"""

from __future__ import annotations

import contextlib
import functools
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from runcast.errors import NotAStoreError, SchemaVersionError, StoreError

#: ``PRAGMA application_id`` of every runcast store ("RCST"): tells our files from other SQLite.
APPLICATION_ID = 0x52435354
#: ``PRAGMA user_version``: bump with every incompatible schema change (and add a migration).
SCHEMA_VERSION = 1
#: How long a write keeps retrying while other processes hold the lock, in seconds.
LOCK_PATIENCE_S = 120.0

_DDL = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs(
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    start_time REAL NOT NULL,
    end_time REAL,
    parent_id TEXT,
    fork_step INTEGER,
    host TEXT,
    pid INTEGER,
    heartbeat REAL
);
CREATE INDEX runs_by_project ON runs(project, start_time);
CREATE INDEX runs_by_time ON runs(start_time);
CREATE TABLE metrics(
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    n_points INTEGER NOT NULL DEFAULT 0,
    n_missing INTEGER NOT NULL DEFAULT 0,
    first_step INTEGER,
    last_step INTEGER,
    last_value REAL,
    UNIQUE(run_id, key)
);
CREATE TABLE chunks(
    id INTEGER PRIMARY KEY,
    metric_id INTEGER NOT NULL,
    min_step INTEGER NOT NULL,
    max_step INTEGER NOT NULL,
    n INTEGER NOT NULL,
    steps BLOB NOT NULL,
    vals BLOB NOT NULL,
    walls BLOB NOT NULL
);
CREATE INDEX chunks_by_metric ON chunks(metric_id, id);
"""

T = TypeVar("T")


def _is_busy(err: sqlite3.OperationalError) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


def damaged(what: str, err: sqlite3.DatabaseError, path: str = "<store file>") -> StoreError:
    """The error for a store file that SQLite finds damaged (truncated, overwritten)."""
    return StoreError(
        f"{what} is damaged ({err}); runcast will not write into it. Keep a copy of the file, "
        f"then recover what is readable into a new store with: sqlite3 {path} .recover | "
        "sqlite3 recovered.db"
    )


def retry_busy(fn: Callable[[], T], what: str, patience: float = LOCK_PATIENCE_S) -> T:
    """Run ``fn``, retrying with jittered back-off while SQLite says the database is busy.

    ``busy_timeout`` already waits inside SQLite; this outer loop covers the cases where SQLite
    returns BUSY at once (a WAL snapshot gone stale, a checkpoint in progress), so that many
    processes writing to one store never show "database is locked" to the user.

    Example:
        >>> retry_busy(lambda: 41 + 1, "add")
        42
    """
    deadline = time.monotonic() + patience
    delay = 0.002
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as err:
            if not _is_busy(err):
                raise StoreError(f"Could not {what}: {err}.") from err
            if time.monotonic() > deadline:
                raise StoreError(
                    f"Could not {what}: the store stayed locked by other processes for "
                    f"{patience:.0f} s. Is a process stuck holding it? ({err})"
                ) from err
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)
        except sqlite3.DatabaseError as err:  # not busy: the file itself is bad
            if _is_damage(err):  # "database disk image is malformed"
                raise damaged(f"Could not {what}: the store file", err) from err
            raise StoreError(f"Could not {what}: {err}.") from err


def _is_damage(err: sqlite3.DatabaseError) -> bool:
    text = str(err).lower()
    return "malformed" in text or "corrupt" in text


def _check_file(path: Path) -> None:
    # Never open() the file from Python here: closing any descriptor of a file drops every
    # POSIX lock this process holds on it, including those of SQLite connections already open
    # (the writer thread's, the tracker's); another process could then delete the live WAL.
    # SQLite itself refuses a file that is not a database ("file is not a database").
    if path.is_dir():
        raise NotAStoreError(
            f"{str(path)!r} is a folder, not a runcast store. Pass the path of a store file "
            "(e.g. runcast.db) with db= or --db."
        )


def _create(conn: sqlite3.Connection) -> None:
    # large pages: a chunk's 64 KiB blobs span 2-3 pages instead of 16 overflow pages, so a
    # metric reads in fewer page fetches (must be set before the first table exists)
    conn.execute("PRAGMA page_size = 32768")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # another process may have created the schema while we waited for the lock
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            for statement in _DDL.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES ('created', ?)", (repr(time.time()),))
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


#: Indexes added after a store's schema was first written, each with the statement that makes
#: it: an older store gets them when it is next opened (a reader of any version ignores them).
LATER_INDEXES = {
    # the run list, newest first, as a walk down this index (the rowid breaks ties): a page of
    # 200 of 10,000 runs in 0.7 ms, where sorting the whole table took 8 ms a poll
    "runs_by_time": "CREATE INDEX IF NOT EXISTS runs_by_time ON runs(start_time)",
}


def _add_indexes(conn: sqlite3.Connection) -> None:
    """Make the :data:`LATER_INDEXES` an older store lacks (best effort: a store the user may
    only read keeps working without them, just slower to list)."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    for name, sql in LATER_INDEXES.items():
        if name not in have:
            with contextlib.suppress(StoreError):
                retry_busy(functools.partial(conn.execute, sql), f"add the index {name}", 5.0)


def _probe(conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
    # one read transaction, so the three reads see one snapshot: read one by one, a store that
    # another process creates in between looks like "no application id, but tables", i.e. like
    # another program's database
    conn.execute("BEGIN")
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    return int(app_id), int(version), tables


def connect(path: Path, create: bool = True) -> sqlite3.Connection:
    """Open (or create) the store at ``path``, checking that it is a runcast store we can read.

    Raises:
        NotAStoreError: the file is not SQLite, or is another program's SQLite database.
        SchemaVersionError: the store was written by a newer runcast.
        StoreError: ``create=False`` and there is no store at ``path``.
    """
    _check_file(path)
    # an existing empty file is a valid empty SQLite database, but not a store yet: a command
    # that only reads (create=False) must not write a schema into a file the user made
    if not create and (not path.exists() or (path.is_file() and path.stat().st_size == 0)):
        what = "an empty file" if path.exists() else "no runcast store"
        raise StoreError(
            f"There is {what} at {str(path)!r}. Record a run with runcast.init(), "
            "import one with `runcast import`, or pass another path with --db."
        )
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so the write lock is taken up
    # front and never upgraded mid-transaction (an upgrade can fail with BUSY at once).
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as err:
        raise StoreError(
            f"Cannot open the store {str(path)!r}: {err}. Check the path and its permissions."
        ) from err
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        try:
            app_id, version, tables = retry_busy(
                lambda: _probe(conn), f"read the store {str(path)!r} (check its permissions)"
            )
        except StoreError as err:
            cause = err.__cause__
            if not isinstance(cause, sqlite3.DatabaseError) or isinstance(
                cause, sqlite3.OperationalError
            ):
                raise
            if _is_damage(cause):  # SQLite, but truncated or overwritten in places
                raise damaged(f"The store {str(path)!r}", cause, repr(str(path))) from cause
            raise NotAStoreError(  # "file is not a database"
                f"{str(path)!r} is not a runcast store ({cause}). Pass the path of a store file "
                "with db= or --db."
            ) from cause
        if app_id == 0 and not tables:
            # create the schema in rollback-journal mode, *then* switch to WAL: a new database
            # in WAL mode keeps its first pages only in the -wal file, and SQLite deletes the
            # WAL of a zero-length database file when another process opens it, losing them
            retry_busy(lambda: _create(conn), f"create a store at {str(path)!r}")
        elif app_id != APPLICATION_ID:
            shown = ", ".join(sorted(tables)[:5])
            raise NotAStoreError(
                f"{str(path)!r} is an SQLite database but not a runcast store (its tables: "
                f"{shown}). Pass another path with db= or --db; runcast will not write into it."
            )
        elif version > SCHEMA_VERSION:
            from runcast._version import __version__

            raise SchemaVersionError(
                f"{str(path)!r} was written by a newer runcast (store schema {version}; runcast "
                f"{__version__} reads up to {SCHEMA_VERSION}). Upgrade runcast: "
                "pip install -U runcast."
            )
        mode = retry_busy(lambda: conn.execute("PRAGMA journal_mode").fetchone()[0], "read")
        if mode != "wal":
            retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"), "switch to WAL mode")
        # synchronous=NORMAL in WAL mode survives a killed process (only power loss can drop
        # the last transactions) and makes each batch commit far cheaper than FULL.
        retry_busy(lambda: conn.execute("PRAGMA synchronous = NORMAL"), "set up the store")
        _add_indexes(conn)
    except BaseException:
        conn.close()
        raise
    return conn
