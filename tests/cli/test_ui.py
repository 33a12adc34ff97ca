"""``runcast ui``: the real command in a subprocess serves the dashboard; a busy port errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

import runcast
from runcast.cli import app

# the command as a user runs it in a terminal: Ctrl+C (SIGINT) stops it. A shell starts a
# background job with SIGINT ignored, and the child inherits that (a test run started with `&`
# then timed out waiting for the dashboard to stop), so the child takes Ctrl+C back first
_CLI = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "import sys; from runcast.cli import main; sys.argv = ['runcast'] + sys.argv[1:]; main()"
)


def test_ui_serves_the_store(db_path: Path, free_port: Callable[[], int]) -> None:
    with runcast.init(project="u", name="served", db=str(db_path)) as run:
        run.log({"loss": 1.0}, step=0)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "runcast.cli",
        "--db",
        str(db_path),
        "ui",
        "--no-browser",
        "--port",
        str(port),
    ]
    code = _CLI
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *cmd[3:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=5) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        assert body is not None, "the dashboard did not answer within 60 s"
        assert [r["name"] for r in body["runs"]] == ["served"]
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl+C: the command stops cleanly
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out.decode() and "stopped" in out.decode()


def test_ui_says_when_the_port_is_taken(db_path: Path) -> None:
    runcast.open_store(db_path).close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = CliRunner().invoke(
            app,
            ["--db", str(db_path), "ui", "--no-browser", "--port", str(port)],
            env={"COLUMNS": "200"},
        )
    assert res.exit_code == 1 and "pick another port with --port" in res.output


def _get(url: str, deadline: float) -> dict[str, object]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return dict(json.loads(r.read()))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_ui_starts_before_the_store_exists(tmp_path: Path, free_port: Callable[[], int]) -> None:
    # a user opens the dashboard first, then starts training: it refused to start
    db = tmp_path / "later.db"
    port = free_port()
    code = _CLI
    args = ["--db", str(db), "ui", "--no-browser", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    url = f"http://127.0.0.1:{port}/api/runs"
    try:
        body = _get(url, time.monotonic() + 60)
        # an empty dashboard saying what it waits for; the dashboard never creates the store
        assert body["runs"] == [] and "waiting for training to create" in str(body["note"])
        assert not db.exists()
        with runcast.init(project="u", name="late", db=str(db)) as run:
            run.log({"loss": 1.0}, step=0)
        body = _get(url, time.monotonic() + 60)
        assert [r["name"] for r in body["runs"]] == ["late"]  # type: ignore[attr-defined]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "does not exist yet" in out.decode()
