"""Early stopping in a Hugging Face ``Trainer`` that keeps the weights of the best evaluation.

:class:`EarlyStopCallback` feeds the logged training ``loss`` and each evaluation's ``metric``
to a :class:`runcast.steer.EarlyStopper`, copies the model's weights to host memory at every new
best evaluation, stops training (``control.should_training_stop``) when the stopper decides, and
puts the best weights back into the model at the end of training. It also names the
checkpoint the Trainer saved at the best step, if it saved one (``best_checkpoint``). The
Trainer gathers evaluation metrics across processes before ``on_evaluate``, so under DDP every
process sees the same numbers and decides the same.

Example:
    >>> from runcast.steer import EarlyStopper
    >>> cb = EarlyStopCallback(EarlyStopper(window=3))
    >>> cb.metric, cb.restore
    ('eval_loss', True)
"""

from __future__ import annotations

import logging
import numbers
from pathlib import Path
from typing import Any

from runcast._optional import require
from runcast.steer._decision import Decision
from runcast.steer._early import EarlyStopper

require("transformers", extra="hf", purpose="for runcast.integrations.hf")
from transformers import TrainerCallback  # noqa: E402  (after require: names the extra)

from runcast.integrations._early_torch import BestWeights  # noqa: E402

_log = logging.getLogger("runcast.integrations.hf")


class EarlyStopCallback(TrainerCallback):
    """Stop a ``Trainer`` when its validation metric turns (or the rest will not pay), and keep
    the best evaluation's weights.

    Args:
        stopper: the rule (default ``EarlyStopper()``; ``mode="max"`` for an accuracy).
        metric: the evaluation metric it watches (``eval_`` + the metric's name).
        restore: at the end of training, load the best evaluation's weights into the model.

    After training: ``decision`` (what stopped it, with reason and numbers, or None),
    ``best_step``, ``best_value``, ``best_checkpoint`` (the Trainer's checkpoint folder of the
    best step, when it saved one there) and ``restored_step``.
    """

    def __init__(
        self,
        stopper: EarlyStopper | None = None,
        *,
        metric: str = "eval_loss",
        restore: bool = True,
    ) -> None:
        self.stopper = stopper if stopper is not None else EarlyStopper()
        self.metric, self.restore = metric, restore
        self.best = BestWeights()
        self.decision: Decision | None = None
        self.best_checkpoint: str | None = None
        self.restored_step: int | None = None

    @property
    def best_step(self) -> int | None:
        return self.stopper.best_step

    @property
    def best_value(self) -> float | None:
        return self.stopper.best_value

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        """The training loss the Trainer logs (already a float: no device sync here)."""
        loss = (logs or {}).get("loss")
        if isinstance(loss, numbers.Real):
            d = self.stopper.observe_train(int(state.global_step), float(loss))
            self._act(d, control)

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, float] | None = None,
        **kw: Any,
    ) -> None:
        """Decide on the evaluation; keep the weights when it is a new best."""
        if not metrics or self.metric not in metrics:
            return
        step = int(state.global_step)
        d = self.stopper.evaluate(step, float(metrics[self.metric]))
        model = kw.get("model")
        if self.stopper.best_step == step and model is not None:
            self.best.keep(model, step, kw.get("optimizer"))
        self._act(d, control)

    def _act(self, d: Decision, control: Any) -> None:
        if d and self.decision is None:
            self.decision = d
            control.should_training_stop = True
            _log.info("runcast early stop: %s", d)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Name the best step's checkpoint, and restore the best weights."""
        if self.best_step is not None:
            folder = Path(args.output_dir) / f"checkpoint-{self.best_step}"
            self.best_checkpoint = str(folder) if folder.is_dir() else None
        model = kw.get("model")
        if self.restore and model is not None:
            self.restored_step = self.best.restore(model)
