"""``runcast scale fit/predict/optimal``: scaling laws across model sizes on the command line.

``fit`` reads a table (CSV with N, D and loss columns) or runs in the store (their config gives
``n_params`` and ``tokens_per_step``), fits the law and saves it; ``predict`` and ``optimal`` read
a saved law. Heavy imports happen inside the commands so ``runcast --help`` stays fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from runcast.cli._common import console, db_path, err_console, friendly_errors

if TYPE_CHECKING:
    from runcast.scaling import ScalingLaw

scale_app = typer.Typer(
    help="Scaling laws: predict a bigger model from smaller ones, and the compute-optimal size.",
    no_args_is_help=True,
)
FORM_NAMES = ("auto", "chinchilla", "data_constrained")


def _numbers(text: str, what: str) -> list[float]:
    from runcast.errors import InvalidInputError

    try:
        vals = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise InvalidInputError(
            f"{what} must be numbers separated by commas, e.g. '7e9,1.3e10'; got {text!r}."
        ) from None
    if not vals:
        raise InvalidInputError(f"{what} needs at least one number, but got {text!r}.")
    return vals


def fit_cmd(
    table: Annotated[
        Path | None,
        typer.Argument(help="CSV (.gz too) with one row per point; omit to read runs instead."),
    ] = None,
    n_col: Annotated[str, typer.Option("--n-col", help="The parameter-count column.")] = "N",
    d_col: Annotated[str, typer.Option("--d-col", help="The training-tokens column.")] = "D",
    loss_col: Annotated[str, typer.Option("--loss-col", help="The loss column.")] = "loss",
    unique_col: Annotated[
        str | None, typer.Option("--unique-col", help="Unique tokens (data-constrained form).")
    ] = None,
    group_col: Annotated[
        str | None, typer.Option("--group-col", help="The run column (resampled together).")
    ] = None,
    run: Annotated[
        list[str] | None, typer.Option("--run", "-r", help="A run in the store (repeatable).")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Every run of this project.")
    ] = None,
    key: Annotated[str, typer.Option("--key", "-k", help="The metric of the runs.")] = "loss",
    drop_first: Annotated[
        str,
        typer.Option(
            "--drop-first",
            help="Leave out each run's checkpoints before this fraction of it (1: final only; "
            "auto: final losses with 12 runs or more, else the second half of each run).",
        ),
    ] = "auto",
    form: Annotated[str, typer.Option("--form", help=f"One of {', '.join(FORM_NAMES)}.")] = "auto",
    boot: Annotated[int, typer.Option("--boot", help="Bootstrap refits (0: none).")] = 200,
    delta: Annotated[float, typer.Option("--delta", help="Huber delta on log loss.")] = 1e-3,
    fix: Annotated[
        str | None,
        typer.Option(
            "--fix",
            help="Hold parameters at values instead of fitting them, NAME=VALUE,... or "
            "'chinchilla' (alpha and beta of Epoch AI's Chinchilla refit): for a family with "
            "few sizes.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Save the law (JSON).")] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a report of the fit (offline HTML).")
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="The run store.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Fit L(N, D) to losses of several model sizes and print its parameters with intervals."""
    with friendly_errors():
        import runcast
        from runcast.errors import InvalidInputError
        from runcast.scaling import ScalingConfig, ScalingData, fit_scaling

        if table is not None and (run or project):
            raise InvalidInputError("Give a table or runs (--run/--project), not both.")
        if table is not None:
            # a table is used as given (--drop-first applies to the checkpoints of runs)
            try:
                data = ScalingData.from_table(table, n_col, d_col, loss_col, unique_col, group_col)
            except InvalidInputError as err:
                if "has no column" not in str(err):
                    raise
                # the library names its arguments (n=, d=, ...): the command has options
                raise InvalidInputError(
                    str(err).split("; name the columns")[0]
                    + f"; name them with --n-col, --d-col and --loss-col (now {n_col!r}, "
                    f"{d_col!r}, {loss_col!r}), and --unique-col, --group-col."
                ) from None
        else:
            drop: float | str = drop_first
            if drop_first != "auto":
                try:
                    drop = float(drop_first)
                except ValueError:
                    raise InvalidInputError(
                        f"--drop-first must be a fraction in [0, 1] or 'auto', not {drop_first!r}."
                    ) from None
            with runcast.open_store(db_path(db), create=False) as store:
                data = ScalingData.from_store(store, run, project, key, drop)
        cfg = ScalingConfig(huber_delta=delta, n_boot=boot, fixed=_parse_fix(fix))
        with err_console.status(f"fitting a scaling law to {len(data)} points"):
            law = fit_scaling(data, form=form, config=cfg)
        if out is not None:
            law.save(out)
        if html is not None:
            from runcast.report._scaling import write_scaling_html

            write_scaling_html(law, data, html)
        if as_json:
            console.print_json(json.dumps({**law.to_dict(), "boot": len(law.boot)}))
            return
        _print_law(law)
        if out is not None:
            console.print(f"saved to {escape(str(out))}")
        if html is not None:
            console.print(f"report written to {escape(str(html))}")


def _parse_fix(text: str | None) -> dict[str, float]:
    """``--fix``: ``chinchilla`` (Epoch AI's alpha and beta) or ``NAME=VALUE,...``."""
    from runcast.errors import InvalidInputError
    from runcast.scaling import EPOCH_CHINCHILLA

    if text is None or not text.strip():
        return {}
    if text.strip().lower() == "chinchilla":
        return {k: EPOCH_CHINCHILLA[k] for k in ("alpha", "beta")}
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidInputError(
                f"--fix takes NAME=VALUE pairs (e.g. alpha=0.35,beta=0.37) or 'chinchilla', "
                f"not {part.strip()!r}."
            ) from None
    return out


