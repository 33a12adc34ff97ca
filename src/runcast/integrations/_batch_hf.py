"""Batch-size warmup in a Hugging Face ``Trainer``, by gradient accumulation.

The micro-batch (``per_device_train_batch_size`` x processes) stays; the number of micro-batches
per optimizer step follows the :class:`~runcast.steer.BatchSizeWarmup`, and the LR (optimizer
and scheduler) is multiplied by the warmup's rule at each change. The Trainer re-reads
``args.gradient_accumulation_steps`` before every optimizer step, but counts micro-batches from
the start of the epoch, so a change waits until that count is a multiple of the new
accumulation (at most one more step at the old one). The warmup's state, the examples seen and
the batch in force are saved in each checkpoint (``trainer_state.json``), so
``train(resume_from_checkpoint=...)`` goes on with the same batch size and LR. (The Trainer
itself skips the resumed epoch's first ``global_step x gradient_accumulation_steps`` batches
counted at the accumulation it was started with, so after a change the data order resumes
near, not exactly at, where it stopped.)

Example:
    >>> from runcast.steer import BatchSizeWarmup
    >>> cb = BatchSizeWarmupCallback(BatchSizeWarmup(8, 64, cbs=[(0, 4), (10_000, 64)]))
    >>> cb.warmup.batch_size, cb.examples
    (8, 0)
"""

from __future__ import annotations

from typing import Any

from runcast._optional import require
from runcast.errors import InvalidInputError
from runcast.steer._bswarmup import BatchSizeWarmup
from runcast.steer._cbs import lr_factor

require("transformers", extra="hf", purpose="for runcast.integrations.hf")
from transformers import TrainerCallback  # noqa: E402  (after require: names the extra)
from transformers.trainer_callback import ExportableState  # noqa: E402


class BatchSizeWarmupCallback(TrainerCallback, ExportableState):
    """Grow the Trainer's batch by gradient accumulation as a :class:`BatchSizeWarmup` decides.

    Args:
        warmup: the controller (its ``base_batch`` must be the Trainer's batch at the start:
            ``per_device_train_batch_size`` x processes x ``gradient_accumulation_steps``), or
            its ``state_dict()`` (how a checkpoint restores it).
        max_examples: stop training once this many examples are seen (same-data comparisons
            against a fixed batch); None: the Trainer's own ``max_steps``/epochs.
        examples, applied: the examples seen and the batch in force, restored from a checkpoint
            (leave them to it).

    ``warmup.decisions`` lists every change with its reason.
    """

    def __init__(
        self,
        warmup: BatchSizeWarmup | dict[str, Any],
        max_examples: int | None = None,
        examples: int = 0,
        applied: int | None = None,
    ) -> None:
        if isinstance(warmup, dict):
            warmup = BatchSizeWarmup.from_state_dict(warmup)
        if not isinstance(warmup, BatchSizeWarmup):
            raise InvalidInputError(
                f"warmup must be a runcast.steer.BatchSizeWarmup, but got {type(warmup).__name__}."
            )
        self.warmup = warmup
        self.max_examples = max_examples
        self.examples = int(examples)
        self.applied = warmup.base_batch if applied is None else int(applied)
        self._micro = 0
        self._in_epoch = 0

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (the Trainer rebuilds the callback from it on resume)."""
        return {
            "args": {
                "warmup": self.warmup.state_dict(),
                "max_examples": self.max_examples,
                "examples": self.examples,
                "applied": self.applied,
            },
            "attributes": {},
        }

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._micro = args.per_device_train_batch_size * max(args.world_size, 1)
        saved = (getattr(state, "stateful_callbacks", None) or {}).get(type(self).__name__)
        if state.global_step > 0 and self.examples == 0 and isinstance(saved, dict):
            # resumed without restore_callback_states_from_checkpoint: the checkpoint's
            # trainer state still holds what state() saved
            kept = saved.get("args", {})
            self.warmup.load_state_dict(kept["warmup"])
            self.examples, self.applied = int(kept["examples"]), int(kept["applied"])
        if state.global_step == 0 and self.examples == 0:
            start = self._micro * args.gradient_accumulation_steps
            if start != self.warmup.base_batch:
                raise InvalidInputError(
                    f"The Trainer starts at batch {start} (per_device_train_batch_size "
                    f"{args.per_device_train_batch_size} x {max(args.world_size, 1)} processes x "
                    f"gradient_accumulation_steps {args.gradient_accumulation_steps}), but the "
                    f"warmup starts at base_batch={self.warmup.base_batch}; make them equal."
                )
        # resumed: the restored batch size, by accumulation (optimizer and scheduler LRs
        # come back from the checkpoint already scaled)
        args.gradient_accumulation_steps = self.applied // self._micro

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._in_epoch = 0

    def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._in_epoch += 1

    def on_step_end(
        self,
        args: Any,
        state: Any,
        control: Any,
        optimizer: Any = None,
        lr_scheduler: Any = None,
        **kwargs: Any,
    ) -> None:
        self._in_epoch += 1
        self.examples += self.applied
        self.warmup.update(state.global_step, self.examples)
        target = self.warmup.batch_size
        accumulation = target // self._micro
        # the Trainer syncs when its in-epoch micro-batch count is a multiple of the
        # accumulation: change only at such a boundary, or steps would straddle two settings
        if target != self.applied and self._in_epoch % accumulation == 0:
            factor = lr_factor(target / self.applied, self.warmup.rule)
            if optimizer is not None:
                for group in optimizer.param_groups:
                    group["lr"] *= factor
            if lr_scheduler is not None and hasattr(lr_scheduler, "base_lrs"):
                lr_scheduler.base_lrs = [lr * factor for lr in lr_scheduler.base_lrs]
            args.gradient_accumulation_steps = accumulation
            self.applied = target
        if self.max_examples is not None and self.examples >= self.max_examples:
            control.should_training_stop = True
