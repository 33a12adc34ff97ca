"""``runcast compare RUN... --metric val_loss --target T``: which run reached a result first.

Each run's time to the target, in steps and in seconds since the run started, its ratio to the
fastest (AlgoPerf's ``r = t / best t``) and its score ``(r_max - r) / (r_max - 1)`` (0 past
``r_max``). A run that has not reached the target yet gets a forecast of the step it will
(its planned length, or ``--until``), marked as a forecast; one that missed it for good counts
as infinite.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from runcast.cli._common import console, db_path, friendly_errors


def compare(
    runs: Annotated[list[str], typer.Argument(help="Run ids or names (runcast runs list).")],
    target: Annotated[float, typer.Option("--target", "-t", help="The value to reach.")],
    metric: Annotated[str, typer.Option("--metric", "-m", help="The metric to read.")] = (
        "val_loss"
    ),
    until: Annotated[
        int | None,
        typer.Option(
            "--until",
            min=1,
            help="Forecast runs that have not reached the target up to this step (default: "
            "each run's planned length from its config or schedule; none: no forecast).",
        ),
    ] = None,
    up: Annotated[
        bool, typer.Option("--up", help="Higher is better (an accuracy): reach target or more.")
    ] = False,
    r_max: Annotated[
        float, typer.Option("--r-max", min=1.01, help="The largest ratio that scores.")
    ] = 4.0,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the profile as an HTML file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    db: Annotated[str | None, typer.Option("--db", help="The run store.")] = None,
) -> None:
    """Time to result: when each run reached --target on --metric, and how it ranks."""
    import runcast
    from runcast.report import performance_profile, time_to_target, write_profile_html

    with friendly_errors(), runcast.open_store(db_path(db), create=False) as store:
        rows: list[dict[str, Any]] = []
        for name in runs:
            info = store.run(name)
            curve, walls = _curve(store, info.id, metric)
            horizon = until if until is not None else _planned(info.config)
            hit = time_to_target(
                curve,
                target,
                wall=walls,
                start=info.start_time,
                until=horizon,
                direction="up" if up else "down",
            )
            rows.append({"run": info.name, "id": info.id, "hit": hit, "last": int(curve.step[-1])})
        label = [f"{r['run']} ({r['id']})" for r in rows]
        steps = {lab: {metric: r["hit"].step} for lab, r in zip(label, rows, strict=True)}
        secs = {lab: {metric: r["hit"].seconds} for lab, r in zip(label, rows, strict=True)}
        marks = {lab: {metric: r["hit"].forecast} for lab, r in zip(label, rows, strict=True)}
        by_steps = performance_profile(steps, r_max=r_max, forecast=marks)
        by_secs = performance_profile(secs, r_max=r_max, forecast=marks)
        out = [
            {
                "run": r["run"],
                "id": r["id"],
                "step": _num(r["hit"].step),
                "seconds": _num(r["hit"].seconds),
                "forecast": r["hit"].forecast,
                "interval_80": r["hit"].interval,
                "ratio_steps": _num(by_steps.ratios[lab][metric]),
                "ratio_seconds": _num(by_secs.ratios[lab][metric]),
                "score_steps": by_steps.scores[lab],
                "score_seconds": by_secs.scores[lab],
            }
            for r, lab in zip(rows, label, strict=True)
        ]
        if html is not None:
            write_profile_html(by_steps, str(html), title=f"Time to {metric} = {target:g}")
        if as_json:
            console.print_json(json.dumps({"metric": metric, "target": target, "runs": out}))
            return
        _table(out, f"Time to {metric} {'≥' if up else '≤'} {target:g}", rows)
        if html is not None:
            console.print(f"Wrote [bold]{escape(str(html))}[/]")


def _curve(store: Any, run_id: str, metric: str) -> tuple[Any, np.ndarray]:
    """The metric as a Curve (finite points, last write of a step wins) and its wall times."""
    from runcast import Curve
    from runcast.errors import InvalidInputError

    if metric not in store.keys(run_id):
        raise InvalidInputError(
            f"Run {run_id} has no metric {metric!r}; it has {store.keys(run_id)}. Pass "
            "--metric with one of those."
        )
    p = store.points(run_id, metric)
    keep = np.isfinite(p.value)
    step, value, wall = p.step[keep], p.value[keep], p.wall[keep]
    if step.size == 0:
        raise InvalidInputError(f"Run {run_id}'s {metric!r} has no finite value to compare.")
    # the last write of each step wins (a resumed run may log a step twice)
    order = np.argsort(step, kind="stable")
    step, value, wall = step[order], value[order], wall[order]
    last = np.append(step[1:] != step[:-1], True)
    return Curve(step[last], value[last], name=metric), wall[last]


def _planned(config: dict[str, Any]) -> int | None:
    from runcast.report import planned_total, run_schedule

    try:
        return planned_total(config, run_schedule(config))
    except Exception:  # an unusable schedule in the config: no planned length, no forecast
        return planned_total(config, None)


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _table(out: list[dict[str, Any]], title: str, rows: list[Any]) -> None:
    table = Table(title=escape(title))
    for col in ("run", "step", "seconds", "ratio (steps)", "ratio (s)", "score", "note"):
        table.add_column(col, justify="left" if col in ("run", "note") else "right")
    for o, r in zip(out, rows, strict=True):
        if o["forecast"]:
            lo, hi = o["interval_80"]
            note = f"forecast (80%: {_fmt(lo)}-{_fmt(hi)})"
        elif o["step"] is None:
            note = f"not reached by step {r['last']}"
        else:
            note = "reached"
        table.add_row(
            escape(f"{o['run']} ({o['id']})"),
            _fmt(o["step"]),
            _fmt(o["seconds"], 1),
            _fmt(o["ratio_steps"], 2),
            _fmt(o["ratio_seconds"], 2),
            f"{o['score_steps']:.3f}",
            note,
        )
    console.print(table)


def _fmt(v: float | None, digits: int = 0) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    return f"{v:.{digits}f}"


def register(app: typer.Typer) -> None:
    """Add ``runcast compare`` to the command line."""
    app.command("compare")(compare)
