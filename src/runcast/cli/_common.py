"""Shared pieces of the command line: the console, the --db option, error reporting, warnings
as ``note:`` lines, and the one parser of ``--schedule`` every command uses."""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from runcast.errors import RuncastError, ScheduleError

if TYPE_CHECKING:
    from runcast.schedules import Schedule

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


@dataclass
class State:
    """Options given before the sub-command (``runcast --db PATH runs list``)."""

    db: str | None = None


state = State()


#: names that are log files, never runs (a run's name could be anything else)
LOG_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".gz", ".tsv", ".txt")


def db_path(override: str | None = None) -> str:
    """The store path: the sub-command's --db, the global --db, RUNCAST_DB, or ./runcast.db."""
    return override or state.db or os.environ.get("RUNCAST_DB") or str(Path("runcast.db"))


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Print a RuncastError as one red line and exit 1, instead of a traceback; print warnings
    as ``note:`` lines (see :func:`show_note`)."""
    try:
        with warnings.catch_warnings():
            # catch_warnings restores both on exit: the library's own warning machinery is left
            # as it was; "default" also resets the once-per-location registry, so a second
            # command in the same process (a test, a notebook) shows its notes again
            warnings.showwarning = show_note
            warnings.filterwarnings("default", category=Warning, module="runcast")
            yield
    except RuncastError as err:
        _print_error(as_options(str(err)))
        raise typer.Exit(1) from err
    except OSError as err:
        # a folder that cannot be created, a disk that is full: the system's words and the path
        # say it all; a traceback would bury them
        _print_error(
            f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)
        )
        raise typer.Exit(1) from err


def show_note(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A warning as one ``note:`` line on stderr, like the CLI's own notes: the file path and
    source line Python prints with a warning mean nothing to someone who typed a command."""
    text = as_options(str(message))
    err_console.print(f"[yellow]note:[/] {escape(text)}", highlight=False, soft_wrap=True)


_PASS_ARG = re.compile(r"\b([Pp]ass) (\w+)=(?:'<(\w+)>'|(\.\.\.))?")
_USE_METHOD = re.compile(r"\b([Uu]se) method='([\w+]+)'")
#: the library's arguments that its errors suggest, the options that set them (each command
#: that can raise such an error has the option), and what the option takes
_OPTIONS = {
    "step": ("--step", "COLUMN"),
    "delimiter": ("--delimiter", "CHAR"),
    "format": ("--format", "FORMAT"),
    "wall": ("--wall", "COLUMN"),
    "schedule": ("--schedule", "SPEC"),
}


def as_options(message: str) -> str:
    """``message`` with the Python arguments it suggests ("pass step='<column>'", "use
    method='ensemble'") named as the command's options ("pass --step COLUMN", "use --method
    ensemble"): the user typed a command, not a call.

    Example:
        >>> as_options("no step column found. Pass step='<column>'.")
        'no step column found. Pass --step COLUMN.'
        >>> as_options("Method 'law' needs a schedule: pass schedule=..., or use method='pfn'.")
        "Method 'law' needs a schedule: pass --schedule SPEC, or use --method pfn."
    """

    def sub(m: re.Match[str]) -> str:
        opt = _OPTIONS.get(m.group(2))
        if opt is None:
            return m.group(0)
        named = m.group(3).upper() if m.group(3) else opt[1] if m.group(4) else ""
        return f"{m.group(1)} {opt[0]}" + (f" {named}" if named else "")

    return _USE_METHOD.sub(r"\1 --method \2", _PASS_ARG.sub(sub, message))


