"""Shared fixtures: the real curves in ../shared/data and a fresh store path per test."""

from __future__ import annotations

import json
import os
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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A store path in a fresh temporary folder."""
    return tmp_path / "runcast.db"
