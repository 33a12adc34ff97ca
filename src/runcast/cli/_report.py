"""``runcast report RUN... -o report.html [--png DIR] [--key loss]``: one offline HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from runcast.cli._common import console, db_path, friendly_errors


def report(
    runs: Annotated[list[str], typer.Argument(help="Run ids or names (runcast runs list).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    png: Annotated[
        Path | None, typer.Option("--png", help="Also write PNG figures into this folder.")
    ] = None,
    key: Annotated[str, typer.Option("--key", "-k", help="The metric to plot and forecast.")] = (
        "loss"
    ),
    cutoff: Annotated[
        float,
        typer.Option(
            "--from",
            min=0.01,
            max=0.99,
            help="For a finished run, forecast from this fraction of it (shows how early the "
            "end was known).",
        ),
    ] = 0.2,
    whatif: Annotated[
        bool, typer.Option("--whatif/--no-whatif", help="Fit a law and add schedule what-ifs.")
    ] = True,
    db: Annotated[str | None, typer.Option("--db", help="The run store.")] = None,
) -> None:
    """Write a self-contained HTML report (works offline) of one or more runs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    import runcast
    from runcast.report import build_report, write_html, write_png

    with friendly_errors(), runcast.open_store(db_path(db), create=False) as store:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("report", total=len(runs))

            started: list[str] = []

            def on_run(run: str) -> None:
                # called before each run: the runs before it are done
                bar.update(task, completed=len(started), description=f"run {run}: forecast")
                started.append(run)

            rep = build_report(store, runs, key, cutoff, whatif, on_run=on_run)
        path = write_html(rep, out)
        console.print(
            f"Wrote [bold]{escape(str(path))}[/] "
            f"({path.stat().st_size / 1e6:.1f} MB, works offline)"
        )
        for p in rep.runs:
            for note in p.notes:
                console.print(f"[yellow]{escape(p.name)}:[/] {escape(note)}")
        if png is not None:
            for f in write_png(rep, png):
                console.print(f"Wrote {escape(str(f))}")


def register(app: typer.Typer) -> None:
    """Add ``runcast report`` to the command line."""
    app.command("report")(report)
