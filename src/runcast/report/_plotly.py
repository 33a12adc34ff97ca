"""Render a :class:`Report` as one self-contained HTML file (plotly, its JavaScript inline).

The file works offline: plotly.js is embedded once (``include_plotlyjs=True`` on the first
figure), every later figure reuses it.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from runcast.report._build import Report, RunPanel
from runcast.report._data import BandData, CurveData

# one colour per run (plotly's default qualitative palette), bands drawn in the run's colour
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692")
#: the schedule what-ifs: five of Okabe and Ito's colour-blind-safe colours, the five furthest
#: apart (at least 138 in RGB; plotly's palette gave cosine and "wsd 40%" a green and a cyan
#: that were hard to tell apart), yellow left out (unreadable on white)
WHATIF_PALETTE = ("#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#882255", "#7f7f7f")
#: the forecast median is drawn in ink on top of the run's colour: in the run's own colour it
#: hid under the smoothed curve of a finished run
MEDIAN_COLOUR = "#222222"


def whatif_colour(i: int, is_actual: bool) -> str:
    """The colour of the ``i``-th what-if scenario (the run's own schedule: black)."""
    return "black" if is_actual else WHATIF_PALETTE[(i - 1) % len(WHATIF_PALETTE)]


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _fmt(x: float | None) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.4g}"


def _text(s: str) -> str:
    """``s`` as plotly shows it literally: plotly reads trace names and titles as its own small
    HTML, so a run named ``a<b>c`` was drawn ``ac`` and ``&amp;`` as ``&``.

    Example:
        >>> _text("a<b>c & d")
        'a&lt;b&gt;c &amp; d'
    """
    return html.escape(s, quote=False)


def _prefix(name: str) -> str:
    return f"{_text(name)}: " if name else ""


def band_traces(
    band: BandData, colour: str, name: str, go: Any, median_colour: str = MEDIAN_COLOUR
) -> list[Any]:
    """Plotly traces of a forecast band of the trend: 95% and 80% fills, the median (in ink,
    on top), the final interval, and the value reached."""
    x = band.step.tolist()
    pre = _prefix(name)
    out = []
    for lo, hi, alpha, lvl in ((band.lo95, band.hi95, 0.12, 95), (band.lo80, band.hi80, 0.25, 80)):
        out.append(
            go.Scatter(
                x=x + x[::-1],
                y=hi.tolist() + lo[::-1].tolist(),
                fill="toself",
                fillcolor=_rgba(colour, alpha),
                line={"width": 0},
                hoverinfo="skip",
                name=f"{pre}trend forecast {lvl}%",
                legendgroup=f"{name}-fc",
            )
        )
    out.append(
        go.Scatter(
            x=x,
            y=band.median.tolist(),
            mode="lines",
            line={"color": median_colour, "dash": "dash", "width": 2},
            name=f"{pre}trend forecast median (made at step {band.cutoff_step})",
            legendgroup=f"{name}-fc",
        )
    )
    f = band.final
    out.append(
        go.Scatter(
            x=[f.step],
            y=[f.median],
            mode="markers",
            marker={"color": colour, "symbol": "diamond", "size": 9},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [f.hi80 - f.median],
                "arrayminus": [f.median - f.lo80],
            },
            name=f"{pre}final {_fmt(f.median)} [80% {_fmt(f.lo80)}–{_fmt(f.hi80)}]",
            legendgroup=f"{name}-fc",
        )
    )
    if band.actual_final is not None:
        out.append(
            go.Scatter(
                x=[f.step],
                y=[band.actual_final],
                mode="markers",
                marker={"color": "black", "symbol": "x", "size": 9},
                name=f"{pre}reached {_fmt(band.actual_final)} (trend at the last step)",
            )
        )
    return out


def curve_traces(c: CurveData, colour: str, name: str, go: Any, raw: bool = True) -> list[Any]:
    """Raw points (faint) and the bias-corrected EMA (solid) of one metric.

    Long curves are thinned to ~5000 points (min/max per bucket, spikes kept) so that a report
    of a 100,000-step run stays a few MB and draws fast.
    """
    c = c.thinned()
    out = []
    pre, label = _prefix(name), _text(c.label)
    if raw:
        out.append(
            go.Scatter(
                x=c.step.tolist(),
                y=c.raw.tolist(),
                mode="lines",
                line={"color": _rgba(colour, 0.3), "width": 1},
                name=f"{pre}{_text(c.label)} (raw)",
            )
        )
    out.append(
        go.Scatter(
            x=c.step.tolist(),
            y=c.smooth.tolist(),
            mode="lines",
            line={"color": colour, "width": 2},
            name=f"{pre}{label} (EMA β={c.beta:.3g})" if c.beta > 0 else f"{pre}{label}",
        )
    )
    return out


