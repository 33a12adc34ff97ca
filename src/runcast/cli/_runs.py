"""``runcast runs list|show|rm|export``: look at and manage the runs in a store."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from runcast.cli._common import console, db_path, friendly_errors

if TYPE_CHECKING:
    from runcast.store import RunInfo, Store

runs_app = typer.Typer(
    help="List, show, delete and export the runs in the store.", no_args_is_help=True
)

_DB = typer.Option(None, "--db", help="The run store (default: $RUNCAST_DB or ./runcast.db).")
#: a config with more keys than this is folded into one line unless --config is given
CONFIG_ROWS = 15
_MISSING = "[dim]—[/]"
_STATUS_STYLE = {"running": "cyan", "finished": "green", "failed": "red", "killed": "yellow"}


def _open(db: str | None) -> Store:
    from runcast.store import open_store

    return open_store(db_path(db), create=False)


def _when(t: float | None) -> str:
    return "" if t is None else time.strftime("%m-%d %H:%M", time.localtime(t))


def _duration(info: RunInfo) -> str:
    seconds = (info.end_time or time.time()) - info.start_time
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _as_dict(info: RunInfo) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(info)


def _json(obj: Any) -> str:
    """Strict JSON (what jq and JavaScript read): NaN and inf, in configs and last values,
    become null instead of the bare NaN that json.dumps writes by default."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj), default=str, allow_nan=False)


