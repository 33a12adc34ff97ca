"""Reports: a run's curves, forecast band, LR schedule and schedule what-ifs, as one offline
HTML file (plotly) or static PNGs (matplotlib).

Plot data is computed into named tuples (``_data``, ``_whatif``, ``_build``) and drawn by
separate renderers (``_plotly``, ``_mpl``), so the numbers are tested, not the pixels.

Example:
    >>> import os, tempfile, runcast
    >>> from runcast.report import build_report, write_html
    >>> d = tempfile.mkdtemp()
    >>> with runcast.init(project="p", name="a", db=os.path.join(d, "r.db")) as run:
    ...     for s in range(40):
    ...         run.log({"loss": 2.0 + 1.0 / (1 + s)}, step=s)
    >>> rep = build_report(runcast.open_store(os.path.join(d, "r.db")), [run.id], whatif=False)
    >>> path = write_html(rep, os.path.join(d, "report.html"))
    >>> path.stat().st_size > 1_000_000  # plotly.js is embedded, so it works offline
    True
"""

from __future__ import annotations

from pathlib import Path

from runcast.report._build import (
    Report,
    RunPanel,
    build_panel,
    build_report,
    forecast_band,
    planned_total,
    run_schedule,
)
from runcast.report._data import (
    BandData,
    CurveData,
    FinalData,
    LRData,
    auto_beta,
    band_data,
    curve_data,
    ema,
    lr_data,
    reached,
    trend,
)
from runcast.report._profile import (
    Profile,
    TimeToTarget,
    performance_profile,
    profile_figure,
    time_to_target,
    write_profile_html,
)
from runcast.report._whatif import Scenario, WhatIfData, alternative_schedules, whatif_data


def write_html(report: Report, path: str | Path) -> Path:
    """Write ``report`` as one self-contained HTML file; returns its path.

    Example: see the module docstring.
    """
    from runcast.report._plotly import to_html

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_html(report), encoding="utf-8")
    return out


def write_png(report: Report, out_dir: str | Path) -> list[Path]:
    """Write the report's figures as PNG files into ``out_dir`` (needs ``runcast[png]``).

    Returns the written paths: one per run, one per schedule what-if, and a comparison when
    there are several runs.
    """
    from runcast.report._mpl import write_pngs

    return write_pngs(report, out_dir)


__all__ = [
    "BandData",
    "CurveData",
    "FinalData",
    "LRData",
    "Profile",
    "Report",
    "RunPanel",
    "Scenario",
    "TimeToTarget",
    "WhatIfData",
    "alternative_schedules",
    "auto_beta",
    "band_data",
    "build_panel",
    "build_report",
    "curve_data",
    "ema",
    "forecast_band",
    "lr_data",
    "performance_profile",
    "planned_total",
    "profile_figure",
    "reached",
    "run_schedule",
    "time_to_target",
    "trend",
    "whatif_data",
    "write_html",
    "write_png",
    "write_profile_html",
]
