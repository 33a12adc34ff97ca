"""``runcast import csv|jsonl|tb|wandb PATH``: record other trackers' logs as runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from runcast.cli._common import console, db_path, friendly_errors

if TYPE_CHECKING:
    from runcast.store import RunInfo

import_app = typer.Typer(
    help="Import runs from CSV, JSONL, TensorBoard or W&B export files.", no_args_is_help=True
)

_DB = typer.Option(None, "--db", help="The run store (default: $RUNCAST_DB or ./runcast.db).")
_PROJECT = typer.Option("imported", "--project", "-p", help="Project to record the run under.")
_NAME = typer.Option(None, "--name", "-n", help="Run name (default: the file or folder name).")
_STEP = typer.Option(None, "--step", help="The step column (default: step, _step, global_step).")
_COLUMN = typer.Option(
    None,
    "--column",
    "-c",
    help="A metric column to import, as COLUMN or COLUMN=KEY to rename it (repeatable; "
    "default: every numeric column).",
)
_WALL = typer.Option(None, "--wall", help="A column of Unix wall times to keep.")


def _columns(column: list[str] | None) -> dict[str, str] | None:
    if not column:
        return None
    pairs = (c.split("=", 1) if "=" in c else (c, c) for c in column)
    return {src: dst for src, dst in pairs}


def _run(what: str, path: Path, load: Callable[[], RunInfo]) -> None:
    with friendly_errors():
        # names and paths are the user's text: escaped, so "[/x]" in one is not rich markup
        with console.status(f"Importing {what} {escape(str(path))} ..."):
            info = load()
        console.print(
            f"Imported {info.n_points:,} points from {escape(str(path))} as run "
            f"[bold]{info.id}[/] ({escape(repr(info.name))}, project "
            f"{escape(repr(info.project))}). See it with: runcast runs show {info.id}"
        )


@import_app.command("csv")
def import_csv(
    path: Annotated[Path, typer.Argument(help="The CSV (or .tsv) file.")],
    project: str = _PROJECT,
    name: str | None = _NAME,
    step: str | None = _STEP,
    column: list[str] | None = _COLUMN,
    wall: str | None = _WALL,
    delimiter: str | None = typer.Option(None, "--delimiter", help="Field separator."),
    db: str | None = _DB,
) -> None:
    """Import a CSV log: a step column and one column per metric."""
    from runcast import io

    _run(
        "CSV",
        path,
        lambda: io.import_csv(
            path, db_path(db), project, name, None, step, _columns(column), wall, delimiter
        ),
    )


@import_app.command("jsonl")
def import_jsonl(
    path: Annotated[Path, typer.Argument(help="The JSON-lines file (one object per line).")],
    project: str = _PROJECT,
    name: str | None = _NAME,
    step: str | None = _STEP,
    column: list[str] | None = _COLUMN,
    wall: str | None = _WALL,
    db: str | None = _DB,
) -> None:
    """Import a JSONL log: one {"step": ..., "<metric>": ...} object per line."""
    from runcast import io

    _run(
        "JSONL",
        path,
        lambda: io.import_jsonl(
            path, db_path(db), project, name, None, step, _columns(column), wall
        ),
    )


@import_app.command("tb")
def import_tb(
    path: Annotated[Path, typer.Argument(help="A TensorBoard log folder (or one event file).")],
    project: str = _PROJECT,
    name: str | None = _NAME,
    db: str | None = _DB,
) -> None:
    """Import every scalar of a TensorBoard log folder, with no subsampling."""
    from runcast import io

    _run("TensorBoard logs", path, lambda: io.import_tensorboard(path, db_path(db), project, name))


@import_app.command("wandb")
def import_wandb(
    path: Annotated[Path, typer.Argument(help="A W&B history CSV export (_step column).")],
    project: str = _PROJECT,
    name: str | None = _NAME,
    db: str | None = _DB,
) -> None:
    """Import a W&B history CSV export (run.history().to_csv(), or a chart's Export CSV)."""
    from runcast import io

    _run("W&B export", path, lambda: io.import_wandb(path, db_path(db), project, name))


def register(app: typer.Typer) -> None:
    """Add ``runcast import ...`` to the app."""
    app.add_typer(import_app, name="import")
