"""``runcast sync LOCAL URL``: copy runs recorded offline (a laptop, a cluster node without
network) into the team's store, idempotently; ``--every`` keeps copying while runs train."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.markup import escape

from runcast.cli._common import console, friendly_errors


def sync_command(
    source: Annotated[str, typer.Argument(help="The store the runs were recorded in (a file).")],
    target: Annotated[
        str, typer.Argument(help="The store to copy them into (a postgresql:// URL or a file).")
    ],
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Copy only this project's runs.")
    ] = None,
    every: Annotated[
        float | None,
        typer.Option(
            "--every",
            help="Sync again every SECONDS until interrupted (Ctrl-C): runs that are still "
            "training reach the team store as they go.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary.")] = False,
) -> None:
    """Copy the runs of SOURCE into TARGET, keeping their ids, forks and statuses.

    Only what TARGET lacks is copied: running it twice adds nothing, and after a kill it goes
    on where it stopped. Example: runcast sync runcast.db postgresql://me@db.lab/runs
    """
    from runcast.store import open_store, redact
    from runcast.store._sync import sync

    with friendly_errors():
        if every is not None and not 0 < every < float("inf"):
            raise typer.BadParameter(f"--every must be a positive number of seconds, got {every}.")
        with open_store(source, create=False) as src, open_store(target) as dst:
            while True:
                start = time.perf_counter()
                line = None if quiet else (lambda text: console.print(f"  {escape(text)}"))
                report = sync(src, dst, project=project, progress=line)
                took = time.perf_counter() - start
                console.print(
                    f"Synced {escape(source)} -> {escape(redact(target))}: "
                    f"{len(report.new)} new run(s), {len(report.updated)} updated, "
                    f"{report.unchanged} already there; {report.points:,} points copied "
                    f"in {took:.1f} s."
                )
                for conflict in report.conflicts:
                    console.print(f"[yellow]not copied:[/] {escape(conflict)}")
                if every is None:
                    break
                time.sleep(every)
        if report.conflicts:
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``runcast sync`` to the command."""
    app.command("sync")(sync_command)
