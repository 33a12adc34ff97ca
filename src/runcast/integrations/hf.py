"""Hugging Face ``transformers``: record a Trainer run and stop it when runcast says so.

:class:`RuncastCallback` records everything the Trainer logs (``loss``, ``learning_rate`` as
``lr``, ``grad_norm``, ``eval_*``) into a runcast store at the Trainer's global step, and can
stop training through ``control.should_training_stop``:

- ``stop_rule``: a :class:`runcast.steer.StopRule` on ``stop_metric`` (default the training
  ``loss``), checked every ``check_every`` logs against the budget ``state.max_steps``;
- ``plateau``: a :class:`runcast.steer.PlateauDetector` on ``plateau_metric`` at each evaluation.

Multi-GPU (``torchrun``, ``accelerate launch``): only the main process writes to the store (one
run) and only it decides, on the numbers the Trainer logs (already gathered across processes);
its decision is broadcast over ``torch.distributed`` at the same log on every process, so all
stop at the same step and none waits forever in a collective. ``decisions`` holds the stop
decision, with its reason, on every process, and the main process records a ``runcast_stop``
point at that step. The Trainer logs its own metrics on every process; a ``stop_metric`` that
only the main process logs would leave the others out of the broadcast. If deciding fails (the
forecaster raises), the callback warns and training goes on.

Schedule-free optimizers: the Trainer already switches them to eval mode to evaluate and back to
train mode to step, but it saves checkpoints in whatever mode it is in. The callback switches to
eval mode before a checkpoint is written and at the end of training, so saved and final weights
are the evaluation weights ``x``, not the gradient point ``y``.

Example:
    >>> cb = RuncastCallback(project="demo", db=":memory:")
    >>> cb.stop_metric, cb.plateau_metric
    ('loss', 'eval_loss')
"""

from __future__ import annotations

import logging
import numbers
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from runcast._optional import require
from runcast.errors import RuncastWarning
from runcast.steer._decision import Decision
from runcast.steer._plateau import PlateauDetector
from runcast.steer._stop import StopRule

require("transformers", extra="hf", purpose="for runcast.integrations.hf")
from transformers import TrainerCallback  # noqa: E402  (after require: names the extra)

from runcast.integrations._batch_hf import BatchSizeWarmupCallback  # noqa: E402, F401
from runcast.integrations._early_hf import EarlyStopCallback  # noqa: E402, F401
from runcast.integrations._history import history_curve  # noqa: E402
from runcast.integrations._plan import PLAN_KEY, plan_entry  # noqa: E402
from runcast.integrations._run_owner import RunOwner, torch_broadcast  # noqa: E402
from runcast.integrations._schedulefree import in_train_mode, set_mode  # noqa: E402

if TYPE_CHECKING:
    from runcast.curve import Curve

_RENAME = {"learning_rate": "lr"}
_log = logging.getLogger("runcast.integrations.hf")


