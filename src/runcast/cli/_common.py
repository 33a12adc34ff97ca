"""Shared pieces of the command line: the console, the --db option, error reporting."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from runcast.errors import RuncastError

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


@dataclass
class State:
    """Options given before the sub-command (``runcast --db PATH runs list``)."""

    db: str | None = None


state = State()


def db_path(override: str | None = None) -> str:
    """The store path: the sub-command's --db, the global --db, RUNCAST_DB, or ./runcast.db."""
    return override or state.db or os.environ.get("RUNCAST_DB") or str(Path("runcast.db"))


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Print a RuncastError as one red line and exit 1, instead of a traceback."""
    try:
        yield
    except RuncastError as err:
        _print_error(str(err))
        raise typer.Exit(1) from err
    except OSError as err:
        # a folder that cannot be created, a disk that is full: the system's words and the path
        # say it all; a traceback would bury them
        _print_error(
            f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)
        )
        raise typer.Exit(1) from err


def _print_error(message: str) -> None:
    # escaped: the message quotes the user's own names, and a path like 'a[b].csv' or a run
    # named 'x[/bold]' is text, not markup (unescaped, one lost its brackets and the other
    # raised MarkupError inside this very handler); soft_wrap keeps a path on one line
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn`` under :func:`friendly_errors`."""
    with friendly_errors():
        return fn()
