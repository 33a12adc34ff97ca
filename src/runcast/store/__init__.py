"""The run store: runs, their config and status, and their metrics' points.

SQLite in WAL mode is the embedded default (``./runcast.db``, or ``$RUNCAST_DB``, or ``db=``);
a ``postgresql://`` URL in their place opens a PostgreSQL store that a team or a cluster shares
(``pip install 'runcast[postgres]'``), and :func:`sync` copies runs recorded offline into it.
Many processes may write to one store at once (sweep trials, DDP ranks); a process killed at any
moment leaves a store that opens, with every point up to its last flush.

Example:
    >>> import tempfile, pathlib, runcast
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "runcast.db"
    >>> with runcast.init(project="demo", name="tiny", db=db) as run:
    ...     for step in range(3):
    ...         run.log({"loss": 3.0 - step})
    >>> with runcast.open_store(db) as store:
    ...     info = store.runs("demo")[0]
    ...     info.name, info.status, store.curve(info.id, "loss").value.tolist()
    ('tiny', 'finished', [3.0, 2.0, 1.0])
"""

from __future__ import annotations

import os
from pathlib import Path

from runcast.store._base import Points, PointSink, Store
from runcast.store._postgres import PostgresStore, is_url, redact
from runcast.store._sql import SQLStore
from runcast.store._sqlite import SQLiteStore
from runcast.store._sync import SyncReport, sync
from runcast.store._types import STATUSES, MetricSummary, RunInfo, RunsPage, Status
from runcast.store._writer import Series

#: Where the store is when no path is given: $RUNCAST_DB, else ./runcast.db.
DEFAULT_DB = "runcast.db"


def default_path(db: str | os.PathLike[str] | None = None) -> Path:
    """The store path runcast uses: ``db`` if given, else ``$RUNCAST_DB``, else ./runcast.db.

    Example:
        >>> default_path("/tmp/x.db").name
        'x.db'
    """
    if db is not None:
        return Path(db)
    return Path(os.environ.get("RUNCAST_DB") or DEFAULT_DB)


def default_db(db: str | os.PathLike[str] | None = None) -> Path | str:
    """The store runcast uses, as :func:`default_path`, but a ``postgresql://`` URL (given, or
    in ``$RUNCAST_DB``) stays the URL.

    Example:
        >>> default_db("postgresql://team@db/runs"), default_db("/tmp/x.db").name
        ('postgresql://team@db/runs', 'x.db')
    """
    chosen = db if db is not None else os.environ.get("RUNCAST_DB")
    if is_url(chosen):
        assert isinstance(chosen, str)
        return chosen
    return default_path(db)


def open_store(db: str | os.PathLike[str] | None = None, create: bool = True) -> SQLStore:
    """Open the run store at ``db`` (default ``$RUNCAST_DB`` or ./runcast.db).

    Args:
        db: the store file, or a ``postgresql://user:password@host/database`` URL (a team
            store; needs ``runcast[postgres]``). A missing store is created (in PostgreSQL: a
            schema ``runcast`` in that database), unless ``create=False``.
        create: with False, a missing store raises :class:`runcast.errors.StoreError`.

    Raises:
        NotAStoreError: the file is not a runcast store (another SQLite database, or not SQLite).
        SchemaVersionError: the store was written by a newer runcast.

    Example:
        >>> import tempfile, pathlib
        >>> with open_store(pathlib.Path(tempfile.mkdtemp()) / "new.db") as store:
        ...     store.runs()
        []
    """
    where = default_db(db)
    if isinstance(where, str):
        return PostgresStore(where, create=create)
    return SQLiteStore(where, create=create)


__all__ = [
    "STATUSES",
    "MetricSummary",
    "PointSink",
    "Points",
    "PostgresStore",
    "RunInfo",
    "RunsPage",
    "SQLStore",
    "SQLiteStore",
    "Series",
    "Status",
    "Store",
    "SyncReport",
    "default_db",
    "default_path",
    "is_url",
    "open_store",
    "redact",
    "sync",
]