@runs_app.command("list")
def list_runs(
    project: str | None = typer.Option(None, "--project", "-p", help="Only this project."),
    status: str | None = typer.Option(
        None, "--status", "-s", help="Only runs with this status (running, finished, ...)."
    ),
    limit: int = typer.Option(50, "--limit", "-n", help="Show at most this many (newest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    db: str | None = _DB,
) -> None:
    """List the runs, newest first."""
    from rich import box
    from rich.table import Table

    from runcast.errors import InvalidInputError
    from runcast.store import STATUSES, redact

    with friendly_errors(), _open(db) as store:
        if status is not None and status not in STATUSES:
            # a typo would otherwise list nothing, as if there were no such runs
            raise InvalidInputError(
                f"--status must be one of {', '.join(STATUSES)}, but got {status!r}."
            )
        infos = [r for r in store.runs(project) if status is None or r.status == status]
        shown = infos[: max(limit, 0)]
        if as_json:
            console.print_json(_json([_as_dict(r) for r in shown]))
            return
        if not infos:
            where = escape(redact(db_path(db))) + (
                f" for project {escape(repr(project))}" if project else ""
            )
            console.print(f"No runs in {where}.")
            return
        # every name below is the user's text: escaped, so "[/x]" in one is not rich markup
        # no vertical rules: eight columns and a full run name fit 80 columns
        table = Table(
            title=f"{len(infos)} run(s) in {escape(redact(db_path(db)))}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        # a name is never cut short ("gpt2-ti…" at 80 columns): it folds onto more lines, and
        # the id, status and times keep their width; the other columns give way first
        longest = max((len(r.name) for r in shown), default=4)
        table.add_column("id", no_wrap=True)
        table.add_column("name", overflow="fold", min_width=min(longest, 16))
        table.add_column("project", overflow="fold")
        table.add_column("status", no_wrap=True)
        table.add_column("last step", justify="right")
        table.add_column("points", justify="right")
        table.add_column("started, took")
        for r in shown:
            style = _STATUS_STYLE.get(r.status, "")
            name = escape(r.name) + (
                f" [dim](fork of {escape(str(r.parent_id))} @ {r.fork_step})[/]"
                if r.is_fork
                else ""
            )
            table.add_row(
                escape(r.id),
                name,
                escape(r.project),
                f"[{style}]{r.status}[/]",
                "" if r.last_step is None else f"{r.last_step:,}",
                f"{r.n_points:,}",
                f"{_when(r.start_time)}, {_duration(r)}",
            )
        console.print(table)
        if len(infos) > len(shown):
            console.print(f"[dim]... {len(infos) - len(shown)} older run(s); use --limit.[/]")


@runs_app.command("show")
def show(
    run: str = typer.Argument(..., help="Run id, id prefix or name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    config: bool = typer.Option(
        False, "--config", help=f"List every config key (over {CONFIG_ROWS} are folded)."
    ),
    db: str | None = _DB,
) -> None:
    """Show one run: its status, metrics and config."""
    from rich.table import Table

    with friendly_errors(), _open(db) as store:
        info = store.run(run)
        summary = store.summary(info.id)
        if as_json:
            out = _as_dict(info) | {"metrics": {k: vars(m) for k, m in summary.items()}}
            console.print_json(_json(out))
            return
        style = _STATUS_STYLE.get(info.status, "")
        console.print(
            f"[bold]{escape(info.name)}[/]  id {escape(info.id)}  project {escape(info.project)}"
        )
        console.print(
            f"status [{style}]{info.status}[/], started {_when(info.start_time)}, "
            f"took {_duration(info)}"
        )
        if info.is_fork:
            console.print(f"forked from run {escape(str(info.parent_id))} at step {info.fork_step}")
        best = _best_line(info.config.get("runcast_best"))
        if best:
            console.print(best, highlight=False)
        metrics = Table(title="metrics", title_justify="left")
        for col in ("key", "points", "first step", "last step", "last value", "missing"):
            metrics.add_column(col, justify="left" if col == "key" else "right")
        for m in summary.values():
            metrics.add_row(
                escape(m.key),
                f"{m.n_points:,}",
                f"{m.first_step:,}",
                f"{m.last_step:,}",
                f"{m.last_value:.6g}" if math.isfinite(m.last_value) else _MISSING,
                f"{m.n_missing:,}" if m.n_missing else "",
            )
        # the metrics first: a trainer's config (120 TrainingArguments) buried them
        console.print(metrics if summary else "[dim]no metrics recorded yet[/]")
        if not info.config:
            return
        if len(info.config) > CONFIG_ROWS and not config:
            console.print(
                f"config: {len(info.config)} keys (runcast runs show {escape(info.id)} --config "
                "lists them)",
                highlight=False,
            )
            return
        cfg = Table(title="config", title_justify="left")
        cfg.add_column("key")
        cfg.add_column("value", overflow="fold")
        for key, value in sorted(info.config.items()):
            cfg.add_row(escape(str(key)), _config_value(value))
        console.print(cfg)


def _best_line(entry: Any) -> str:
    """The best evaluation an early-stopping callback recorded (``config["runcast_best"]``):
    which checkpoint to restore, and why the run stopped, if it did."""
    if not isinstance(entry, dict) or "step" not in entry:
        return ""
    value = entry.get("value")
    shown = f"{value:.6g}" if isinstance(value, (int, float)) else _MISSING
    line = f"best {escape(str(entry.get('metric', 'evaluation')))} {shown} at step {entry['step']}"
    if "stop_step" in entry:
        reason = escape(str(entry.get("stop_reason")))
        line += f"; early-stopped at step {entry['stop_step']}: {reason}"
    return line


def _config_value(value: Any) -> str:
    """A config value as the user wrote it; a missing one (None, or the text "None" some
    trainers store for it) shown as missing, not as null or "None"."""
    if value is None or value == "None" or (isinstance(value, float) and math.isnan(value)):
        return _MISSING
    if isinstance(value, str):
        return escape(value)
    return escape(json.dumps(value, default=str))


@runs_app.command("rm")
def rm(
    run: Annotated[list[str], typer.Argument(help="Run id(s), id prefix(es) or name(s).")],
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    force: bool = typer.Option(
        False, "--force", help="Also delete runs that are still running (their process lives)."
    ),
    db: str | None = _DB,
) -> None:
    """Delete runs and all their points."""
    from runcast.errors import StoreError

    with friendly_errors(), _open(db) as store:
        infos = [store.run(r) for r in run]  # resolve all first: a typo deletes nothing
        live = [i.id for i in infos if i.status == "running"]
        if live and not force:
            # its process would go on logging into a run that is gone, and fail at finish()
            raise StoreError(
                f"Run(s) {', '.join(live)} are still running (their process is alive); "
                "nothing was deleted. Stop them first, or pass --force to delete them anyway."
            )
        listed = ", ".join(f"{i.id} ({i.name}, {i.n_points:,} points)" for i in infos)
        if not yes and not typer.confirm(f"Delete {listed}?"):
            raise typer.Abort()
        for info in infos:
            store.delete(info.id)
        console.print(f"Deleted {escape(listed)}.")


@runs_app.command("export")
def export(
    run: Annotated[str, typer.Argument(help="Run id, id prefix or name.")],
    out: Annotated[Path, typer.Argument(help="The file to write (.csv or .parquet).")],
    fmt: str | None = typer.Option(
        None, "--format", "-f", help="csv or parquet (default: from the file name)."
    ),
    layout: str = typer.Option(
        "wide", "--layout", help="wide (step + one column per metric) or long (key,step,value)."
    ),
    key: Annotated[
        list[str] | None, typer.Option("--key", "-k", help="Only these metrics.")
    ] = None,
    db: str | None = _DB,
) -> None:
    """Write a run's metrics to a CSV or Parquet file."""
    from runcast.io import export_run

    with friendly_errors(), _open(db) as store:
        info = store.run(run)
        with console.status(f"Writing {info.n_points:,} points to {escape(str(out))} ..."):
            path = export_run(store, info.id, out, format=fmt, layout=layout, keys=key)  # type: ignore[arg-type]
        console.print(f"Wrote run {info.id} ({escape(info.name)}) to {escape(str(path))}.")


def register(app: typer.Typer) -> None:
    """Add ``runcast runs ...`` to the app."""
    app.add_typer(runs_app, name="runs")
