"""``runcast forecast`` and ``runcast eval forecast``: where a run will end, and how well we know.

Heavy imports (numpy, scipy, the forecasters) happen inside the commands so ``runcast --help``
stays fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from runcast.cli._common import (
    LOG_SUFFIXES,
    console,
    db_path,
    err_console,
    friendly_errors,
    parse_schedule,
)
from runcast.errors import InvalidInputError

if TYPE_CHECKING:
    from runcast.curve import Curve
    from runcast.forecast._eval import Case
    from runcast.schedules import Schedule

eval_app = typer.Typer(help="Evaluate runcast on your own runs.", no_args_is_help=True)
_SOURCES = typer.Argument(..., help="CSV/JSONL logs (.gz too) or run ids.")


def load_curve(
    source: str, key: str = "loss", db: str | None = None, step: str | None = None
) -> Curve:
    """A curve from a CSV/JSONL file (``.gz`` too; ``step`` names its step column; an ``lr``
    column becomes its schedule) or from a run in the store (id, name or id prefix; its ``lr``
    metric becomes its schedule)."""
    import numpy as np

    from runcast.errors import ImportFormatError, MetricNotFoundError
    from runcast.schedules import Schedule

    path = Path(source)
    if path.is_file():
        from runcast import io

        jsonl = {".jsonl", ".ndjson"} & {s.lower() for s in path.suffixes}
        reader = io.read_jsonl if jsonl else io.read_csv
        curves = reader(path, step=step)
        if key not in curves:
            raise ImportFormatError(
                f"{path}: has no {key!r} column; it has {', '.join(sorted(curves))}. "
                "Pick one with --key."
            )
        curve = curves[key]
        lr_curve = curves.get("lr")
        lr = None
        if lr_curve is not None and len(lr_curve) == curve.last_step + 1:
            lr = lr_curve.value
        if lr is not None and np.isfinite(lr).all() and len(lr) == curve.last_step + 1:
            curve = curve.with_schedule(Schedule.from_array(lr))
        return curve
    if path.suffix.lower() in LOG_SUFFIXES or path.is_dir():
        # a log file's name, not a run's: "no store" would be the wrong thing to say
        what = "is a folder, not a log file" if path.is_dir() else "does not exist"
        raise InvalidInputError(
            f"{source} {what}. Give a CSV or JSONL log (.gz too), or a run id or name in the "
            "store (runcast runs list)."
        )
    from runcast.store import open_store

    with open_store(db_path(db), create=False) as store:
        info = store.run(source)
        curve = store.curve(info.id, key)
        try:
            lrs = store.curve(info.id, "lr")
        except MetricNotFoundError:
            lrs = None
        spec = (info.config or {}).get("schedule")
    if isinstance(spec, dict):
        return curve.with_schedule(Schedule.from_spec(spec))
    if lrs is not None and len(lrs) == lrs.last_step + 1:
        return curve.with_schedule(Schedule.from_array(lrs.value))
    return curve


def _schedule(spec: str | None) -> Schedule | None:
    return None if spec is None else parse_schedule(spec)


#: a recorded LR that has come down to this share of its peak is over: the run annealed
ANNEALED = 0.1


def _recorded_lr_until(curve: Curve, until: int) -> tuple[Curve, bool]:
    """The curve with a recorded LR that covers ``until``, and whether a note was printed.

    A recorded LR covers the logged steps only. If it has annealed (down to ``ANNEALED`` of its
    peak), the run's schedule is over: its last LR is held to ``until`` (dropping it made the
    law's blind stand-in extrapolate the cooldown's fall past the end of the run). Otherwise
    the LR to come is unknown and the forecast goes on without a schedule.
    """
    import numpy as np

    from runcast.schedules import Schedule

    sched = curve.schedule
    if sched is None or sched.kind != "recorded" or (sched.total or 0) >= until + 1:
        return curve, False
    lrs = np.asarray(sched.array(), dtype=np.float64)
    last = lrs.size - 1
    if lrs[-1] <= ANNEALED * lrs.max():
        held = np.concatenate([lrs, np.full(until - last, lrs[-1])])
        err_console.print(
            f"[yellow]note:[/] the recorded LR ends at step {last}, annealed to {lrs[-1]:.3g}: "
            f"holding it there to step {until} (pass --schedule to say otherwise).",
            highlight=False,
        )
        return curve.with_schedule(Schedule.from_array(held)), True
    # a recorded LR column covers the past only: it cannot say what the LR will be
    err_console.print(
        f"[yellow]note:[/] the recorded LR covers steps 0..{last} only, not up to {until}; "
        "forecasting without a schedule (pass --schedule for the law).",
        highlight=False,
    )
    return curve.with_schedule(None), True


def _fmt(v: float) -> str:
    return "never" if v == float("inf") else f"{v:.6g}"


def _already_reached(curve: Curve, target: float, direction: str) -> int | None:
    """The step from which the curve's trend has beaten ``target``, or None if its trend at
    the last step has not.

    The trend (:func:`runcast.report.trend`), not single points: one noisy point below a
    target says nothing about the run, and the forecast (of the trend) would still give the
    target a fair chance of being missed.
    """
    import numpy as np

    from runcast.report import trend

    t = trend(curve)
    hit = t <= target if direction == "down" else t >= target
    if t.size == 0 or not hit[-1]:
        return None
    missed = np.flatnonzero(~hit)
    return int(curve.finite().step[missed[-1] + 1 if missed.size else 0])


def _reach(samples: Any) -> tuple[float, float, float]:
    """Median and 80% interval of steps-to-target samples, where ``inf`` means never."""
    import numpy as np

    q = np.quantile(samples, [0.1, 0.5, 0.9], method="inverted_cdf")  # real samples, inf kept
    return float(q[1]), float(q[0]), float(q[2])


def forecast_cmd(
    source: str = typer.Argument(..., help="A CSV/JSONL log (.gz too) or a run id/name."),
    until: int | None = typer.Option(
        None, "--until", "-u", help="The last step to forecast (default: a run's planned end)."
    ),
    from_step: int | None = typer.Option(
        None, "--from", help="Forecast as of this step (a finished run seen from earlier)."
    ),
    key: str = typer.Option("loss", "--key", "-k", help="The metric to forecast."),
    schedule: str | None = typer.Option(
        None, "--schedule", "-s", help="The LR schedule: JSON, a spec string or a JSON file."
    ),
    target: float | None = typer.Option(None, "--target", "-t", help="A value to beat."),
    method: str = typer.Option(
        "auto", "--method", "-m", help="auto, law, law+pfn, pfn+ensemble, ensemble, pfn, ..."
    ),
    step: str | None = typer.Option(
        None, "--step", help="The log's step column (default: step, _step, global_step, iter...)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str | None = typer.Option(None, "--db", help="The run store (for a run id)."),
) -> None:
    """Forecast where a run will end: the final value (its trend) with 80%/95% intervals."""
    with friendly_errors():
        from runcast.forecast import forecast

        if target is not None and not math.isfinite(target):
            raise InvalidInputError(f"--target must be a finite number, but got {target}.")
        curve = load_curve(source, key, db, step)
        # a run's recorded plan (schedule, planned end) and --from: runcast.integrations._plan
        from runcast.integrations._plan import as_of, run_forecast_input

        if Path(source).is_file():
            curve, until = as_of(curve, None, until, from_step)
        else:
            from runcast.store import open_store

            with open_store(db_path(db), create=False) as store:
                curve, until = run_forecast_input(
                    store, source, key, until=until, from_step=from_step
                )
        noted = False
        if schedule is None:
            curve, noted = _recorded_lr_until(curve, until)
        sched = _schedule(schedule)
        f = forecast(curve, until, sched, method=method, noise=False)
        blind = sched is None and curve.schedule is None
        out: dict[str, Any] = {
            "source": source,
            "key": key,
            "method": f.method,
            "last_observed_step": curve.last_step,
            "until": until,
            "final": f.final.to_dict(),
            "schedule_known": not blind,
        }
        from runcast.report import reached as reached_value

        now = reached_value(curve)
        out["reached"] = now  # the trend at the last observed step, the forecast's start
        reached = _already_reached(curve, target, f.direction) if target is not None else None
        if target is not None:
            out["target"] = target
            out["already_reached_at_step"] = reached
            out["prob_beats_target"] = f.prob_beats(target)
            med, lo, hi = _reach(f.steps_to(target).samples)
            out["steps_to_target"] = {
                "median": None if med == float("inf") else med,
                "interval_80": [None if v == float("inf") else v for v in (lo, hi)],
            }
        if as_json:
            console.print_json(json.dumps(out))
            return
        if blind and not noted and f.direction == "down":
            # the blind forecast's largest misses are LR drops still to come (bench/README.md)
            err_console.print(
                f"[yellow]note:[/] no LR schedule given: an LR drop after step {curve.last_step} "
                "(a cooldown, a step decay) is not foreseen; pass --schedule to forecast it.",
                highlight=False,
                soft_wrap=True,
            )
        fin = f.final
        lo80, hi80 = fin.interval(0.8)
        lo95, hi95 = fin.interval(0.95)
        console.print(
            f"[bold]{escape(key)}[/] at step {until} ({f.method}, from {len(curve)} points to step "
            f"{curve.last_step}):"
        )
        console.print(f"  median [bold]{fin.median:.6g}[/]  (now {now:.6g}: the trend at step "
                      f"{curve.last_step})")  # fmt: skip
        console.print(f"  80% interval [{lo80:.6g}, {hi80:.6g}]")
        console.print(f"  95% interval [{lo95:.6g}, {hi95:.6g}]")
        if target is not None:
            med, a, b = _reach(f.steps_to(target).samples)
            console.print(f"  P(beats {target:g}) = [bold]{f.prob_beats(target):.0%}[/]")
            if reached is not None:
                # the forecast starts after the data: "steps to" would name its first step
                console.print(f"  {target:g} already reached (by the trend) at step {reached}")
            else:
                console.print(
                    f"  steps to {target:g}: median {_fmt(med)} (80%: {_fmt(a)}..{_fmt(b)})"
                )


def _case(source: str, key: str, db: str | None) -> Case:
    from runcast.forecast._eval import Case

    curve = load_curve(source, key, db)
    return Case(source, Path(source).parent.name or "runs", curve.with_schedule(None),
                curve.schedule)  # fmt: skip


@eval_app.command("forecast")
def eval_forecast_cmd(
    sources: list[str] = _SOURCES,
    cutoffs: str = typer.Option("0.1,0.2,0.3,0.5,0.7", "--cutoffs", help="Fractions to cut at."),
    methods: str = typer.Option("auto,ensemble,last", "--method", "-m", help="Comma-separated."),
    key: str = typer.Option("loss", "--key", "-k", help="The metric to forecast."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows."),
    db: str | None = typer.Option(None, "--db", help="The run store (for run ids)."),
) -> None:
    """Cut each run at the fractions, forecast the rest, and score the forecasts."""
    with friendly_errors():
        from rich.progress import Progress
        from rich.table import Table

        from runcast.forecast._api import available_methods, resolve_method
        from runcast.forecast._calibrate import default_calibration
        from runcast.forecast._eval import evaluate_case, summarize

        try:
            fracs = [float(v) for v in cutoffs.split(",") if v.strip()]
        except ValueError as err:
            raise InvalidInputError(f"--cutoffs must be numbers like 0.2,0.5: {err}") from err
        if not fracs or not all(0.0 < v < 1.0 for v in fracs):
            raise InvalidInputError(f"--cutoffs must be fractions in (0, 1), but got {cutoffs!r}.")
        names = [m.strip() for m in methods.split(",") if m.strip()]
        known = {"auto", *available_methods()}
        unknown = [m for m in names if m not in known]
        if unknown or not names:
            # before any forecast runs: not one "skipped" line per run and cut-off
            raise InvalidInputError(
                f"--method {methods!r}: unknown {', '.join(map(repr, unknown)) or 'nothing'}; "
                f"use a comma-separated list of auto, {', '.join(sorted(known - {'auto'}))}."
            )
        cases = [_case(s, key, db) for s in sources]
        recs = []
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("forecasting", total=len(cases) * len(fracs) * len(names))
            for case in cases:
                for frac in fracs:
                    for m in names:
                        real = resolve_method(m, case.schedule)
                        bar.update(task, description=f"{Path(case.name).name} {frac:.0%} {real}")
                        recs.append(evaluate_case(case, frac, real))
                        bar.advance(task)
        cal = default_calibration()
        rows = summarize(recs, lambda r: cal.tau(r.method, r.observed, r.features or None))
        failed = [r for r in recs if r.failed]
        if as_json:
            console.print_json(json.dumps([r.__dict__ for r in rows]))
            return
        table = Table(title=f"forecast from the first part of {len(cases)} run(s)")
        for col in ("method", "cut-off", "n", "median |err|", "CRPS", "80% cov", "95% cov", "ms"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for s in rows:
            cells = (f"{s.fraction:.0%}", str(s.n), f"{s.err:.2%}", f"{s.crps:.4f}")
            table.add_row(s.method, *cells, f"{s.cov80:.0%}", f"{s.cov95:.0%}", f"{s.ms:.1f}")
        console.print(table)
        for r in failed[:5]:
            err_console.print(
                f"[yellow]skipped[/] {escape(r.case)} @ {r.fraction:.0%} {r.method}: "
                f"{escape(r.failed)}"
            )


def register(app: typer.Typer) -> None:
    """Add ``runcast forecast`` and ``runcast eval forecast`` to the app."""
    app.command("forecast")(forecast_cmd)
    app.add_typer(eval_app, name="eval")
