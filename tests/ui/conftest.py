"""A store with a finished run and a run still training, and a dashboard server over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runcast
from runcast.ui import start, stop

TOTAL = 300
SPEC = {"kind": "wsd", "peak": 1e-3, "end": 1e-5, "warmup": 10, "total": TOTAL, "decay_start": 240}


def loss_at(step: int | np.ndarray, seed: int = 0) -> Any:
    """A falling, slightly noisy synthetic loss."""
    noise = 0.01 * np.sin(np.asarray(step) * 1.7 + seed)
    return 1.5 + 2.0 / np.sqrt(1.0 + np.asarray(step) / 10.0) + noise


class Live:
    """A store with one finished run and one running run that tests can keep logging to."""

    def __init__(self, db: Path) -> None:
        self.db = db
        with runcast.init(project="ui", name="done", config={"schedule": SPEC}, db=str(db)) as r:
            for s in range(TOTAL):
                r.log({"loss": float(loss_at(s, 1)), "lr": 1e-3}, step=s)
        self.done_id = str(r.id)
        self.run = runcast.init(project="ui", name="live", config={"schedule": SPEC}, db=str(db))
        self.live_id = str(self.run.id)
        self.step = -1
        self.log(100)

    def log(self, n: int) -> int:
        """Log ``n`` more steps of the live run and flush them; returns the last step."""
        for _ in range(n):
            self.step += 1
            self.run.log({"loss": float(loss_at(self.step))}, step=self.step)
        self.run.flush()
        return self.step

    def close(self) -> None:
        self.run.finish()


@pytest.fixture
def live(db_path: Path) -> Iterator[Live]:
    """The store with a finished and a running run (finished at teardown)."""
    lv = Live(db_path)
    yield lv
    lv.close()


@pytest.fixture(scope="module")
def shared_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Like ``live``, shared by a module's tests (which must only read it)."""
    lv = Live(tmp_path_factory.mktemp("ui") / "runcast.db")
    yield lv
    lv.close()


@pytest.fixture(scope="module")
def server(shared_live: Live) -> Iterator[Any]:
    """A dashboard on a free port over ``shared_live``'s store."""
    srv = start(shared_live.db, port=0)
    yield srv
    stop(srv)