def _print_law(law: ScalingLaw) -> None:
    from rich.table import Table

    table = Table(title=f"{law.form.name}: {law.form.summary}", title_justify="left")
    for name in ("parameter", "value", "80% bootstrap interval"):
        table.add_column(name, justify="right")
    ivs = law.param_intervals(0.8)
    for k, v in law.params.items():
        lo, hi = ivs[k]
        table.add_row(k, f"{v:.6g}", f"[{lo:.4g}, {hi:.4g}]" if lo != hi else "—")
    console.print(table)
    info = law.info
    bt = info.get("backtest_log_error")
    console.print(
        f"fit on {info['n_points']} points of {info['n_runs']} runs, {info['n_sizes']} sizes, in "
        f"{info['fit_seconds']:.2f} s; rms log residual {info['rms_log_residual']:.2e}"
        + (f"; largest size predicted from the others: {100 * bt:.2f}% off" if bt else "")
    )
    for epochs, rise in law.overfit.tolist():
        if rise > 0:
            console.print(
                f"runs of {epochs:.3g} epochs of repeated data ended {100 * math.expm1(rise):.1f}% "
                "above their lowest loss (overfitting); predictions that many epochs in include it"
            )


def predict_cmd(
    law_file: Annotated[Path, typer.Argument(help="A law saved by 'runcast scale fit -o'.")],
    n: Annotated[str, typer.Option("--n", "-n", help="Parameter counts, comma-separated.")],
    d: Annotated[str, typer.Option("--d", "-d", help="Training tokens, comma-separated.")],
    unique: Annotated[
        float | None, typer.Option("--unique", help="Unique tokens (data-constrained form).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Predict the loss of models of N parameters trained on D tokens, with 80% intervals."""
    with friendly_errors():
        import numpy as np
        from rich.table import Table

        from runcast.errors import InvalidInputError
        from runcast.scaling import ScalingLaw

        law = ScalingLaw.load(law_file)
        ns, ds = _numbers(n, "--n"), _numbers(d, "--d")
        if len(ns) != len(ds) and 1 not in (len(ns), len(ds)):
            raise InvalidInputError(
                f"Give as many --n as --d values (or one of either), not {len(ns)} and {len(ds)}."
            )
        pred = law.predict(np.asarray(ns), np.asarray(ds), unique=unique)
        lo, hi = pred.interval(0.8)
        rows: list[dict[str, Any]] = [
            {"N": float(a), "D": float(b), "loss": float(m), "interval_80": [float(x), float(y)]}
            for a, b, m, x, y in zip(pred.n, pred.d, pred.median, lo, hi, strict=True)
        ]
        if as_json:
            console.print_json(json.dumps(rows))
            return
        table = Table(title=f"{law.form.name} law", title_justify="left")
        for name in ("N", "D", "tokens/param", "predicted loss", "80% interval"):
            table.add_column(name, justify="right")
        for r in rows:
            iv: Any = r["interval_80"]
            table.add_row(
                f"{r['N']:.4g}",
                f"{r['D']:.4g}",
                f"{r['D'] / r['N']:.1f}",
                f"{r['loss']:.4f}",
                f"[{iv[0]:.4f}, {iv[1]:.4f}]",
            )
        console.print(table)


def optimal_cmd(
    law_file: Annotated[Path, typer.Argument(help="A law saved by 'runcast scale fit -o'.")],
    flops: Annotated[str, typer.Option("--flops", "-c", help="FLOP budgets, comma-separated.")],
    unique: Annotated[
        float | None, typer.Option("--unique", help="Unique tokens available (repeats cost).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The compute-optimal model size and tokens (C = 6 N D) for each budget, with intervals."""
    with friendly_errors():
        from rich.table import Table

        from runcast.scaling import ScalingLaw

        law = ScalingLaw.load(law_file)
        a = law.optimal(_numbers(flops, "--flops"), level=0.8, unique=unique)
        rows: list[dict[str, Any]] = [
            {
                "flops": float(a.flops[i]),
                "N": float(a.n[i]),
                "D": float(a.d[i]),
                "loss": float(a.loss[i]),
                "N_interval_80": [float(a.n_interval[0][i]), float(a.n_interval[1][i])],
                "D_interval_80": [float(a.d_interval[0][i]), float(a.d_interval[1][i])],
                "loss_interval_80": [float(a.loss_interval[0][i]), float(a.loss_interval[1][i])],
            }
            for i in range(a.flops.size)
        ]
        if as_json:
            console.print_json(json.dumps(rows))
            return
        table = Table(title="compute-optimal allocation (80% intervals)", title_justify="left")
        for name in ("FLOPs", "N", "D", "tokens/param", "loss"):
            table.add_column(name, justify="right")
        for r in rows:
            ni, di, li = r["N_interval_80"], r["D_interval_80"], r["loss_interval_80"]
            table.add_row(
                f"{r['flops']:.3g}",
                f"{r['N']:.3g} [{ni[0]:.3g}, {ni[1]:.3g}]",
                f"{r['D']:.3g} [{di[0]:.3g}, {di[1]:.3g}]",
                f"{r['D'] / r['N']:.1f}",
                f"{r['loss']:.4f} [{li[0]:.4f}, {li[1]:.4f}]",
            )
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``runcast scale fit``, ``predict`` and ``optimal``."""
    scale_app.command("fit")(fit_cmd)
    scale_app.command("predict")(predict_cmd)
    scale_app.command("optimal")(optimal_cmd)
    app.add_typer(scale_app, name="scale")