class RuncastCallback(RunOwner, TrainerCallback):  # type: ignore[misc]
    """Record a ``transformers.Trainer`` run to runcast, and stop it on runcast's decisions.

    Args:
        project, name, db, config: passed to :func:`runcast.init` (name defaults to
            ``args.run_name``; config is merged with the TrainingArguments).
        run: an already started :class:`runcast.Run` to log to instead.
        stop_rule: stop when it decides the run stopped learning (see module doc).
        stop_metric: the logged metric the stop rule forecasts.
        check_every: logs between stop-rule checks (a forecast costs milliseconds).
        plateau: stop when the evaluation metric plateaus.
        plateau_metric: the evaluation metric the plateau detector watches.

    ``decisions`` lists every decision that stopped the run, with its reason (on every process).
    """

    def __init__(
        self,
        *,
        project: str = "huggingface",
        name: str | None = None,
        db: str | None = None,
        config: dict[str, Any] | None = None,
        run: Any = None,
        stop_rule: StopRule | None = None,
        stop_metric: str = "loss",
        check_every: int = 10,
        plateau: PlateauDetector | None = None,
        plateau_metric: str = "eval_loss",
    ) -> None:
        super().__init__(project=project, name=name, db=db, config=config, run=run)
        self.stop_rule = stop_rule
        self.stop_metric = stop_metric
        self.check_every = max(1, check_every)
        self.plateau = plateau
        self.plateau_metric = plateau_metric
        self._steps: list[int] = []
        self._values: list[float] = []
        self._logs_seen = 0
        self._warned_finished = False

    # --- recording -----------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Start the runcast run on the main process (a new one for each ``train()``)."""
        if self.release_finished_run():
            self._steps, self._values, self._logs_seen = [], [], 0
        if not state.is_world_process_zero:
            return
        plan = _trainer_plan(args, state, kwargs.get("lr_scheduler"))
        if self.run is None:
            self.start_run(self.name or args.run_name, {**args.to_sanitized_dict(), **plan})
        else:
            self.record_plan(plan)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        """Record the logged numbers; check the stop rule every ``check_every`` logs."""
        logs = logs or {}
        # numpy scalars and 0-d tensors count too: trainer.log({"acc": np.float32(0.9)}) was
        # dropped without a word
        found = {_RENAME.get(k, k): _number(v) for k, v in logs.items()}
        values = {k: v for k, v in found.items() if v is not None}
        step = int(state.global_step)
        if self.run is None and state.is_world_process_zero and values:
            # trainer.evaluate() without train(): on_train_begin never came, and the eval
            # metrics were lost; the run is finished when the process exits
            self.start_run(self.name or args.run_name, args.to_sanitized_dict())
        if self.run is not None and self.run.finished and values:
            # trainer.evaluate() after train(): its numbers go into the run just trained, at its
            # last step (a run given by the user and finished by them is left alone, with a word)
            if not (state.is_world_process_zero and self.append_after_finish(values, step)):
                self._warn_after_finish(values)
        elif self.run is not None and state.is_world_process_zero and values:
            self.run.log(values, step=step)
        value = _number(logs.get(self.stop_metric))
        if self.stop_rule is None or value is None:
            return
        zero = bool(state.is_world_process_zero)
        if zero:  # only the main process decides: the others keep nothing
            self._steps.append(int(state.global_step))
            self._values.append(value)
        self._logs_seen += 1
        if self._logs_seen % self.check_every or not state.max_steps or state.max_steps < 1:
            return
        rule, budget = self.stop_rule, int(state.max_steps)
        decision = None
        if zero:
            decision = self.decide(lambda: rule.decide(self._curve(), budget), state.global_step)
        self._act(decision, control, zero)

    def _warn_after_finish(self, values: dict[str, float]) -> None:
        if self._warned_finished:
            return
        self._warned_finished = True
        warnings.warn(
            f"RuncastCallback: {', '.join(sorted(values))} logged after train() ended are not "
            f"recorded, since run {self.run.id} is finished. To record evaluations after "
            "training, pass run=runcast.init(...) to the callback and call run.finish() "
            "yourself when done. (Warned once.)",
            RuncastWarning,
            stacklevel=3,
        )

    def _curve(self) -> Curve:
        return history_curve(self._steps, self._values)

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, float] | None = None,
        **kw: Any,
    ) -> None:
        """Check the plateau detector on the evaluation metric (the main process decides)."""
        if self.plateau is None or not metrics or self.plateau_metric not in metrics:
            return
        zero, step = bool(state.is_world_process_zero), int(state.global_step)
        plateau, value = self.plateau, metrics[self.plateau_metric]
        decision = self.decide(lambda: plateau.update(step, value), step) if zero else None
        self._act(decision, control, zero)

    def _act(self, decision: Decision | None, control: Any, zero: bool) -> None:
        # every process gets here at the same log; the main process's decision wins everywhere
        if self.share(decision, torch_broadcast, zero):
            control.should_training_stop = True

    # --- schedule-free -------------------------------------------------------------------------
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Before a checkpoint is written this step, put a schedule-free optimizer in eval mode.

        The Trainer's next training step switches it back to train mode itself.
        """
        optimizer = kwargs.get("optimizer")
        if control.should_save and optimizer is not None and in_train_mode(optimizer):
            set_mode(optimizer, train=False)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """The same for checkpoints saved at the end of an epoch (``save_strategy="epoch"``)."""
        self.on_step_end(args, state, control, **kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Leave the final weights as the evaluation weights; finish the run we started."""
        optimizer = kwargs.get("optimizer")
        if optimizer is not None:
            set_mode(optimizer, train=False)
        if self.stop_rule is not None and state.is_world_process_zero and not self._steps:
            # a stop_metric the Trainer never logs (a typo, 'eval_loss' without evaluation)
            # left the stop rule unchecked the whole run without a word
            warnings.warn(
                f"RuncastCallback's stop_rule was never checked: no log had {self.stop_metric!r}"
                " as a number; set stop_metric= to a metric the Trainer logs (e.g. 'loss').",
                RuncastWarning,
                stacklevel=2,
            )
        self.finish_run()


def _trainer_plan(args: Any, state: Any, lr_scheduler: Any) -> dict[str, Any]:
    """``{"runcast_plan": ...}``: the Trainer's own scheduler sampled over its ``max_steps``.

    In the Trainer's step numbering: the LR at step ``s`` is the one it logs at global step
    ``s``, the LR that step ``s`` trained with (after ``s - 1`` scheduler steps), so the plan
    covers steps 0 to ``max_steps``. Empty when it cannot be known (no scheduler, an
    open-ended run, a plateau scheduler).
    """
    max_steps = int(getattr(state, "max_steps", 0) or 0)
    if lr_scheduler is None or max_steps < 1:
        return {}
    from runcast.errors import RuncastError
    from runcast.schedules._torch import planned_lrs

    try:
        sampled = planned_lrs(lr_scheduler, max_steps)
    except (RuncastError, TypeError, ValueError, AttributeError) as err:
        _log.info("runcast records no planned schedule for this Trainer run: %s", err)
        return {}
    kind = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    warmup = args.get_warmup_steps(max_steps) if hasattr(args, "get_warmup_steps") else "?"
    source = f"transformers Trainer: {kind}, warmup {warmup}, max_steps {max_steps}"
    # step 0 (before any update) is given the first step's LR
    return {PLAN_KEY: plan_entry(np.concatenate([sampled[:1], sampled]), source)}


def _number(v: Any) -> float | None:
    """``v`` as a float when it is one number (Python, numpy or a 1-element tensor), else None.

    Example:
        >>> import numpy as np
        >>> _number(np.float32(0.5)), _number(True), _number("x"), _number(np.array([1.0, 2.0]))
        (0.5, None, None, None)
    """
    if isinstance(v, bool):
        return None  # a flag, not a measurement
    if isinstance(v, numbers.Real):
        return float(v)
    size = getattr(v, "size", None)
    if callable(size):  # torch: size() is the shape, numel() the count
        size = v.numel() if hasattr(v, "numel") else None
    if size == 1 and hasattr(v, "item"):
        item = v.item()
        if isinstance(item, numbers.Real) and not isinstance(item, bool):
            return float(item)
    return None
