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
        # soft_wrap: a path or a message must stay one line, whatever the terminal width
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from err
    except OSError as err:
        # a folder that cannot be created, a disk that is full: the system's words and the path
        # say it all; a traceback would bury them
        what = f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)
        err_console.print(f"[bold red]error:[/] {what}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from err


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn`` under :func:`friendly_errors`."""
    with friendly_errors():
        return fn()
