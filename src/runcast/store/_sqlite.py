"""The embedded store: one SQLite file in WAL mode, safe for many processes at once."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runcast.errors import StoreError
from runcast.store._schema import connect, retry_busy
from runcast.store._sql import HOST, STALE_AFTER_S, SQLStore, Statement, is_dead, pid_alive
from runcast.store._writer import RunWriter

# the names tests and older code import from here
_HOST, _is_dead, _pid_alive = HOST, is_dead, pid_alive
__all__ = ["STALE_AFTER_S", "SQLiteStore"]


class SQLiteStore(SQLStore):
    """The SQLite (WAL) run store at ``path``; see :func:`runcast.open_store`.

    Example:
        >>> import tempfile, pathlib
        >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "s.db")
        >>> store.create_run(project="p", name="first").status
        'running'
        >>> [r.name for r in store.runs("p")]
        ['first']
        >>> store.close()
    """

    def __init__(self, path: str | os.PathLike[str], create: bool = True) -> None:
        # absolute: writers open their own connections later (the tracker's thread, forks), and
        # a relative path would then name another file if the process changed directory
        self.path = Path(path).absolute()
        self._conn: sqlite3.Connection | None = connect(self.path, create=create)
        # one connection shared by the calling threads: serialize its use
        self._lock = threading.RLock()

    @property
    def where(self) -> str:
        """The store file, as messages name it."""
        return str(self.path)

    @property
    def location(self) -> Path:
        """The store file."""
        return self.path

    @property
    def conn(self) -> sqlite3.Connection:
        """The reading connection (raises once the store is closed)."""
        if self._conn is None:
            raise StoreError(f"The store {str(self.path)!r} is closed; open it again.")
        return self._conn

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _fetch(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query; retried while another process's checkpoint or recovery makes
        SQLite answer BUSY at once (the busy timeout does not cover every case)."""

        def go() -> list[tuple[Any, ...]]:
            with self._lock:
                return self.conn.execute(sql, args).fetchall()

        return retry_busy(go, f"read {str(self.path)!r}")

    def _execute(self, statements: Sequence[Statement], what: str) -> list[int]:
        """Run ``statements`` in one write transaction, retried while the store is busy."""

        def go() -> list[int]:
            with self._lock:
                conn = self.conn
                conn.execute("BEGIN IMMEDIATE")  # take the write lock up front: no upgrade
                try:
                    counts = [conn.execute(sql, args).rowcount for sql, args in statements]
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return counts

        return retry_busy(go, what)

    def close(self) -> None:
        """Close the store's connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def writer(self, run: str) -> RunWriter:
        """A writer appending to ``run`` over its own connection (use it from one thread)."""
        run_id = self.run(run).id
        return RunWriter(connect(self.path), run_id)
