"""The HTML renderer: one offline file, the right traces with the plot data's numbers."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runcast.report import write_html
from runcast.report._plotly import (
    MEDIAN_COLOUR,
    figures,
    run_figure,
    to_html,
    whatif_colour,
    whatif_figure,
    y_range,
)


def test_html_embeds_plotly_once_and_needs_no_network(small_report: Any, tmp_path: Path) -> None:
    path = write_html(small_report, tmp_path / "sub" / "r.html")
    text = path.read_text()
    # plotly.js inline (its licence banner), exactly once; no script loaded from anywhere
    assert text.count("plotly.js v") >= 1 and text.count("<script src=") == 0
    assert text.count('<script type="text/javascript">/**\n* plotly.js') <= 1
    assert 'src="http' not in text and "src='http" not in text
    # one plot div per figure: comparison + 2 runs + 2 what-ifs
    assert text.count('class="plotly-graph-div"') == 5
    # names are escaped in the page's own HTML
    assert "beta &lt;b&gt;" in text and "a note" in text


def test_figure_order_and_titles(small_report: Any) -> None:
    titles = [t for t, _ in figures(small_report)]
    assert titles == [
        "Comparison",
        "alpha",
        "alpha: schedule what-ifs",
        "beta <b>",
        "beta <b>: schedule what-ifs",
    ]


def test_run_figure_draws_the_plot_data(small_report: Any) -> None:
    panel = small_report.runs[0]
    fig = run_figure(panel)
    by_name = {t.name: t for t in fig.data}
    raw = by_name["loss (raw)"]
    ema = next(t for n, t in by_name.items() if n.startswith("loss (EMA"))
    np.testing.assert_array_equal(raw.y, panel.curve.raw)
    np.testing.assert_allclose(ema.y, panel.curve.smooth)
    med = next(t for n, t in by_name.items() if n.startswith("trend forecast median"))
    np.testing.assert_allclose(med.y, panel.band.median)
    # the median is drawn in ink, on top: in the run's colour it hid under the smoothed curve
    assert med.line.color == MEDIAN_COLOUR != ema.line.color
    assert list(fig.data).index(med) > list(fig.data).index(ema)
    # the 80% band is a closed polygon: upper edge forward, lower edge back
    b80 = by_name["trend forecast 80%"]
    n = len(panel.band.step)
    np.testing.assert_allclose(b80.y[:n], panel.band.hi80)
    np.testing.assert_allclose(b80.y[n:], panel.band.lo80[::-1])
    # the final interval's error bar spans the 80% interval
    final = next(t for n, t in by_name.items() if n.startswith("final "))
    assert final.y[0] + final.error_y.array[0] == pytest.approx(panel.band.final.hi80)
    assert final.y[0] - final.error_y.arrayminus[0] == pytest.approx(panel.band.final.lo80)
    assert any(n.startswith("LR (wsd)") for n in by_name)


def test_y_range_frames_the_forecast_not_the_first_steps(small_report: Any) -> None:
    panel = small_report.runs[0]
    lo, hi = y_range(panel)
    # the first loss (~3.5) is far above what the forecast is about (~1.6-2.0)
    assert hi < panel.curve.raw[0]
    assert lo < panel.band.final.lo80 and hi > panel.band.median.max()
    # the whole 95% band is inside the axis (it ran off the top)
    assert lo < panel.band.lo95.min() and hi > panel.band.hi95.max()


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


def test_whatif_colours_are_told_apart() -> None:
    # cosine and "wsd 40%" were a green and a cyan 0x2f apart in red and 0x07 in green
    colours = [whatif_colour(i, False) for i in range(1, 6)]
    gaps = [np.linalg.norm(_rgb(a) - _rgb(b)) for a, b in itertools.combinations(colours, 2)]
    assert len(set(colours)) == 5 and min(gaps) > 100
    assert whatif_colour(0, True) == "black"


def test_whatif_figure_has_one_curve_and_one_lr_per_scenario(small_report: Any) -> None:
    fig = whatif_figure(small_report.runs[0])
    assert len(fig.data) == 4
    # the run's own line is the law's fit, labelled so (not the value the run reached)
    assert fig.data[0].name.startswith("this run (the law's fit): final")
    assert fig.data[0].line.width == 3
    assert "[80% " in fig.data[0].name


def test_to_html_without_whatifs_or_bands(small_report: Any) -> None:
    bare = small_report._replace(
        runs=(small_report.runs[0]._replace(whatif=None, band=None, lr=None),)
    )
    text = to_html(bare)
    assert text.count('class="plotly-graph-div"') == 1  # one run, no comparison, no what-if


def test_names_and_keys_reach_plotly_as_literal_text(small_report: Any) -> None:
    from runcast.report._plotly import comparison_figure

    # plotly reads names and titles as its own HTML: "beta <b>" lost "<b>" and made the rest
    # bold, "&amp;" showed as "&"; its entities make it draw what the user wrote
    panel = small_report.runs[1]._replace(key="<i>loss</i> &amp;")
    fig = run_figure(panel)
    assert fig.layout.title.text == "beta &lt;b&gt; (id1): &lt;i&gt;loss&lt;/i&gt; &amp;amp;"
    assert fig.layout.yaxis.title.text == "&lt;i&gt;loss&lt;/i&gt; &amp;amp;"
    assert whatif_figure(panel).layout.title.text.startswith("beta &lt;b&gt;: what other")
    names = [t.name for t in comparison_figure(small_report).data]
    assert "beta &lt;b&gt;: loss (EMA β=0.9)" in names and "alpha: loss (EMA β=0.9)" in names
