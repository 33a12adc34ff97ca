"""Render a :class:`Report` as static PNG figures with matplotlib (for papers and slides).

Draws from the same plot data as the HTML report; uses the non-interactive Agg backend so it
works on machines without a display.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from runcast._optional import require
from runcast.report._build import Report, RunPanel
from runcast.report._plotly import MEDIAN_COLOUR, PALETTE, whatif_colour, y_range


def _safe(name: str) -> str:
    """A file-name-safe version of a run name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "run"


def _text(s: str) -> str:
    r"""``s`` as matplotlib draws it literally. A ``$`` starts mathtext (a run named ``$\x$``
    made savefig raise ValueError, ``a$b$c`` drew ``b`` in italics), and a legend drops a label
    that starts with ``_`` (a run named ``_base`` had no legend entry); an invisible zero-width
    space in front keeps it.

    Example:
        >>> _text("cost $5$"), _text("_base") == "\u200b_base"
        ('cost \\$5\\$', True)
    """
    s = s.replace("$", r"\$")
    return "\u200b" + s if s.startswith("_") else s


def _pyplot() -> Any:
    mpl = require("matplotlib", extra="png", purpose="to write PNG figures (--png)")
    mpl.use("Agg")  # no display needed; must happen before pyplot is imported
    import matplotlib.pyplot as plt

    return plt


def _run_png(panel: RunPanel, colour: str, path: Path, plt: Any) -> None:
    fig, (ax, ax_lr) = plt.subplots(
        2, 1, figsize=(8, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    c = panel.curve.thinned()
    label = _text(c.label)
    ax.plot(c.step, c.raw, color=colour, alpha=0.25, lw=0.8, label=f"{label} (raw)")
    ax.plot(c.step, c.smooth, color=colour, lw=1.8, label=f"{label} (EMA β={c.beta:.3g})")
    b = panel.band
    if b is not None:
        # the band is of the trend (see report._build.trend_forecast), drawn under the median
        ax.fill_between(b.step, b.lo95, b.hi95, color=colour, alpha=0.15, lw=0,
                        label="trend forecast 95%")  # fmt: skip
        ax.fill_between(b.step, b.lo80, b.hi80, color=colour, alpha=0.3, lw=0,
                        label="trend forecast 80%")  # fmt: skip
        # in ink, on top: in the run's colour it hid under the smoothed curve
        ax.plot(b.step, b.median, color=MEDIAN_COLOUR, ls="--", lw=1.6, zorder=5,
                label=f"forecast median (made at step {b.cutoff_step})")  # fmt: skip
        ax.axvline(b.cutoff_step, color="grey", ls=":", lw=1)
        f = b.final
        ax.errorbar(
            [f.step],
            [f.median],
            yerr=[[f.median - f.lo80], [f.hi80 - f.median]],
            fmt="D",
            color=colour,
            capsize=4,
            zorder=6,
            label=f"final {f.median:.4g} [80%: {f.lo80:.4g}, {f.hi80:.4g}]",
        )
        if b.actual_final is not None:
            ax.plot([f.step], [b.actual_final], "kx", ms=8, zorder=7,
                    label=f"reached {b.actual_final:.4g} (trend at the last step)")  # fmt: skip
        # the HTML report's range: from half the cut-off on, the whole band included (its
        # 95% ran off the top of the axis); the first steps would dwarf the rest
        ax.set_ylim(*y_range(panel))
    ax.set_ylabel(_text(panel.key))
    ax.set_title(_text(f"{panel.name} ({panel.run_id})"))
    ax.legend(fontsize=7, loc="upper right")
    if panel.lr is not None:
        ax_lr.plot(panel.lr.step, panel.lr.lr, color="#444", lw=1.2)
    ax_lr.set_ylabel("LR")
    ax_lr.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _whatif_png(panel: RunPanel, path: Path, plt: Any) -> None:
    assert panel.whatif is not None
    fig, (ax, ax_lr) = plt.subplots(
        2, 1, figsize=(8, 5.5), sharex=True, gridspec_kw={"height_ratios": [2.5, 1]}
    )
    for i, s in enumerate(panel.whatif.scenarios):
        colour = whatif_colour(i, s.is_actual)
        lw = 2.2 if s.is_actual else 1.3
        name = f"{s.name} (the law's fit)" if s.is_actual else s.name
        ax.plot(s.step, s.loss, color=colour, lw=lw, label=_text(f"{name}: {s.final:.4g}"))
        ax_lr.plot(s.step, s.lr, color=colour, lw=lw)
    tail = [s.loss[len(s.loss) // 4 :] for s in panel.whatif.scenarios]
    lo, hi = min(float(t.min()) for t in tail), max(float(t.max()) for t in tail)
    if hi > lo:
        ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
    ax.set_ylabel(_text(f"predicted {panel.key}"))
    ax.set_title(_text(f"{panel.name}: schedule what-ifs (law {panel.whatif.law})"))
    ax.legend(fontsize=7)
    ax_lr.set_ylabel("LR")
    ax_lr.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _comparison_png(report: Report, path: Path, plt: Any) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, p in enumerate(report.runs):
        colour = PALETTE[i % len(PALETTE)]
        c = p.curve.thinned()
        ax.plot(c.step, c.smooth, color=colour, lw=1.6, label=_text(p.name))
        if p.band is not None:
            ax.plot(p.band.step, p.band.median, color=colour, ls="--", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel(_text(report.key))
    ax.set_title(_text(f"Comparison: {report.key}"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def write_pngs(report: Report, out_dir: str | Path) -> list[Path]:
    """Write one PNG per run (metric + forecast + LR), per what-if, and a comparison.

    Returns the written paths, in order.
    """
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if len(report.runs) > 1:
        path = out / "comparison.png"
        _comparison_png(report, path, plt)
        written.append(path)
    for i, p in enumerate(report.runs):
        path = out / f"{_safe(p.name)}-{p.run_id}.png"
        _run_png(p, PALETTE[i % len(PALETTE)], path, plt)
        written.append(path)
        if p.whatif is not None:
            path = out / f"{_safe(p.name)}-{p.run_id}-whatif.png"
            _whatif_png(p, path, plt)
            written.append(path)
    if report.batch:
        from runcast.report._batch import batch_png

        for d in report.batch:
            written.append(batch_png(d, out / f"{_safe(d.name)}-{d.run_id}-batch.png", plt))
    return written
