"""``runcast verify PROOF --train SCRIPT``: check a proof of training (see runcast.verify).

Exits 0 when every check passes and 1 when one fails; a malformed or tampered proof is a
failed check with its reason, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from runcast.cli._common import console, friendly_errors


def verify_cmd(
    proof: Annotated[Path, typer.Argument(help="The proof folder (holding manifest.json).")],
    train: Annotated[
        Path,
        typer.Option(
            "--train", "-t", help="The training script that defines `task` (runcast.verify.Task)."
        ),
    ],
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="The verifier's own random seed (default: fresh randomness)."),
    ] = None,
    replay_share: Annotated[
        float | None,
        typer.Option(
            "--replay-share",
            help="Share of the segments to retrain, at least 3 (default: VerifyConfig's).",
        ),
    ] = None,
    noise_factor: Annotated[
        float | None,
        typer.Option(
            "--noise-factor",
            help="Replay tolerance, in multiples of the model's measured rounding noise "
            "(default: VerifyConfig's calibrated value).",
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="torch threads for the replay.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Verify a proof of training: commitment, chain, init, replay, memorisation."""
    with friendly_errors():
        from runcast.verify import VerifyConfig, verify

        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        config = VerifyConfig(seed=seed)
        if replay_share is not None:
            config = dataclasses.replace(config, replay_share=replay_share)
        if noise_factor is not None:
            config = dataclasses.replace(config, noise_factor=noise_factor)
        report = verify(proof, script=train, config=config)
    if as_json:
        print(json.dumps(report.to_dict(), default=str))
    else:
        style = "bold green" if report.passed else "bold red"
        lines = str(report).splitlines()
        console.print(f"[{style}]{escape(lines[0])}[/]", highlight=False)
        for line in lines[1:]:
            console.print(escape(line), highlight=False, soft_wrap=True)
    if not report.passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``runcast verify``."""
    app.command("verify")(verify_cmd)
