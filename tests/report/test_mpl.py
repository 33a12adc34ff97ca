"""The PNG renderer: one figure per run, per what-if, and a comparison; real PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runcast.report import write_png


@pytest.mark.slow
def test_write_png_writes_every_figure(small_report: Any, tmp_path: Path) -> None:
    paths = write_png(small_report, tmp_path / "png")
    names = [p.name for p in paths]
    # comparison first, then each run and its what-if; unsafe characters replaced
    assert names == [
        "comparison.png",
        "alpha-id0.png",
        "alpha-id0-whatif.png",
        "beta_b-id1.png",
        "beta_b-id1-whatif.png",
    ]
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_write_png_single_run_without_extras(small_report: Any, tmp_path: Path) -> None:
    bare = small_report._replace(
        runs=(small_report.runs[0]._replace(whatif=None, band=None, lr=None),)
    )
    assert [p.name for p in write_png(bare, tmp_path)] == ["alpha-id0.png"]
