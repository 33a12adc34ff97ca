"""The ``runcast`` command: ``runcast --help`` lists what it does.

Each area registers its commands from its own module (``_runs``, ``_io``, ``_law``, ...), so
the modules stay small and import their heavy dependencies only when a command runs.
"""

from __future__ import annotations

import importlib

import typer

from runcast._version import __version__
from runcast.cli._common import console, state

app = typer.Typer(
    name="runcast",
    help="Forecast and steer neural-network training runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# modules that each define register(app); order is the order of `runcast --help`
_COMMAND_MODULES = (
    "_demo",
    "_runs",
    "_io",
    "_forecast",
    "_law",
    "_plan",
    "_scale",
    "_cbs",
    "_report",
    "_compare",
    "_verify",
    "_ui",
    "_sync",
)


def _version(value: bool) -> None:
    if value:
        console.print(f"runcast {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    db: str | None = typer.Option(
        None, "--db", help="The run store (default: $RUNCAST_DB or ./runcast.db).", envvar=None
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Forecast and steer neural-network training runs."""
    state.db = db


for _name in _COMMAND_MODULES:
    importlib.import_module(f"runcast.cli.{_name}").register(app)


def main() -> None:
    """Entry point of the ``runcast`` console script."""
    app()


__all__ = ["app", "main"]
