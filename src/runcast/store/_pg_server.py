"""A throwaway PostgreSQL server for tests and benchmarks: the system's own binaries, run as an
unprivileged user, listening only on a Unix socket in a temporary folder.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user that
Debian's package creates. Nothing listens on the network.

Example (not run here: it starts a server)::

    with TempPostgres() as pg:
        store = runcast.open_store(pg.new_database("demo"))
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from runcast.errors import StoreError

#: Settings for a test server: no fsync (a crash of the machine loses a throwaway database,
#: never a test's points), and enough connections for 32 writers and their readers.
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def find_bin() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's newest /usr/lib/postgresql/N/bin, else
    the one on PATH."""

    def version(path: str) -> int:
        try:
            return int(Path(path).parts[-3])
        except ValueError:
            return -1

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).parent
    raise StoreError(
        "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: apt-get install -y "
        "postgresql (./dev setup does this)."
    )


class TempPostgres:
    """A PostgreSQL server in a temporary folder; ``stop()`` (or leaving ``with``) removes it.

    Args:
        settings: server settings (``postgresql.conf`` names); default :data:`FAST`.
        max_connections: how many clients may connect at once.
    """

    def __init__(self, settings: dict[str, str] | None = None, max_connections: int = 200) -> None:
        self.bin = find_bin()
        self.root = Path(tempfile.mkdtemp(prefix="runcast-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                self._user = {"user": pwd.getpwnam("postgres").pw_uid}
            except KeyError as err:
                raise StoreError(
                    "PostgreSQL will not run as root and there is no 'postgres' user: install "
                    "Debian's postgresql package (it creates the user), or run as another user."
                ) from err
            os.chown(self.root, self._user["user"], -1)
        self.root.chmod(0o755)
        conf = {**(FAST if settings is None else settings)}
        conf.update(max_connections=str(max_connections), listen_addresses="''")
        conf["unix_socket_directories"] = f"'{self.root}'"
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "runcast", "-A", "trust",
                   "-E", "UTF8", "--no-sync", "--no-instructions"])  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                   "-t", "60", "start"])  # fmt: skip

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run(cmd, capture_output=True, text=True, **self._user)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise StoreError(
                f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip()}\n{log[-2000:]}"
            )

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` on this server (over the Unix socket)."""
        return f"postgresql://runcast@/{database}?host={self.root}"

    def new_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            # a file copy of the tiny template: ~40 ms, against ~160 ms through the WAL
            strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
            conn.execute(f'CREATE DATABASE "{name}"{strategy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing its open connections."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server at once and remove its folder (idempotent)."""
        if self.data.exists():
            subprocess.run(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                **self._user,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
