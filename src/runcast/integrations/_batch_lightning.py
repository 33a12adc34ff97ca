"""Batch-size warmup in Lightning, by gradient accumulation.

The micro-batch (the dataloader's batch on each process) stays; ``trainer.accumulate_grad_batches``
follows the :class:`~runcast.steer.BatchSizeWarmup`, and the LR (optimizers and their
schedulers' base LRs) is multiplied by the warmup's rule at each change. Lightning steps when the
epoch's batch count is a multiple of the accumulation, so a change waits for such a boundary (at
most one more step at the old accumulation). The callback's state (the warmup, the examples
seen, the batch in force) goes into Lightning checkpoints, so resuming goes on with the same
batch size and LR.

Example:
    >>> from runcast.steer import BatchSizeWarmup
    >>> cb = BatchSizeWarmupCallback(BatchSizeWarmup(8, 64, cbs=[(0, 4)]), micro_batch=8)
    >>> cb.state_dict()["applied"]
    8
"""

from __future__ import annotations

from typing import Any

from runcast._optional import require
from runcast.errors import InvalidInputError
from runcast.steer._bswarmup import BatchSizeWarmup
from runcast.steer._cbs import lr_factor

require("lightning", extra="lightning", purpose="for runcast.integrations.lightning")
from lightning.pytorch import Callback  # noqa: E402  (after require: names the extra)


class BatchSizeWarmupCallback(Callback):
    """Grow a Lightning run's batch by gradient accumulation as a :class:`BatchSizeWarmup`
    decides.

    Args:
        warmup: the controller; its ``base_batch`` must be ``micro_batch`` x processes x the
            trainer's ``accumulate_grad_batches`` at the start.
        micro_batch: examples in one dataloader batch on one process.
        max_examples: stop once this many examples are seen (None: the trainer's own limits).

    ``warmup.decisions`` lists every change with its reason.
    """

    def __init__(
        self, warmup: BatchSizeWarmup, micro_batch: int, max_examples: int | None = None
    ) -> None:
        if not isinstance(warmup, BatchSizeWarmup):
            raise InvalidInputError(
                f"warmup must be a runcast.steer.BatchSizeWarmup, but got {type(warmup).__name__}."
            )
        if isinstance(micro_batch, bool) or not isinstance(micro_batch, int) or micro_batch < 1:
            raise InvalidInputError(f"micro_batch must be a whole number >= 1, got {micro_batch=}.")
        self.warmup = warmup
        self.micro_batch = micro_batch
        self.max_examples = max_examples
        self.examples = 0
        self.applied = warmup.base_batch
        self._fresh = True

    def state_dict(self) -> dict[str, Any]:
        """What a Lightning checkpoint keeps."""
        return {
            "warmup": self.warmup.state_dict(),
            "examples": self.examples,
            "applied": self.applied,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from a checkpoint's :meth:`state_dict`."""
        self.warmup.load_state_dict(state_dict["warmup"])
        self.examples, self.applied = int(state_dict["examples"]), int(state_dict["applied"])
        self._fresh = False

    def _micro(self, trainer: Any) -> int:
        return self.micro_batch * max(int(trainer.world_size), 1)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        micro = self._micro(trainer)
        if self._fresh and self.examples == 0:
            start = micro * trainer.accumulate_grad_batches
            if start != self.warmup.base_batch:
                raise InvalidInputError(
                    f"The trainer starts at batch {start} (micro_batch {self.micro_batch} x "
                    f"{max(int(trainer.world_size), 1)} processes x accumulate_grad_batches "
                    f"{trainer.accumulate_grad_batches}), but the warmup starts at "
                    f"base_batch={self.warmup.base_batch}; make them equal."
                )
        trainer.accumulate_grad_batches = self.applied // micro

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        micro = self._micro(trainer)
        accumulation = trainer.accumulate_grad_batches
        if (batch_idx + 1) % accumulation:
            return  # mid-accumulation: no optimizer step yet
        self.examples += self.applied
        self.warmup.update(trainer.global_step, self.examples)
        target = self.warmup.batch_size
        new = target // micro
        # Lightning steps when the epoch's batch count is a multiple of the accumulation
        if target != self.applied and (batch_idx + 1) % new == 0:
            factor = lr_factor(target / self.applied, self.warmup.rule)
            for opt in trainer.optimizers:
                for group in opt.param_groups:
                    group["lr"] *= factor
            for config in trainer.lr_scheduler_configs:
                sched = config.scheduler
                if hasattr(sched, "base_lrs"):
                    sched.base_lrs = [lr * factor for lr in sched.base_lrs]
            trainer.accumulate_grad_batches = new
            self.applied = target
        if self.max_examples is not None and self.examples >= self.max_examples:
            trainer.should_stop = True
