"""``runcast demo``: the main job a newcomer runs first.

Trains a small character-level transformer on a text shipped with runcast, under a WSD
schedule, records it into ``<out>/runcast.db``, shows the live forecast of the final loss in a
progress bar, writes ``<out>/report.html``, and says how the forecast made at 20% of the run
compared with the loss it reached.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from runcast.cli._common import console, friendly_errors
from runcast.errors import InvalidInputError

if TYPE_CHECKING:
    from runcast.demo import DemoResult


def _summary(res: DemoResult, report: Path | None) -> None:
    from rich.table import Table

    console.print(
        f"\nTrained a {res.n_params:,}-parameter char transformer for {res.steps} steps in "
        f"{res.seconds:.0f} s. Training loss reached (its trend at the last step): "
        f"[bold]{res.final_loss:.4f}[/]"
        + (f", validation loss {res.final_val_loss:.4f}." if res.final_val_loss else ".")
    )
    j = res.judged
    if j is None:
        console.print("[yellow]No forecast could be made at 20% of the run (too few points).[/]")
    else:
        t = Table(title=f"The forecast made at step {j.cutoff_step} (20% of the run)")
        for col in ("forecast median", "80% interval", "reached", "error", "inside 80%?"):
            t.add_column(col, justify="right")
        t.add_row(
            f"{j.median:.4f}",
            f"[{j.lo80:.4f}, {j.hi80:.4f}]",
            f"{j.actual:.4f}",
            f"{j.error_pct:+.2f}%",
            "[green]yes[/]" if j.inside80 else "[red]no[/]",
        )
        console.print(t)
        console.print(f"[dim]forecast method: {j.method}[/]")
    if res.notes:
        console.print(f"[dim]The live forecasts said ({len(res.notes)} distinct notes):[/]")
        for note in res.notes[:5]:
            console.print(f"[dim]  {escape(note)}[/]", highlight=False)
    if res.sample:
        console.print(f"\n[dim]What the model writes now:[/]\n{escape(res.sample)}\n")
    if report is not None:
        console.print(
            f"Report: [bold]{escape(str(report))}[/]  (open it in a browser; it works offline)"
        )
    console.print(
        f"Store:  {escape(str(res.db))}  (see it live next time: runcast --db "
        f"{escape(str(res.db))} ui)\nRun id: {res.run_id}"
    )


def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for runcast.db and report.html.")
    ] = Path("runcast-demo"),
    steps: Annotated[
        int, typer.Option("--steps", min=20, help="Training steps (~50 ms each on one core).")
    ] = 1500,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the model and the batches.")] = 0,
    whatif: Annotated[
        bool,
        typer.Option(
            "--whatif/--no-whatif", help="Add schedule what-ifs (a law fit) to the report."
        ),
    ] = True,
) -> None:
    """Train a small transformer under a WSD schedule and forecast its final loss live."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from runcast.demo import DemoConfig, StepInfo, train
    from runcast.report import build_report, write_html

    with friendly_errors():
        cfg = DemoConfig(steps=steps, seed=seed)
        if out.exists() and not out.is_dir():
            raise InvalidInputError(
                f"--out {out} is a file; the demo writes runcast.db and report.html into a "
                "folder: pass a folder's path (it is created if missing)."
            )
        out.mkdir(parents=True, exist_ok=True)
        db = out / "runcast.db"
        console.print(
            f"Training a char-level transformer on CPython's help text for {steps} steps "
            f"(WSD schedule: peak LR {cfg.peak_lr:g}, last {cfg.decay_fraction:.0%} decaying)."
        )
        columns = (
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("[cyan]final loss forecast {task.fields[fc]}"),
            TimeElapsedColumn(),
            TextColumn("<"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("train", total=steps, loss="…", fc="from step " + str(steps // 10))

            def on_step(info: StepInfo) -> None:
                if info.forecast is None:
                    bar.update(task, completed=info.step + 1, loss=f"{info.loss:.3f}")
                    return
                lo, hi = info.forecast.final.interval(0.8)
                fc = f"{info.forecast.final.median:.3f} (80%: {lo:.3f}–{hi:.3f})"
                bar.update(task, completed=info.step + 1, loss=f"{info.loss:.3f}", fc=fc)

            res = train(cfg, db, on_step=on_step, name=f"char-transformer-seed{seed}")
        with console.status("Writing the report (forecast, schedule what-ifs)…"):
            from runcast import open_store

            with open_store(db) as store:
                rep = build_report(store, [res.run_id], whatif=whatif)
            report = write_html(rep, out / "report.html")
        _summary(res, report)


def register(app: typer.Typer) -> None:
    """Add ``runcast demo`` to the command line."""
    app.command("demo")(demo)
