"""Early stopping in a Hugging Face ``Trainer`` that keeps the weights of the best evaluation.

:class:`EarlyStopCallback` feeds the logged training ``loss`` and each evaluation's ``metric``
to a :class:`runcast.steer.EarlyStopper`, copies the model's weights to host memory at every new
best evaluation, stops training (``control.should_training_stop``) when the stopper decides, and
puts the best weights back into the model at the end of training. It also names the
checkpoint the Trainer saved at the best step, if it saved one (``best_checkpoint``). The
Trainer gathers evaluation metrics across processes before ``on_evaluate``, so under DDP every
process sees the same numbers and decides the same.

A resumed ``Trainer`` (``train(resume_from_checkpoint=...)``) goes on with the rule's state of
the checkpoint: the callback is an ``ExportableState``, so its state (the evaluations so far,
the best step and value, the decisions) travels in the checkpoint's ``trainer_state.json``, and
the kept best weights in ``runcast_best_weights.pt`` beside it (``save_best_weights``). The
callback reads them back when training begins, with or without
``restore_callback_states_from_checkpoint`` (with it, the Trainer builds a new callback from the
saved settings; a ``stop_rule``, ``schedule`` or ``dynamics`` of the stopper cannot travel in
JSON and is left out, with a warning; the ``run`` is left out too).

Example:
    >>> from runcast.steer import EarlyStopper
    >>> cb = EarlyStopCallback(EarlyStopper(window=3))
    >>> cb.metric, cb.restore
    ('eval_loss', True)
"""

from __future__ import annotations

import logging
import numbers
import warnings
from pathlib import Path
from typing import Any

from runcast._optional import require
from runcast.steer._decision import Decision
from runcast.steer._early import EarlyStopper

require("transformers", extra="hf", purpose="for runcast.integrations.hf")
from transformers import TrainerCallback  # noqa: E402  (after require: names the extra)
from transformers.trainer_callback import ExportableState  # noqa: E402

from runcast.errors import RuncastWarning  # noqa: E402
from runcast.integrations._early_torch import (  # noqa: E402
    BestOfStopper,
    BestWeights,
    record_best,
)

_log = logging.getLogger("runcast.integrations.hf")

#: the kept best weights, written beside each checkpoint the Trainer saves
BEST_WEIGHTS_FILE = "runcast_best_weights.pt"


