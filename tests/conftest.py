"""Shared fixtures: the real curves in ../shared/data and a fresh store path per test."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DATA_DIR = Path(
    os.environ.get("RUNCAST_SHARED_DATA", Path(__file__).parents[1] / ".." / "shared" / "data")
).resolve()


def _catalog() -> dict[str, Any]:
    return json.loads((DATA_DIR / "catalog.json").read_text())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public curves (../shared/data); tests needing it skip without it."""
    if not (DATA_DIR / "catalog.json").exists():
        pytest.skip(f"shared data not found at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(scope="session")
def catalog(shared_data: Path) -> dict[str, Any]:
    """catalog.json of the shared data."""
    return _catalog()


@pytest.fixture(scope="session")
def unpinned_law() -> Any:
    """runcast's law fitted on one 1,500-step run with 3% per-step noise (a demo-sized run):
    too little to pin its 7 parameters, so its Laplace draws leave the fit when it forecasts."""
    import numpy as np

    import runcast
    from runcast.forecast.laws import fit_law

    sched = runcast.Schedule.from_spec({"kind": "wsd", "peak": 3e-3, "end": 0.0, "warmup": 50,
                                        "total": 1500, "decay_start": 1200})  # fmt: skip
    s = np.arange(1, 1500)
    s1 = np.cumsum(sched.array())[s] / 3e-3
    fall = 0.15 * np.clip((s - 1200) / 300, 0, 1)
    noise = np.exp(0.03 * np.random.default_rng(0).standard_normal(s.size))
    loss = (1.0 + 3.0 * (1 + s1 / 50) ** -0.4 - fall) * noise
    return fit_law(runcast.Curve(s, loss, schedule=sched, name="loss"), "auto")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A store path in a fresh temporary folder."""
    return tmp_path / "runcast.db"


# --- PostgreSQL: one throwaway server per test session (per xdist worker), a database per test
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A PostgreSQL server of the system's binaries on a Unix socket in a temporary folder
    (run as the postgres user when the tests run as root), stopped and removed at the end."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'runcast[postgres]'")
    from runcast.errors import StoreError
    from runcast.store._pg_server import TempPostgres, find_bin

    try:
        find_bin()
    except StoreError as err:
        pytest.skip(str(err))
    server = TempPostgres()
    yield server
    server.stop()


_EMPTY_DATABASES: list[str] = []  # emptied after a test, ready for the next one


@pytest.fixture
def postgres_url(postgres_server: Any) -> Iterator[str]:
    """The URL of an empty PostgreSQL database, for one test. Databases are emptied after the
    test and used again: creating one writes a copy of the template (~8 MB), dropping its
    schemas takes a few milliseconds."""
    import psycopg

    if _EMPTY_DATABASES:
        name = _EMPTY_DATABASES.pop()
        url = postgres_server.url(name)
    else:
        name = f"t_{uuid.uuid4().hex[:16]}"
        url = postgres_server.new_database(name)
    yield str(url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '5s'")  # a test that left a transaction open
            conn.execute("DROP SCHEMA IF EXISTS runcast CASCADE")
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        _EMPTY_DATABASES.append(name)
    except psycopg.Error:
        pass  # not emptied: leave it, the next test gets a new one


@pytest.fixture(params=["sqlite", "postgresql"])
def store_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A fresh store for one test, once as an SQLite file and once as a PostgreSQL database:
    what ``db=``, ``open_store`` and ``--db`` take."""
    if request.param == "sqlite":
        return tmp_path / "runcast.db"
    return str(request.getfixturevalue("postgres_url"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launcher_free_env() -> dict[str, str]:
    drop = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["OMP_NUM_THREADS"] = "1"  # two ranks on a small machine: no thread oversubscription
    return env


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """``free_port()`` gives a TCP port no one listens on now (parallel workers each get theirs)."""
    return _free_port


@pytest.fixture(scope="session")
def launcher_free_env() -> Callable[[], dict[str, str]]:
    """``launcher_free_env()`` gives this environment, as a new dict, without a launcher's rank
    and rendezvous variables (the child processes must get theirs from torch or their launcher)
    and with one OpenMP thread per process."""
    return _launcher_free_env


# --- CI: a skipped test is a failed test -----------------------------------------------------
# Tests skip when an optional extra, the shared data or chromium is missing, which is right on a
# contributor's partial install. CI (.ci/run) installs all of them, so there a skip means a test
# silently did not run (an extra that failed to install, data that moved): RUNCAST_NO_SKIPS=1
# turns any skip into a failing exit status, after listing what was skipped and why.
NO_SKIPS = os.environ.get("RUNCAST_NO_SKIPS") == "1"


def _skipped(config: pytest.Config) -> list[Any]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return list(reporter.stats.get("skipped", [])) if reporter is not None else []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    skipped = _skipped(config) if NO_SKIPS else []
    if skipped:
        terminalreporter.section("RUNCAST_NO_SKIPS: these tests did not run", red=True)
        for rep in skipped:
            reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
            terminalreporter.line(f"{rep.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if NO_SKIPS and exitstatus == pytest.ExitCode.OK and _skipped(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
