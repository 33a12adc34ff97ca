"""The dashboard's batch endpoint: batch size, noise scale and CBS intervals as JSON."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import runcast
from runcast.ui._api import DashboardData
from runcast.ui._server import start, stop


def test_batch_endpoint(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    with runcast.init(name="w", db=db) as run:
        extra = {0: {"batch_size": 4}, 5: {"cbs_lo": 8, "cbs_hi": 16}, 10: {"batch_size": 8}}
        for s in range(20):
            run.log({"loss": 1.0 / (s + 1), "noise_scale": 3.0 + s, **extra.get(s, {})}, step=s)
    with runcast.init(name="plain", db=db) as plain:
        plain.log({"loss": 1.0}, step=0)
    data = DashboardData(db)
    try:
        body = data.batch(run.id)
        assert body["batch"] == {"step": [0, 10, 19], "value": [4.0, 8.0, 8.0]}
        assert body["cbs"] == {"step": [5], "lo": [8.0], "hi": [16.0]}
        assert "note" in data.batch(plain.id)  # nothing recorded: a note, not an error
        server = start(db, port=0)
        try:
            with urllib.request.urlopen(f"{server.url}api/runs/{run.id}/batch") as resp:
                assert json.loads(resp.read())["noise_scale"]["value"][-1] == 22.0
        finally:
            stop(server)
    finally:
        data.close()