class EarlyStopCallback(TrainerCallback, ExportableState, BestOfStopper):
    """Stop a ``Trainer`` when its validation metric turns (or the rest will not pay), and keep
    the best evaluation's weights.

    Args:
        stopper: the rule (default ``EarlyStopper()``; ``mode="max"`` for an accuracy).
        metric: the evaluation metric it watches (``eval_`` + the metric's name).
        restore: at the end of training, load the best evaluation's weights into the model.
        run: a :class:`runcast.Run`, or the runcast ``RuncastCallback`` recording the training,
            to record the best evaluation in (``config["runcast_best"]``: step, value, and the
            stop once there is one; ``runcast runs show`` prints it).
        save_best_weights: write the kept best weights beside each checkpoint the Trainer saves
            (``runcast_best_weights.pt``), so a resumed run can still restore them.
        settings: the stopper's settings as :meth:`state` saves them (what the Trainer passes
            when it rebuilds the callback from a checkpoint); ignored when ``stopper`` is given.

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
        run: Any = None,
        save_best_weights: bool = True,
        settings: dict[str, Any] | None = None,
    ) -> None:
        if stopper is None and settings:
            settings = dict(settings)
            left_out = settings.pop("left_out", [])
            if left_out:
                warnings.warn(
                    RuncastWarning(
                        f"EarlyStopCallback rebuilt from a checkpoint without the stopper's "
                        f"{', '.join(left_out)} (objects do not travel in trainer_state.json); "
                        "pass the callback with restore_callback_states_from_checkpoint=False "
                        "(the default) to keep them."
                    ),
                    stacklevel=2,
                )
            known = EarlyStopper().settings()
            retired = sorted(set(settings) - set(known))
            if retired:  # a setting of an older turn test (e.g. its trend_z)
                warnings.warn(
                    RuncastWarning(
                        f"EarlyStopCallback rebuilt from a checkpoint with settings this "
                        f"version no longer has ({', '.join(retired)}); they are ignored."
                    ),
                    stacklevel=2,
                )
            stopper = EarlyStopper(**{k: v for k, v in settings.items() if k in known})
        if stopper is None:
            stopper = EarlyStopper()
        self.stopper = stopper
        self.metric, self.restore, self.run = metric, restore, run
        self.save_best_weights = save_best_weights
        self.best = BestWeights()
        self.decision: Decision | None = None
        self.best_checkpoint: str | None = None
        self.restored_step: int | None = None
        #: the state a checkpoint carried (set by the Trainer when it rebuilds the callback)
        self.resume_state: dict[str, Any] | None = None
        self._output_dir: str | None = None
        self._step = 0

    # --- checkpoints --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (``ExportableState``; JSON in ``trainer_state.json``)."""
        settings = self.stopper.settings()
        es = self.stopper
        objects = {"stop_rule": es.stop_rule, "schedule": es.schedule, "dynamics": es.dynamics}
        settings["left_out"] = [name for name, obj in objects.items() if obj is not None]
        return {
            "args": {
                "metric": self.metric,
                "restore": self.restore,
                "save_best_weights": self.save_best_weights,
                "settings": settings,
            },
            "attributes": {
                "resume_state": {
                    "stopper": self.stopper.state_dict(),
                    "best_weights": self._weights_path(),
                    "best_weights_step": self.best.step,
                }
            },
        }

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """On a resumed run, take the rule's state (and the kept weights) of the checkpoint."""
        self._output_dir, self._step = str(args.output_dir), int(state.global_step)
        saved = self.resume_state
        if saved is None and state.global_step > 0:
            entry = (state.stateful_callbacks or {}).get(type(self).__name__)
            if isinstance(entry, list):  # several callbacks of this class: the first one's
                entry = entry[0] if entry else None
            if isinstance(entry, dict):
                saved = entry.get("attributes", {}).get("resume_state")
        self.resume_state = None
        if not saved or int(state.global_step) < max(saved["stopper"]["steps"] or [0]):
            return  # a fresh run, or a state from further on than this checkpoint
        self.stopper.load_state_dict(saved["stopper"])
        self.decision = self.stopper.decisions[0] if self.stopper.decisions else None
        path = saved.get("best_weights")
        if path and Path(path).is_file():
            import torch

            self.best.state = torch.load(path, map_location=self.best.device, weights_only=True)
            self.best.step = saved["best_weights_step"]
        elif path:
            warnings.warn(
                RuncastWarning(
                    f"The best weights (step {saved['best_weights_step']}) kept at {path!r} are "
                    "gone; the resumed run restores only a later best."
                ),
                stacklevel=2,
            )

    def _weights_path(self) -> str | None:
        """Where the checkpoint being saved now keeps the best weights (state() is asked while
        the Trainer saves it, on_save just after)."""
        if not (self.save_best_weights and self.best.state is not None and self._output_dir):
            return None
        return str(Path(self._output_dir) / f"checkpoint-{self._step}" / BEST_WEIGHTS_FILE)

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Note the step (a checkpoint saved after it is named by it)."""
        self._step = int(state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Write the kept best weights beside the checkpoint just saved (main process only)."""
        path = self._weights_path()
        if path is None or not args.should_save or not Path(path).parent.is_dir():
            return
        import torch

        assert self.best.state is not None  # _weights_path checked it
        torch.save(self.best.state, path)

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
        if state.is_world_process_zero:
            record_best(self.run, self.stopper, self.metric)
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