def parse_schedule(text: str, option: str = "--schedule") -> Schedule:
    """The one parser of a schedule typed on the command line, for every command: inline JSON
    (``'{"kind": "cosine", ...}'``), a JSON file (a spec, or ``{"schedule": {...}}`` as in the
    catalog), or ``kind:key=value,...``. Malformed JSON and a missing file are one
    :class:`~runcast.errors.ScheduleError` saying where.

    Example:
        >>> parse_schedule('{"kind": "cosine", "peak": 1e-3, "total": 10}').total
        10
        >>> parse_schedule('{"kind": "cosine", "peak": 1e-3 "total": 10}')
        Traceback (most recent call last):
        ...
        runcast.errors.ScheduleError: --schedule is not valid JSON: Expecting ',' delimiter ...
    """
    from runcast.schedules import Schedule

    raw = text.strip()
    where = option
    if raw.startswith("{"):
        body = raw
    elif raw.endswith(".json") or "/" in raw or os.sep in raw or Path(raw).is_file():
        path = Path(raw)
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise ScheduleError(
                f"{option} {raw}: the file {what}. Give a JSON file, inline JSON "
                "('{\"kind\": \"cosine\", ...}') or 'kind:key=value,...'."
            )
        try:
            body = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError as err:
            raise ScheduleError(f"{option} {raw}: not a UTF-8 text file ({err.reason}).") from None
        where = f"{option} {raw}"
        if not body.startswith(("{", "[")):
            return Schedule.from_string(body)  # a file holding 'kind:key=value,...'
    else:
        return Schedule.from_string(raw)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        near = body[max(0, err.pos - 24) : err.pos] + ">>>" + body[err.pos : err.pos + 12]
        raise ScheduleError(
            f"{where} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno} "
            f"(here: ...{near}). Write it as JSON, 'kind:key=value,...' or the path of a JSON "
            "file."
        ) from None
    if isinstance(data, dict) and isinstance(data.get("schedule"), dict):
        data = data["schedule"]  # a catalog-style entry: the spec under "schedule"
    if not isinstance(data, dict):
        raise ScheduleError(
            f'{where} must be a JSON object like {{"kind": "cosine", "peak": 1e-3, '
            f'"total": 10000}}, but got a {type(data).__name__}.'
        )
    return Schedule.from_spec(data)


def _print_error(message: str) -> None:
    # escaped: the message quotes the user's own names, and a path like 'a[b].csv' or a run
    # named 'x[/bold]' is text, not markup (unescaped, one lost its brackets and the other
    # raised MarkupError inside this very handler); soft_wrap keeps a path on one line
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn`` under :func:`friendly_errors`."""
    with friendly_errors():
        return fn()


_TYPE_NAMES = {"int": "INTEGER", "str": "TEXT", "float": "FLOAT", "Path": "PATH"}


def _plain_placeholders() -> None:
    """``--help`` names what to type, as click does (``SOURCE``, ``--until INTEGER``, a flag
    with no placeholder), instead of typer's Python types (``{source}``, ``<int>``,
    ``--json <bool>`` on a flag that takes no value, ``<list[Path]>``).

    typer offers no setting for this, so its three display methods are replaced; only the
    ``runcast`` command imports this module. tests/cli/test_main.py checks the help text.
    """
    from typer import core

    def option_type(self: Any, ctx: Any) -> str | None:
        if self.metavar is not None:
            return str(self.metavar)
        if self.is_flag or self.count:
            return None
        label = str(self.display_type(ctx)).strip("<>")  # e.g. "int", "list[str]", "a|b"
        label = re.sub(r"^list\[(.*)\]$", r"\1", label)  # a repeatable option: one value
        kind, _, rest = label.partition(" ")  # "int range": INTEGER RANGE, as click says
        return " ".join([_TYPE_NAMES.get(kind, kind.upper()), rest.upper()]).strip()

    def argument_name(self: Any) -> str:
        return str(self.metavar or (self.name or "").upper())

    def argument_usage(self: Any) -> str:
        name = argument_name(self)
        if not self.required:
            name = f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    core.TyperOption.display_type_rich = option_type  # type: ignore[method-assign,assignment]
    core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]
    core.TyperArgument.display_name_raw = property(argument_name)  # type: ignore[assignment,method-assign]
    core.TyperArgument._usage_display_name = argument_usage  # type: ignore[method-assign]


_plain_placeholders()
