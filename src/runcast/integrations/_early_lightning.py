"""Early stopping in Lightning that keeps the weights of the best validation.

:class:`EarlyStopCallback` buffers the training loss of each step as a detached 0-d tensor (no
device sync per step; the buffer comes to the host once per validation), feeds a
:class:`runcast.steer.EarlyStopper` after each validation, copies the module's weights to host
memory at every new best, stops training when the stopper decides (rank 0's decision broadcast
to every rank) and loads the best weights back at the end of ``fit``. The stopper's state and
the kept best weights travel in Lightning checkpoints (``state_dict``/``load_state_dict``), so
``trainer.fit(..., ckpt_path=...)`` goes on where the rule was.

Example:
    >>> from runcast.steer import EarlyStopper
    >>> cb = EarlyStopCallback(EarlyStopper(window=3), monitor="val_loss")
    >>> cb.monitor, cb.restore
    ('val_loss', True)
"""

from __future__ import annotations

import math
from typing import Any

from runcast._optional import require
from runcast.steer._decision import Decision
from runcast.steer._early import EarlyStopper

require("lightning", extra="lightning", purpose="for runcast.integrations.lightning")
from lightning.pytorch import Callback  # noqa: E402  (after require: names the extra)

from runcast.integrations._early_torch import (  # noqa: E402
    BestOfStopper,
    BestWeights,
    record_best,
)


class EarlyStopCallback(Callback, BestOfStopper):
    """Stop a Lightning fit when the validation metric turns (or the rest will not pay), and
    keep the best validation's weights.

    Args:
        stopper: the rule (default ``EarlyStopper()``; ``mode="max"`` for an accuracy).
        monitor: the logged validation metric it watches.
        loss_key: the key of ``training_step``'s output that holds the loss.
        restore: at the end of fit, load the best validation's weights into the module.
        run: a :class:`runcast.Run`, or the runcast ``RuncastCallback`` recording the fit, to
            record the best validation in (``config["runcast_best"]``: step, value, and the
            stop once there is one).

    After fit: ``decision`` (what stopped it, with reason and numbers, or None), ``best_step``,
    ``best_value`` and ``restored_step``.
    """

    def __init__(
        self,
        stopper: EarlyStopper | None = None,
        *,
        monitor: str = "val_loss",
        loss_key: str = "loss",
        restore: bool = True,
        run: Any = None,
    ) -> None:
        self.stopper = stopper if stopper is not None else EarlyStopper()
        self.monitor, self.loss_key, self.restore = monitor, loss_key, restore
        self.run = run
        self.best = BestWeights()
        self.decision: Decision | None = None
        self.restored_step: int | None = None
        self._losses: list[Any] = []

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Buffer the step's loss on its device (converted once per validation)."""
        loss = outputs.get(self.loss_key) if isinstance(outputs, dict) else outputs
        if loss is not None and hasattr(loss, "detach"):
            self._losses.append(loss.detach().reshape(()))

    def _train_loss(self) -> float:
        import torch

        if not self._losses:
            return math.nan
        # note: one device sync per validation, for the whole interval's losses
        values = torch.stack([v.float() for v in self._losses]).cpu()
        self._losses = []
        return float(values.median())

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Decide on the validation (rank 0), keep the weights on a new best, broadcast."""
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        step = int(trainer.global_step)
        d = self.stopper.evaluate(
            step, float(trainer.callback_metrics[self.monitor]), train_loss=self._train_loss()
        )
        if self.stopper.best_step == step and self.best.step != step:
            self.best.keep(pl_module, step, trainer.optimizers[0] if trainer.optimizers else None)
        record_best(self.run, self.stopper, self.monitor)
        stop = bool(trainer.strategy.broadcast(bool(d), src=0))
        if stop:
            if self.decision is None and d:
                self.decision = d
            trainer.should_stop = True

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        """Load the best validation's weights back."""
        if self.restore:
            self.restored_step = self.best.restore(pl_module)

    def state_dict(self) -> dict[str, Any]:
        """The rule's state and the kept best weights (host tensors): a checkpoint carries them,
        so a fit resumed from it (``ckpt_path=``) can still restore a best from before."""
        return {
            "stopper": self.stopper.state_dict(),
            "best": self.best.state,
            "step": self.best.step,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.stopper.load_state_dict(state_dict["stopper"])
        self.decision = self.stopper.decisions[0] if self.stopper.decisions else None
        # a checkpoint from before the best weights travelled has only the rule's state
        self.best.state, self.best.step = state_dict.get("best"), state_dict.get("step")
