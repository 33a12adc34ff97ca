"""``runcast cbs SCRIPT CHECKPOINT``: measure the critical batch size at a checkpoint.

SCRIPT is a small Python file (see ``docs/cbs_example.py``) that defines:

- ``build() -> (model, optimizer)``: a fresh model and optimizer; the checkpoint's states are
  loaded into them;
- ``train(model, optimizer, batch_size, steps) -> list[float]``: train ``steps`` steps at
  ``batch_size`` with the optimizer's LR as set, drawing the same data in every branch;
  return the per-step losses;
- optionally ``evaluate(model) -> float`` (compared instead of the smoothed training loss) and
  ``BATCH_SIZE`` / ``RUN_EXAMPLES`` (defaults of ``--batch-size`` / ``--run-examples``).

CHECKPOINT is a ``torch.save`` of ``{"model": state_dict, "optimizer": state_dict}`` and,
optionally, ``"step"``, ``"batch_size"``, ``"run"`` (the id of the run it came from: the
branches are recorded as runs forked from it) and ``"run_examples"``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from runcast.cli._common import console, db_path, friendly_errors
from runcast.errors import InvalidInputError


def _load_script(path: Path) -> Any:
    if not path.is_file():
        raise InvalidInputError(f"The training script {str(path)!r} does not exist.")
    spec = importlib.util.spec_from_file_location("runcast_cbs_script", path)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"{str(path)!r} is not a Python file runcast can import.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("build", "train"):
        if not callable(getattr(module, name, None)):
            raise InvalidInputError(
                f"{path.name} must define {name}(); see `runcast cbs --help` and "
                "docs/cbs_example.py for what the script provides."
            )
    return module


def _ks(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(k) for k in text.split(","))
    except ValueError as err:
        raise InvalidInputError(
            f"--ks must be whole numbers separated by commas, such as 1,2,4,8,16, but got {text!r}."
        ) from err


def cbs(
    script: Annotated[Path, typer.Argument(help="The training script (build, train).")],
    checkpoint: Annotated[Path, typer.Argument(help="torch.save of model/optimizer states.")],
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", "-b", help="The run's batch size (k = 1).")
    ] = None,
    ks: Annotated[str, typer.Option("--ks", help="Batch multipliers.")] = "1,2,4,8,16",
    rule: Annotated[str, typer.Option("--rule", help="LR rule: sqrt (Adam) or linear (SGD).")] = (
        "sqrt"
    ),
    window: Annotated[
        int | None, typer.Option("--window", help="Examples per branch (default 0.9% of run).")
    ] = None,
    run_examples: Annotated[
        int | None, typer.Option("--run-examples", help="The run's examples in all.")
    ] = None,
    ema: Annotated[float, typer.Option("--ema", help="Smoothing of the losses.")] = 0.5,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Allowed loss excess.")] = 0.01,
    run: Annotated[
        str | None, typer.Option("--run", help="Fork the branches from this run (default: ckpt).")
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="The run store.")] = None,
) -> None:
    """Bracket the critical batch size at a checkpoint by short branched runs."""
    with friendly_errors():
        import torch

        from runcast.steer import measure_cbs

        module = _load_script(script)
        try:
            ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
        except (OSError, RuntimeError) as err:
            raise InvalidInputError(
                f"Cannot read the checkpoint {str(checkpoint)!r}: {err}"
            ) from err
        if not isinstance(ckpt, dict) or "model" not in ckpt or "optimizer" not in ckpt:
            raise InvalidInputError(
                f"{checkpoint.name} must hold a dict with 'model' and 'optimizer' state dicts."
            )
        model, optimizer = module.build()
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        size = batch_size or ckpt.get("batch_size") or getattr(module, "BATCH_SIZE", None)
        if size is None:
            raise InvalidInputError(
                "The run's batch size is unknown: pass --batch-size, or put 'batch_size' in the "
                "checkpoint or BATCH_SIZE in the script."
            )
        total = run_examples or ckpt.get("run_examples") or getattr(module, "RUN_EXAMPLES", None)
        parent = run or ckpt.get("run")
        step = ckpt.get("step")
        res = measure_cbs(
            model,
            optimizer,
            module.train,
            batch_size=int(size),
            ks=_ks(ks),
            rule=rule,  # type: ignore[arg-type]  # measure_cbs checks it
            window=window,
            run_examples=total,
            ema=ema,
            tolerance=tolerance,
            evaluate=getattr(module, "evaluate", None),
            run=parent,
            step=step if parent is not None else None,
            db=db_path(db) if parent is not None else None,
            echo=lambda line: console.print(escape(line), soft_wrap=True),
        )
        table = Table("k", "batch", "LR", "steps", "loss", "passed", "run")
        for b in res.branches:
            table.add_row(
                str(b.k),
                str(b.batch_size),
                f"{b.lr:.3g}",
                str(b.steps),
                f"{b.loss:.4f}",
                "yes" if b.passed else "no",
                b.run_id or "",
            )
        console.print(table)
        hi = "above every batch tried" if res.hi is None else f"below {res.hi}"
        console.print(f"CBS: at least [bold]{res.lo}[/], {hi} (interval [{res.lo}, {res.hi}]).")


def register(app: typer.Typer) -> None:
    """Add ``runcast cbs`` to the command line."""
    app.command("cbs")(cbs)
