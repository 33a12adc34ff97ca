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


@pytest.mark.parametrize("name", ["$\\foo$", "cost $5", "_base", "a$b$c"])
def test_names_with_dollars_or_underscores_draw_as_written(
    small_report: Any, tmp_path: Path, name: str
) -> None:
    import matplotlib.pyplot as plt

    from runcast.report._mpl import _text

    # "$\foo$" was mathtext: savefig raised ValueError (unknown symbol) and lost every figure
    one = small_report._replace(runs=(small_report.runs[0]._replace(name=name, whatif=None),))
    assert len(write_png(one, tmp_path)) == 1
    # what matplotlib draws is the name itself, and a legend keeps a label starting with "_"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label=_text(name))
    texts = [t.get_text() for t in ax.legend().get_texts()]
    fig.canvas.draw()
    drawn = ax.get_legend().get_texts()[0]._preprocess_math(texts[0])[0]
    plt.close(fig)
    assert len(texts) == 1 and drawn.lstrip("\u200b") == name