def y_range(panel: RunPanel) -> list[float]:
    """A y-range that shows the part of the run a forecast is about, not the first steps.

    It spans the smoothed curve from half the forecast's cutoff on and the whole forecast
    band (95% included: it ran off the top of the axis), padded by 10%; the first steps of a
    loss are often 3x higher and would flatten everything else.
    """
    c, b = panel.curve, panel.band
    start = 0 if b is None else b.cutoff_step // 2
    vals = [c.smooth[(c.step >= start) & np.isfinite(c.smooth)]]
    if b is not None:
        vals += [b.median, b.lo95, b.hi95, np.array([b.final.lo95, b.final.hi95])]
        if b.actual_final is not None:
            vals.append(np.array([b.actual_final]))
    allv = np.concatenate(vals)
    allv = allv[np.isfinite(allv)]
    if allv.size == 0:
        return [0.0, 1.0]
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.1 * (hi - lo) or 0.1 * abs(hi) or 0.1
    return [lo - pad, hi + pad]


def run_figure(panel: RunPanel, colour: str = PALETTE[0]) -> Any:
    """The run's metric with its forecast band (top) and its LR schedule (bottom)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25])
    for t in curve_traces(panel.curve, colour, "", go):
        fig.add_trace(t, row=1, col=1)
    for i, other in enumerate(panel.others):
        alt = PALETTE[(PALETTE.index(colour) + i + 1) % len(PALETTE)]
        for t in curve_traces(other, alt, "", go, raw=False):
            t.visible = True if "loss" in other.label else "legendonly"
            fig.add_trace(t, row=1, col=1)
    if panel.band is not None:
        for t in band_traces(panel.band, colour, "", go):
            fig.add_trace(t, row=1, col=1)
        fig.add_vline(x=panel.band.cutoff_step, line={"dash": "dot", "color": "grey"})
        fig.update_yaxes(range=y_range(panel), row=1, col=1)
    if panel.lr is not None:
        fig.add_trace(
            go.Scatter(
                x=panel.lr.step.tolist(),
                y=panel.lr.lr.tolist(),
                mode="lines",
                line={"color": "#444"},
                name=f"LR ({panel.lr.kind})",
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text=_text(panel.key), row=1, col=1)
    fig.update_yaxes(title_text="learning rate", row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_layout(title=_text(f"{panel.name} ({panel.run_id}): {panel.key}"), height=560)
    return fig


def whatif_figure(panel: RunPanel) -> Any:
    """Predicted curves under alternative schedules (top) and those schedules (bottom)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    assert panel.whatif is not None
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3])
    for i, s in enumerate(panel.whatif.scenarios):
        colour = whatif_colour(i, s.is_actual)
        width = 3 if s.is_actual else 1.5
        # every line here is the law's prediction: the run's own is the law's fit to it, not
        # the value it reached (the summary's), so it is labelled as such
        name = f"{s.name} (the law's fit)" if s.is_actual else s.name
        label = f"{_text(name)}: final {_fmt(s.final)}"
        if np.isfinite(s.lo80):
            label += f" [80% {_fmt(s.lo80)}–{_fmt(s.hi80)}]"
        fig.add_trace(
            go.Scatter(
                x=s.step.tolist(),
                y=s.loss.tolist(),
                mode="lines",
                line={"color": colour, "width": width},
                name=label,
                legendgroup=s.name,
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=s.step.tolist(),
                y=s.lr.tolist(),
                mode="lines",
                line={"color": colour, "width": width},
                showlegend=False,
                legendgroup=s.name,
            ),
            row=2,
            col=1,
        )
    lo = min(float(np.min(s.loss[len(s.loss) // 4 :])) for s in panel.whatif.scenarios)
    hi = max(float(np.max(s.loss[len(s.loss) // 4 :])) for s in panel.whatif.scenarios)
    pad = 0.1 * (hi - lo) or 0.1
    fig.update_yaxes(title_text=_text(f"predicted {panel.key}"), range=[lo - pad, hi + pad], row=1)
    fig.update_yaxes(title_text="learning rate", row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_layout(
        title=_text(f"{panel.name}: what other schedules would give (law: {panel.whatif.law})"),
        height=520,
    )
    return fig


def comparison_figure(report: Report) -> Any:
    """Every run's smoothed metric, with each running run's forecast median."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, p in enumerate(report.runs):
        colour = PALETTE[i % len(PALETTE)]
        fig.add_traces(curve_traces(p.curve, colour, p.name, go, raw=False))
        if p.band is not None:
            # the 80% band and the median, in the run's colour: several runs share the plot
            fig.add_traces(band_traces(p.band, colour, p.name, go, median_colour=colour)[1:3])
    fig.update_layout(
        title=_text(f"Comparison of {len(report.runs)} runs: {report.key}"),
        xaxis_title="step",
        yaxis_title=_text(report.key),
        height=500,
    )
    return fig


def figures(report: Report) -> list[tuple[str, Any]]:
    """(section title, figure) pairs in the order the report shows them."""
    out: list[tuple[str, Any]] = []
    if len(report.runs) > 1:
        out.append(("Comparison", comparison_figure(report)))
    for i, p in enumerate(report.runs):
        out.append((f"{p.name}", run_figure(p, PALETTE[i % len(PALETTE)])))
        if p.whatif is not None:
            out.append((f"{p.name}: schedule what-ifs", whatif_figure(p)))
    if report.batch:
        from runcast.report._batch import batch_figure

        out.extend((f"{d.name}: batch size", batch_figure(d)) for d in report.batch)
    if report.scaling is not None:
        from runcast.report._scaling import scaling_figure

        out.append(("Scaling law", scaling_figure(report.scaling)))
    return out


def _summary_table(report: Report) -> str:
    rows = []
    for p in report.runs:
        b = p.band
        fc = "—"
        if b is not None:
            f = b.final
            fc = (
                f"{_fmt(f.median)} [80% {_fmt(f.lo80)}–{_fmt(f.hi80)}] "
                f"<small>at step {f.step}, made at step {b.cutoff_step} ({html.escape(b.method)})"
                "</small>"
            )
        best = "—"
        if p.whatif is not None:
            w = p.whatif.best()
            # the what-ifs are the law's numbers: "this run" at the law's fit, not the value
            # the run reached (the column before)
            fit = "the law's fit: " if w.is_actual else ""
            best = f"{html.escape(w.name)} ({fit}{_fmt(w.final)})"
        last = int(p.curve.step[-1]) if len(p.curve.step) else 0
        rows.append(
            f"<tr><td>{html.escape(p.name)}</td><td><code>{html.escape(p.run_id)}</code></td>"
            f"<td>{html.escape(p.status)}</td><td>{last}"
            f"</td><td>{_fmt(p.final_value)}</td><td>{fc}</td><td>{best}</td></tr>"
        )
    head = (
        "<tr><th>run</th><th>id</th><th>status</th><th>last step</th>"
        f"<th>{html.escape(report.key)} reached <small>(trend at the last step)</small></th>"
        "<th>forecast final value <small>(of the trend)</small></th>"
        "<th>best schedule (predicted)</th></tr>"
    )
    return f"<table class='summary'>{head}{''.join(rows)}</table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1150px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}
table.summary{border-collapse:collapse;width:100%;font-size:.9em}
table.summary td,table.summary th{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left}
.note{color:#a55;font-size:.9em}footer{color:#888;font-size:.8em;margin-top:3em}
"""


def to_html(report: Report) -> str:
    """The whole report as one HTML document with plotly.js embedded (works offline)."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        _summary_table(report),
    ]
    for p in report.runs:
        for note in p.notes:
            parts.append(f"<p class='note'>{html.escape(p.name)}: {html.escape(note)}</p>")
    for i, (title, fig) in enumerate(figures(report)):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(
            fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"responsive": True})
        )
    parts.append(
        f"<footer>Made by runcast on {html.escape(report.created)}. Faint lines: raw points; "
        "solid: bias-corrected EMA; dashed and shaded: the forecast of the trend (the smoothed "
        "curve, not single noisy points), its median and 80% and 95% intervals. A run's value "
        "reached is its trend at the last step; the what-ifs' lines are a loss law's "
        "predictions.</footer>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
