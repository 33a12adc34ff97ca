"""A Lightning fit on 2 CPU processes (gloo) with runcast's callback; each rank reports as JSON.

Run by tests/integrations/test_ddp_lightning.py:

    python lightning_fit.py DB OUT STRATEGY RULE

STRATEGY is "ddp" (Lightning re-launches this script for rank 1) or "ddp_spawn"; RULE is
"stop" (a stop rule that fires at its first check with a forecast) or "plateau" (a plateau at
the 2nd validation, plus a stop rule whose forecaster raises at its check). Every rank writes
OUT/rank<r>.json: its own losses, the step it stopped at, the decisions its callback holds and
the runcast warnings it saw.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch

from runcast.errors import RuncastWarning
from runcast.integrations.lightning import RuncastCallback
from runcast.steer import PlateauDetector, StopRule

if TYPE_CHECKING:
    from runcast.curve import Curve
    from runcast.forecast import Forecast

MAX_STEPS = 24


class Regressor(pl.LightningModule):  # type: ignore[misc]
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
        )

    def training_step(self, batch: Any, idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch: Any, idx: int) -> None:
        x, y = batch
        # no sync_dist: each rank sees its own val_loss, and only rank 0's may decide
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


def loader(n: int, seed: int) -> torch.utils.data.DataLoader:  # type: ignore[type-arg]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(n, 1, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


def broken_forecaster(curve: Curve, until: int) -> Forecast:
    """A user's forecaster with a bug (module level: ddp_spawn pickles it to the ranks)."""
    raise ValueError("forecaster down")


class Report(pl.Callback):  # type: ignore[misc]
    """Each rank's own view: its losses, where it stopped, what its runcast callback decided."""

    def __init__(self, out: Path, runcast_cb: RuncastCallback) -> None:
        self.out = out
        self.runcast_cb = runcast_cb
        self.losses: dict[int, float] = {}
        self.warnings: list[warnings.WarningMessage] = []

    def on_fit_start(self, trainer: Any, module: Any) -> None:
        # made here, in the rank itself: ddp_spawn pickles callbacks, and this does not pickle
        self._caught = warnings.catch_warnings(record=True)
        self.warnings = self._caught.__enter__()
        warnings.simplefilter("always")

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, *a: Any) -> None:
        self.losses[int(trainer.global_step)] = float(outputs["loss"])

    def on_fit_end(self, trainer: Any, module: Any) -> None:
        self._caught.__exit__(None, None, None)
        report = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "global_step": int(trainer.global_step),
            "losses": self.losses,
            "decisions": [d.to_dict() for d in self.runcast_cb.decisions],
            "owns_run": self.runcast_cb.run is not None,
            "warnings": [str(w.message) for w in self.warnings if w.category is RuncastWarning],
        }
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(report))
        # under strategy="ddp", rank 0 is this script and nothing waits for the rank-1 process
        # it started: without this, the test could read the reports before rank 1 wrote its own
        trainer.strategy.barrier("runcast-report")


def main() -> None:
    db, out, strategy, rule = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    if rule == "stop":  # no run can gain 100: stops at the first check with a forecast
        stop_rule, plateau = StopRule(tolerance=100.0, min_points=5), None
    else:  # nothing beats the first validation by 100: a plateau at the 2nd (step 8)
        stop_rule = StopRule(min_points=5, forecaster=broken_forecaster)
        plateau = PlateauDetector(patience=1, min_delta=100.0)
    cb = RuncastCallback(
        project="ddp",
        name=f"{strategy}-{rule}",
        db=db,
        stop_rule=stop_rule,
        check_every=6,
        plateau=plateau,
    )
    trainer = pl.Trainer(
        strategy=strategy,
        accelerator="cpu",
        devices=2,
        max_steps=MAX_STEPS,
        val_check_interval=4,  # 64 samples / 2 ranks / batch 8 = 4 batches per epoch
        callbacks=[cb, Report(out, cb)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=str(out),
    )
    trainer.fit(Regressor(), loader(64, 0), loader(32, 1))
    # Lightning leaves the process group up; torn down at interpreter exit, a gloo group can
    # abort the rank ("terminate called without an active exception"), as the HF script did.
    # Both ranks meet first: a group shut down while the other rank still talks aborts too
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    # and end here: even then, interpreter teardown with gloo's threads (holding the async
    # all-reduce work of DDP's hooks) can abort a rank. The run and the reports are written
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
