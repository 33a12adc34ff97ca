"""``runcast law fit`` and ``runcast law predict``: fit a loss law to runs, predict any schedule.

Heavy imports (numpy, scipy, the laws) happen inside the commands so ``runcast --help`` stays
fast.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from runcast.cli._common import (
    LOG_SUFFIXES,
    console,
    err_console,
    friendly_errors,
    parse_schedule,
)

if TYPE_CHECKING:
    from runcast.curve import Curve
    from runcast.schedules import Schedule

law_app = typer.Typer(
    help="Loss laws over LR schedules: fit runs, predict the loss of any schedule.",
    no_args_is_help=True,
)
LAW_NAMES = ("auto", "runcast", "mpl", "momentum", "grid")


def read_rows(path: Path, metric: str) -> list[dict[str, Any]]:
    """The data rows of a CSV/JSONL log (``.gz`` too), checked to have ``step`` and ``metric``.

    Shared by ``runcast law`` and ``runcast plan``, which read the same logs.
    """
    from runcast.errors import ImportFormatError

    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file.")
    opener: Any = gzip.open if path.suffix == ".gz" else open
    jsonl = ".jsonl" in path.suffixes or ".ndjson" in path.suffixes
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as fh:
            rows = (
                [json.loads(line) for line in fh if line.strip()]
                if jsonl
                else [*csv.DictReader(fh)]
            )
    except UnicodeDecodeError as err:
        raise ImportFormatError(f"{path}: not a UTF-8 text log ({err.reason}).") from None
    except json.JSONDecodeError as err:
        raise ImportFormatError(
            f"{path}: a line is not JSON ({err}); each line of a .jsonl log is one object."
        ) from None
    if not rows:
        raise ImportFormatError(f"{path}: the file has no data rows.")
    if not all(isinstance(r, dict) for r in rows):
        raise ImportFormatError(
            f'{path}: each line must be a JSON object like {{"step": 100, "loss": 2.5}}.'
        )
    for need in ("step", metric):
        if need not in rows[0]:
            raise ImportFormatError(
                f"{path}: no {need!r} column (columns: {', '.join(rows[0])}); "
                + ("pass --metric NAME." if need == metric else "name the step column 'step'.")
            )
    return rows


def column(rows: list[dict[str, Any]], name: str, path: Path) -> Any:
    """Column ``name`` of ``rows`` as a float array; an empty or absent cell is NaN."""
    import numpy as np

    from runcast.errors import ImportFormatError

    out = np.full(len(rows), np.nan)
    for i, r in enumerate(rows):
        v = r.get(name)
        if isinstance(v, str):
            v = v.strip()
        if v in ("", None):
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise ImportFormatError(
                f"{path}, row {i + 1}: column {name!r} holds {v!r}, not a number."
            ) from None
    return out


def read_curve(path: Path, metric: str, schedule: Schedule | None) -> Curve:
    """A curve from a CSV/JSONL log (``.gz`` too) with ``step`` and ``metric`` columns.

    Without ``schedule``, the file's ``lr`` column must give the LR of every step from 0.
    """
    import numpy as np

    from runcast.curve import Curve
    from runcast.errors import ScheduleError
    from runcast.schedules import Schedule

    rows = read_rows(path, metric)
    steps, values = column(rows, "step", path), column(rows, metric, path)
    ok = np.isfinite(steps)
    # float steps go to the Curve as they are: it refuses 1.5 by name, where astype(int) would
    # make it step 1 without a word
    curve = Curve.from_unsorted(steps[ok], values[ok], name=path.name)
    if schedule is not None:
        return curve.with_schedule(schedule)
    if "lr" not in rows[0]:
        raise ScheduleError(
            f"{path}: no schedule given and no 'lr' column. Pass --schedule "
            "(e.g. 'cosine:peak=3e-4,end=3e-5,warmup=2000,total=24000')."
        )
    lr = column(rows, "lr", path)[ok]
    lr_steps = steps[ok].astype(np.int64)
    order = np.argsort(lr_steps)
    if lr_steps.size != curve.last_step + 1 or not np.isfinite(lr).all():
        raise ScheduleError(
            f"{path}: the 'lr' column must give the LR of every step 0..{curve.last_step} to be "
            f"used as the schedule, but it has {int(np.isfinite(lr).sum())} values. "
            "Pass the schedule with --schedule instead."
        )
    return curve.with_schedule(Schedule.from_array(lr[order]))


def read_source(
    source: str,
    metric: str,
    schedule: Schedule | None,
    db: str | None = None,
    read_file: Callable[[Path, str, Schedule | None], Curve] | None = None,
) -> Curve:
    """A finished run's loss curve with its schedule: from a CSV/JSONL log (``read_file``,
    default :func:`read_curve`) or from a run in the store (id, name or id prefix), whose
    schedule is the one it recorded (an integration's plan, ``config["schedule"]``, or its
    logged ``lr``: ``planned_schedule``) unless ``schedule`` is given."""
    from runcast.cli._common import db_path
    from runcast.errors import InvalidInputError
    from runcast.integrations._plan import planned_schedule
    from runcast.store import open_store

    path = Path(source)
    if path.exists() or path.suffix.lower() in LOG_SUFFIXES:
        # a log (a missing one is said by its reader)
        return (read_file or read_curve)(path, metric, schedule)
    with open_store(db_path(db), create=False) as store:
        info = store.run(source)
        curve = store.curve(info.id, metric)
        lr = store.curve(info.id, "lr") if "lr" in store.keys(info.id) else None
    if schedule is None:
        schedule = planned_schedule(info.config or {}, lr).schedule
    if schedule is None:
        raise InvalidInputError(
            f"Run {info.id} ({info.name}) recorded no schedule (no plan, no config['schedule'], "
            "no logged 'lr' to read it from): pass it with --schedule."
        )
    schedule.check_covers(curve.last_step + 1, f"run {info.id}")
    return curve.with_schedule(schedule)


def fit_cmd(
    files: Annotated[
        list[str],
        typer.Argument(
            help="Finished runs: CSV/JSONL logs with step and loss, or runs in the store (id "
            "or name)."
        ),
    ],
    schedule: Annotated[
        list[str] | None,
        typer.Option(
            "--schedule",
            "-s",
            help="The LR schedule: JSON, 'kind:key=val,...' or a JSON file; once for all "
            "files or once per file. Default: each file's per-step 'lr' column.",
        ),
    ] = None,
    law: Annotated[str, typer.Option("--law", "-l", help=f"One of {', '.join(LAW_NAMES)}.")] = (
        "auto"
    ),
    metric: Annotated[str, typer.Option("--metric", "-m", help="The loss column.")] = "loss",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Save the law (JSON).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: Annotated[
        str | None, typer.Option("--db", help="The run store (for runs given by id or name).")
    ] = None,
) -> None:
    """Fit a loss law to one or more runs (jointly) and print its parameters and fit quality."""
    with friendly_errors():
        from runcast.errors import InvalidInputError
        from runcast.forecast.laws import fit_law

        specs = schedule or []
        if len(specs) not in (0, 1, len(files)):
            raise InvalidInputError(
                f"Give --schedule once (for all files) or once per file ({len(files)}), "
                f"not {len(specs)} times."
            )
        scheds = [parse_schedule(s) for s in specs]
        curves = []
        for i, source in enumerate(files):
            sched = scheds[i if len(scheds) > 1 else 0] if scheds else None
            curves.append(read_source(source, metric, sched, db))
        with err_console.status(f"fitting the {law!r} law to {len(curves)} curve(s)"):
            fitted = fit_law(curves, law)
        if out is not None:
            fitted.save(out)
        if as_json:
            console.print_json(json.dumps(fitted.to_dict()))
            return
        _print_fit(fitted, out)


def _print_fit(fitted: Any, out: Path | None) -> None:
    from rich.table import Table

    info = fitted.info
    table = Table(title=f"{fitted.name} law: {type(fitted).summary}", title_justify="left")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    table.add_column("± (1 sd, relative)", justify="right")
    for i, (name, value) in enumerate(fitted.params.items()):
        p = type(fitted).PARAMS[i]
        sd = float(fitted.cov[i, i]) ** 0.5
        rel = f"{sd:.2g}" if p.transform == "log" else f"{sd:.2g} (abs)"
        table.add_row(name, f"{value:.6g}", rel)
    console.print(table)
    console.print(
        f"fit on {info.get('n_points')} points of {len(info.get('curves', []))} curve(s) in "
        f"{info.get('fit_seconds', 0.0):.2f} s; typical relative residual "
        f"{info.get('rms_rel_error', float('nan')):.2e}"
    )
    held = info.get("held_out_rms")
    if held:
        shown = ", ".join(f"{v:.2e}" for v in held)
        console.print(f"held-out relative error (leave one curve out): {shown}")
    if out is not None:
        console.print(f"saved to {out}")


def _parse_steps(text: str | None, total: int, start: int) -> list[int]:
    from runcast.errors import InvalidInputError

    if not text:
        # 11 steps from the end of warmup (where laws apply) to the last step
        n = min(total - start, 11)
        span = total - 1 - start
        return sorted({start + round(i * span / max(n - 1, 1)) for i in range(n)})
    try:
        return sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise InvalidInputError(
            f"--steps must be integers separated by commas, e.g. '1000,5000,9999'; got {text!r}."
        ) from None


def predict_cmd(
    law_file: Annotated[Path, typer.Argument(help="A law saved by 'runcast law fit -o'.")],
    schedule: Annotated[str, typer.Option("--schedule", "-s", help="The LR schedule to predict.")],
    steps: Annotated[
        str | None,
        typer.Option("--steps", help="Comma-separated steps (default: 11 across the schedule)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Predict the loss curve of a schedule with a fitted law, with 80% intervals."""
    with friendly_errors():
        from rich.table import Table

        from runcast.errors import ScheduleError
        from runcast.forecast.laws import Law

        sched = parse_schedule(schedule)
        fitted = Law.load(law_file)
        total = sched.total
        if total is None and not steps:
            raise ScheduleError(
                "This schedule has no 'total': give it one, or pass --steps to predict."
            )
        from runcast.forecast.laws._data import warmup_end

        start = warmup_end(sched.array(total)) if total else 0
        st = _parse_steps(steps, total or 0, start)
        fc = fitted.forecast(sched, st)
        lo, hi = fc.interval(0.8)
        med = fc.median
        if as_json:
            console.print_json(json.dumps(fc.to_dict()))
            return
        unpinned = bool(fc.info.get("unpinned"))
        if unpinned:  # the law warned: its draws mean nothing, its own prediction stands
            med = fitted.predict(sched, fc.steps)
        table = Table(title=f"{fitted.name} law on {sched.kind}", title_justify="left")
        for name in ("step", "lr", "predicted loss", "80% interval"):
            table.add_column(name, justify="right")
        lrs = sched.array(int(fc.steps[-1]) + 1)
        for j, s in enumerate(fc.steps):
            band = "—" if unpinned else f"[{lo[j]:.4f}, {hi[j]:.4f}]"
            table.add_row(str(int(s)), f"{lrs[s]:.3g}", f"{med[j]:.4f}", band)
        console.print(table)
        f_lo, f_hi = fc.final.interval(0.8)
        band = "no interval" if unpinned else f"80% interval [{f_lo:.4f}, {f_hi:.4f}]"
        console.print(f"final loss at step {int(fc.steps[-1])}: {med[-1]:.4f} ({band})")


def register(app: typer.Typer) -> None:
    """Add ``runcast law fit`` and ``runcast law predict``."""
    law_app.command("fit")(fit_cmd)
    law_app.command("predict")(predict_cmd)
    app.add_typer(law_app, name="law")
