"""``runcast plan``: fit a loss law to finished runs and plan the best LR schedule for a budget.

Heavy imports (scipy, the laws) happen inside the command so ``runcast --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from runcast.cli._common import console, err_console, friendly_errors, parse_schedule
from runcast.cli._law import LAW_NAMES, column, read_rows, read_source

if TYPE_CHECKING:
    from runcast.curve import Curve
    from runcast.schedules import Plan, Schedule


def read_curve(path: Path, metric: str, schedule: Schedule | None) -> Curve:
    """A curve from a CSV/JSONL log (``.gz`` too) with a ``step`` and the ``metric`` column.

    Without ``schedule`` the file's ``lr`` column must hold the LR of every step from 0.
    """
    import numpy as np

    from runcast.curve import Curve
    from runcast.errors import ScheduleError
    from runcast.schedules import Schedule

    rows = read_rows(path, metric)
    steps, values = column(rows, "step", path), column(rows, metric, path)
    if schedule is None:
        lrs = column(rows, "lr", path) if "lr" in rows[0] else None
        if lrs is None or steps[0] != 0 or not np.array_equal(steps, np.arange(steps.size)):
            raise ScheduleError(
                f"{path}: give its schedule with --schedule (e.g. 'cosine:peak=3e-4,"
                "total=24000,warmup=2160'); an 'lr' column is used only when it covers every "
                "step from 0."
            )
        schedule = Schedule.from_array(lrs)
    # float steps as they are: the Curve refuses 1.5 or a blank step by name (astype(int) made
    # 1.5 step 1, and a blank one step -9.2e18)
    curve = Curve(steps, values, schedule=schedule, name=metric)
    schedule.check_covers(curve.last_step + 1, f"{path.name}")
    return curve


def lowest_fitted_lr(curves: list[Curve]) -> float | None:
    """The lowest LR the curves were observed at after their LR peaked (None without curves)."""
    import numpy as np

    lows = []
    for c in curves:
        lrs = c.lr()
        # from the first observed point at the peak on: warmup LRs say nothing about annealing
        lows.append(float(lrs[int(np.argmax(lrs)) :].min()))
    return min(lows) if lows else None


def _load_law(
    law: str, files: list[str], given: list[Schedule], metric: str, db: str | None
) -> tuple[Any, list[Curve]]:
    from runcast.errors import InvalidInputError
    from runcast.forecast.laws import Law, fit_law

    if law not in LAW_NAMES:
        if files:
            raise InvalidInputError(
                "Give either a saved law (--law FILE.json) or curves to fit (FILE...), not both."
            )
        return Law.load(law), []
    if not files:
        raise InvalidInputError(
            "Give the curves to fit (FILE... with --schedule for each), or a saved law with "
            "--law FILE.json."
        )
    if given and len(given) not in (1, len(files)):
        raise InvalidInputError(
            f"Got {len(given)} --schedule for {len(files)} files; give one per file, in order "
            "(or one for all)."
        )
    scheds: list[Schedule | None] = [*given] or [None]
    if len(scheds) == 1:
        scheds = scheds * len(files)
    curves = [read_source(f, metric, s, db, read_curve) for f, s in zip(files, scheds, strict=True)]
    with err_console.status(f"fitting the {law!r} law to {len(curves)} curve(s)"):
        return fit_law(curves, law), curves


def describe(s: Schedule) -> str:
    """A one-line description of a planned schedule."""
    if s.kind == "recorded":
        lrs = s.array()
        return f"free-form, down to {lrs[-1]:.3g} at step {lrs.size - 1}"
    spec = s.to_spec()
    if s.kind == "wsd":
        return (
            f"wsd {spec['decay_shape']}: decay from step {spec['decay_start']} to {spec['end']:.3g}"
        )
    if s.kind == "cosine":
        return f"cosine to {spec['end']:.3g}"
    return json.dumps(spec)


def _table(plan: Plan, level: float) -> Any:
    from rich.table import Table

    def band(dist: Any) -> str:
        if dist is None:
            return ""
        lo, hi = dist.interval(level)
        return f"{lo:.4f} … {hi:.4f}"

    t = Table(title=f"Planned schedule for {plan.schedule.total} steps")
    t.add_column("schedule")
    t.add_column("final loss", justify="right")
    t.add_column(f"{round(level * 100)}% interval", justify="right")
    t.add_column("gain", justify="right")
    t.add_row(
        f"[bold]{describe(plan.schedule)}[/]",
        f"{plan.loss:.4f}",
        band(plan.final),
        f"[bold]{plan.gain:+.4f}[/]",
    )
    for sched, loss in plan.candidates.values():
        if sched is not plan.schedule:
            t.add_row(describe(sched), f"{loss:.4f}", "", f"{plan.baseline_loss - loss:+.4f}")
    t.add_row(
        f"baseline: {describe(plan.baseline)}",
        f"{plan.baseline_loss:.4f}",
        band(plan.baseline_final),
        "0",
    )
    return t


Files = Annotated[
    list[str] | None,
    typer.Argument(
        help="Finished runs to fit: CSV/JSONL (.gz too) with step, loss[, lr], or runs in the "
        "store (id or name)."
    ),
]
Specs = Annotated[
    list[str],
    typer.Option("--schedule", "-s", help="Each file's schedule: JSON or 'kind:key=value,...'."),
]


def plan_command(
    budget: Annotated[int, typer.Option("--budget", "-b", help="Steps of the run to plan.")],
    files: Files = None,
    schedule: Specs = [],  # noqa: B006  typer copies list defaults
    peak: Annotated[
        float | None,
        typer.Option(help="Peak LR (default: the largest peak of the given schedules)."),
    ] = None,
    warmup: Annotated[
        int | None,
        typer.Option(help="Warmup steps (default: the given schedules' longest)."),
    ] = None,
    floor: Annotated[
        float, typer.Option(help="Lowest LR a planned schedule may anneal to (default 0).")
    ] = 0.0,
    law: Annotated[
        str,
        typer.Option(help="Law to fit: auto, runcast, mpl, momentum, grid; or a saved law JSON."),
    ] = "auto",
    metric: Annotated[str, typer.Option(help="The loss column of the files.")] = "loss",
    baseline: Annotated[
        str | None,
        typer.Option(help="Baseline schedule spec (default: cosine to peak/10)."),
    ] = None,
    free_form: Annotated[
        bool, typer.Option("--free-form/--no-free-form", help="Also plan a free-form schedule.")
    ] = True,
    level: Annotated[float, typer.Option(help="Interval level.")] = 0.8,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the plan, with the full schedule, as JSON."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    db: Annotated[
        str | None, typer.Option("--db", help="The run store (for runs given by id or name).")
    ] = None,
) -> None:
    """Plan the LR schedule with the lowest predicted final loss, and its gain over cosine."""
    with friendly_errors():
        from runcast.errors import InvalidInputError
        from runcast.schedules import plan_schedule

        if budget < 2:
            raise InvalidInputError("Give the run's length in steps with --budget N (N >= 2).")
        given = [parse_schedule(s) for s in schedule]  # a typo is reported before any fit
        fitted, curves = _load_law(law, list(files or []), given, metric, db)
        if peak is None:
            # the given schedules', else the fitted runs' own (an 'lr' column)
            peak = max((s.peak for s in given), default=None)
            if peak is None:
                peak = max((c.schedule.peak for c in curves if c.schedule), default=None)
        if peak is None:
            raise InvalidInputError("Give the peak LR with --peak.")
        if warmup is None:
            warm = [int(s.to_spec().get("warmup", 0)) for s in given if s.kind != "recorded"]
            if not given:  # runs with an 'lr' column: where each one's LR first reached its peak
                from runcast.forecast.laws._data import warmup_end

                warm = [warmup_end(c.schedule.array()) for c in curves if c.schedule]
            if not warm:
                # a saved law carries no schedule: say what the plan assumes instead of a
                # silent "warmup: 0" in its spec
                err_console.print(
                    "[yellow]note:[/] no --warmup and no schedule to take it from: planning "
                    "with no warmup (warmup 0); pass --warmup N for your run's warmup steps.",
                    highlight=False,
                    soft_wrap=True,
                )
            warmup = max(warm, default=0)
        base = None if baseline is None else parse_schedule(baseline, "--baseline")
        # the free-form search takes several seconds: show that work is going on (on stderr,
        # so --json output stays clean)
        with err_console.status(f"planning the best schedule for {budget} steps"):
            plan = plan_schedule(
                fitted,
                budget,
                float(peak),
                warmup=warmup,
                floor=floor,
                free_form=free_form,
                baseline=base,
            )
        data = plan.to_dict()
        if out is not None:
            full = dict(data, schedule=plan.schedule.to_spec(), baseline=plan.baseline.to_spec())
            out.write_text(json.dumps(full, indent=1))
        if as_json:
            console.print_json(json.dumps(data))
            return
        console.print(_table(plan, level))
        gi = plan.gain_interval(level)
        unc = (
            ""
            if gi is None
            else f" ({round(level * 100)}%: {gi[0]:+.4f} … {gi[1]:+.4f}; "
            f"P(gain > 0) = {plan.prob_gain:.2f})"
        )
        console.print(f"Predicted gain over the baseline: [bold]{plan.gain:+.4f}[/]{unc}")
        low = lowest_fitted_lr(curves)
        planned_low = float(plan.schedule.array()[warmup:].min())
        if low is not None and planned_low < 0.999 * low:
            console.print(
                f"[yellow]note:[/] the plan anneals to {planned_low:.3g}, below the lowest LR of "
                f"the fitted runs ({low:.3g}): there the law extrapolates, and laws tend to "
                f"overstate annealing gains. --floor {low:.3g} keeps the plan where the law "
                "was fitted.",
                highlight=False,
            )
        if plan.schedule.kind == "recorded":
            hint = f"written to {out}" if out else "write its every-step LRs with --out FILE"
            console.print(f"The planned schedule is free-form: {hint}.", highlight=False)
        else:
            console.print(f"Schedule: {json.dumps(plan.schedule.to_spec())}", highlight=False)
        console.print(
            f"[dim]{plan.evaluations} law evaluations in {plan.seconds:.1f} s[/]", highlight=False
        )


def register(app: typer.Typer) -> None:
    """Add ``runcast plan`` to the command line."""
    app.command("plan")(plan_command)
