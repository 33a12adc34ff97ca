"""Lightning: record a run, stop it on runcast's decisions (DDP-safe), handle schedule-free.

:class:`RuncastCallback` logs the training loss and LR every step (as 0-d tensors: no device
sync; the tracker converts them in its background writer) and the validation metrics after each
validation, and can stop training:

- ``stop_rule``: a :class:`runcast.steer.StopRule` on the training loss, checked every
  ``check_every`` steps against the budget ``trainer.max_steps`` (or the estimated stepping
  batches);
- ``plateau``: a :class:`runcast.steer.PlateauDetector` on ``plateau_metric`` after validation.

DDP (``strategy="ddp"``, ``"ddp_spawn"``, FSDP, ...): only rank 0 records (one run in the
store) and only rank 0 decides, on its own training loss; ``trainer.strategy.broadcast`` sends
its decision to every rank at the same step, so all stop together and none waits forever in a
collective. ``decisions`` holds the stop decision, with its reason, on every rank, and rank 0
records a ``runcast_stop`` point at that step. If deciding fails (the forecaster raises), the
callback warns and training goes on: rank 0 still reaches the broadcast.

Schedule-free optimizers are put in train mode before every training batch, in eval mode for
validation, and in eval mode for the weights and optimizer state written to every checkpoint
and left at the end of fit.

Example:
    >>> cb = RuncastCallback(project="demo")
    >>> cb.plateau_metric
    'val_loss'
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import numpy as np

from runcast._optional import require
from runcast.errors import RuncastWarning
from runcast.steer._decision import Decision
from runcast.steer._plateau import PlateauDetector
from runcast.steer._stop import StopRule

require("lightning", extra="lightning", purpose="for runcast.integrations.lightning")
from lightning.pytorch import Callback  # noqa: E402  (after require: names the extra)

from runcast.integrations._batch_lightning import BatchSizeWarmupCallback  # noqa: E402, F401
from runcast.integrations._early_lightning import EarlyStopCallback  # noqa: E402, F401
from runcast.integrations._history import history_curve  # noqa: E402
from runcast.integrations._plan import PLAN_KEY, plan_entry  # noqa: E402
from runcast.integrations._run_owner import RunOwner  # noqa: E402
from runcast.integrations._schedulefree import (  # noqa: E402
    eval_mode,
    in_train_mode,
    is_schedule_free,
    set_mode,
)


class RuncastCallback(RunOwner, Callback):  # type: ignore[misc]
    """Record a Lightning run to runcast and stop it on runcast's decisions.

    Args:
        project, name, db, config: passed to :func:`runcast.init` on rank 0 (config is merged
            with the LightningModule's ``hparams``).
        run: an already started :class:`runcast.Run` to log to instead.
        loss_key: the key of the training step's output dict holding the loss.
        stop_rule: stop when it decides the run stopped learning.
        check_every: steps between stop-rule checks.
        plateau: stop when ``plateau_metric`` plateaus.
        plateau_metric: the validation metric (from ``trainer.callback_metrics``).

    ``decisions`` lists every decision that stopped the run, with its reason (on every rank).
    """

    def __init__(
        self,
        *,
        project: str = "lightning",
        name: str | None = None,
        db: str | None = None,
        config: dict[str, Any] | None = None,
        run: Any = None,
        loss_key: str = "loss",
        stop_rule: StopRule | None = None,
        check_every: int = 50,
        plateau: PlateauDetector | None = None,
        plateau_metric: str = "val_loss",
    ) -> None:
        super().__init__(project=project, name=name, db=db, config=config, run=run)
        self.loss_key = loss_key
        self.stop_rule = stop_rule
        self.check_every = max(1, check_every)
        self.plateau = plateau
        self.plateau_metric = plateau_metric
        self._steps: list[int] = []  # rank 0 only, like the two lists below
        self._values: list[float] = []  # the losses already brought to the host
        self._pending: list[Any] = []  # 0-d tensors until a check needs floats
        self._checked_step = -1
        self._warned: set[str] = set()  # what was already warned about, once per callback
        # the metric tensors last recorded, by key: a value Lightning logged anew is a new
        # object (held here, so its id cannot be reused), one left from an epoch is the same
        self._seen: dict[str, Any] = {}
        self._step_keys: set[str] = set()  # keys logged anew by training steps
        self._epoch_keys: set[str] = set()  # keys first logged at an epoch end or validation

    # --- run -----------------------------------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        """Start the runcast run on rank 0 (a new one for each ``fit()``)."""
        if self.release_finished_run():
            self._steps, self._values, self._pending, self._checked_step = [], [], [], -1
        if not trainer.is_global_zero:
            return
        self._seen = {}
        plan = _trainer_plan(trainer)
        if self.run is None:
            self.start_run(self.name, {**dict(getattr(pl_module, "hparams", {}) or {}), **plan})
        else:
            self.record_plan(plan)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        """Leave schedule-free optimizers in eval mode (final weights = x); finish the run."""
        for opt in trainer.optimizers:
            set_mode(opt, train=False)
        self.finish_run()

    # --- training steps ------------------------------------------------------------------------
    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        """Schedule-free optimizers must step in train mode."""
        for opt in trainer.optimizers:
            set_mode(opt, train=True)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Record loss and LR; every ``check_every`` steps, decide on rank 0 and broadcast."""
        step = int(trainer.global_step)
        zero = bool(trainer.is_global_zero)
        loss = outputs.get(self.loss_key) if isinstance(outputs, dict) else outputs
        if isinstance(outputs, dict) and self.loss_key not in outputs:
            # nothing was recorded as the loss and the stop rule never ran, without a word
            self._warn_once(
                "loss_key",
                f"RuncastCallback: training_step's output has no {self.loss_key!r} key (it has "
                f"{', '.join(map(str, outputs))}), so no loss is recorded; set loss_key= to the "
                "key that holds the loss.",
            )
        if loss is not None and hasattr(loss, "detach"):
            loss = loss.detach()
            if self.stop_rule is not None and zero:  # only rank 0 decides: others keep nothing
                self._steps.append(step)
                self._pending.append(loss)
        if self.run is not None and zero:
            row: dict[str, Any] = {}
            if loss is not None:
                row["loss"] = loss
            if trainer.optimizers:
                row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
            row.update(self._fresh_metrics(trainer, epoch=False))
            if row:
                self._log(row, step)
        if self.stop_rule is None or step == 0 or step % self.check_every:
            return
        if step == self._checked_step:
            return  # gradient accumulation: later micro-batches of a checked step
        self._checked_step = step
        decision = self.decide(lambda: self._check_stop(trainer, step), step) if zero else None
        self._apply(trainer, decision)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Record the epoch-level metrics of ``self.log`` (``on_epoch=True``)."""
        if self.run is not None and trainer.is_global_zero:
            row = self._fresh_metrics(trainer)
            if row:
                self._log(row, int(trainer.global_step))

    def _fresh_metrics(self, trainer: Any, epoch: bool = True) -> dict[str, Any]:
        """What ``self.log`` logged since the last call, as 0-d tensors (no device sync here).

        A metric logged both per step and per epoch is also listed under its bare name, a
        copy of one of the two: only ``<name>_step`` and ``<name>_epoch`` are recorded. After a
        training step (``epoch=False``) the metrics first seen at an epoch's end or a
        validation are left out: Lightning hands them over again as new objects.
        """
        metrics = trainer.callback_metrics
        out: dict[str, Any] = {}
        for key, value in metrics.items():
            if value is self._seen.get(key) or key == self.loss_key:
                continue
            self._seen[key] = value
            if epoch and key not in self._step_keys:
                self._epoch_keys.add(key)
            elif not epoch:
                if key in self._epoch_keys or key.endswith("_epoch"):
                    continue
                self._step_keys.add(key)
            if f"{key}_step" in metrics or f"{key}_epoch" in metrics:
                continue
            if hasattr(value, "numel") and value.numel() == 1:
                out[key] = value.detach().reshape(())
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = float(value)
        return out

    def _check_stop(self, trainer: Any, step: int) -> Decision | None:
        import torch

        assert self.stop_rule is not None
        if self._pending:
            # note: one device sync per check (not per step): the buffered losses come to the host
            self._values.extend(torch.stack([v.float().cpu() for v in self._pending]).tolist())
            self._pending = []
        if not self._values:
            return None
        budget = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        if budget is None:
            budget = trainer.estimated_stepping_batches
        if not budget or budget <= 0 or not math.isfinite(budget):
            # an iterable dataset with no length and no max_steps (Lightning says -1 or inf):
            # the stop rule cannot weigh the steps left; it went unchecked without a word
            self._warn_once(
                "budget",
                "RuncastCallback's stop_rule needs the planned number of steps, which Lightning "
                "cannot tell here (no max_steps, and the training data has no length); set "
                "Trainer(max_steps=...).",
            )
            return None
        # gradient accumulation repeats a global step: the last value of each step counts
        return self.stop_rule.decide(history_curve(self._steps, self._values), int(budget))

    def _apply(self, trainer: Any, decision: Decision | None) -> None:
        # every rank calls this at the same point; rank 0's decision wins everywhere
        zero = bool(trainer.is_global_zero)
        if self.share(decision, lambda obj: trainer.strategy.broadcast(obj, src=0), zero):
            trainer.should_stop = True

    # --- validation ----------------------------------------------------------------------------
    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        """Validate with the schedule-free evaluation weights."""
        for opt in trainer.optimizers:
            set_mode(opt, train=False)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Record validation metrics; check the plateau detector (rank 0 decides)."""
        if trainer.sanity_checking:
            return
        step, zero = int(trainer.global_step), bool(trainer.is_global_zero)
        # rank 0 records and decides: only it brings the metrics to the host (a device sync)
        metrics = {
            k: float(v)
            for k, v in (trainer.callback_metrics.items() if zero else ())
            if (hasattr(v, "numel") and v.numel() == 1) or isinstance(v, (int, float))
        }
        vals = self._fresh_metrics(trainer) if zero else {}
        if self.run is None and zero and vals:
            # trainer.validate() without fit(): on_fit_start never came and the metrics were
            # lost; the run is finished when the process exits
            self.start_run(self.name, dict(getattr(pl_module, "hparams", {}) or {}))
        if self.run is not None and zero and vals:
            self._log(vals, step)
        if self.plateau is None:
            return
        decision = None
        if zero and self.plateau_metric in metrics:
            plateau, value = self.plateau, metrics[self.plateau_metric]
            decision = self.decide(lambda: plateau.update(step, value), step)
        self._apply(trainer, decision)  # every rank, even when rank 0 has no such metric

    def _log(self, row: dict[str, Any], step: int) -> None:
        if self.run is None or not self.run.finished:
            self.run.log(row, step=step)
            return
        # trainer.validate() after fit(): its numbers go into the run just trained, at its
        # last step (a run the user gave, and finished, is left alone with a word)
        floats = {k: float(v) for k, v in row.items()}
        if self.append_after_finish(floats, step):
            return
        self._warn_once(
            "finished",
            f"RuncastCallback: {', '.join(sorted(row))} logged after fit() ended are not "
            f"recorded, since run {self.run.id} is finished. To record them, pass "
            "run=runcast.init(...) to the callback and call run.finish() yourself when done.",
        )

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            warnings.warn(message + " (Warned once.)", RuncastWarning, stacklevel=3)

    # --- checkpoints ---------------------------------------------------------------------------
    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        """Write the evaluation weights (and matching optimizer state) of schedule-free optimizers.

        Lightning collects the state dicts before this hook, so a checkpoint taken in train mode
        holds ``y``; the weights and optimizer states are re-collected in eval mode (cloned, since
        switching back to train mode changes the parameters in place).
        """
        sf = [o for o in trainer.optimizers if is_schedule_free(o) and in_train_mode(o)]
        if not sf:
            return
        with eval_mode(*sf):
            checkpoint["state_dict"] = {
                k: v.detach().clone() for k, v in pl_module.state_dict().items()
            }
            if "optimizer_states" in checkpoint:
                checkpoint["optimizer_states"] = [
                    copy.deepcopy(trainer.strategy.optimizer_state(o)) for o in trainer.optimizers
                ]


def _trainer_plan(trainer: Any) -> dict[str, Any]:
    """``{"runcast_plan": ...}``: the configured scheduler of the first optimizer over the
    planned optimizer steps (``max_steps``, else ``estimated_stepping_batches``).

    In Lightning's step numbering: the LR at step ``s`` is the one read after ``s`` optimizer
    steps, as the callback logs it. A scheduler stepping per epoch holds each epoch's LR over
    its steps; no scheduler is a constant LR. Empty when it cannot be known (a plateau
    scheduler, an open-ended run).
    """
    from runcast.errors import RuncastError
    from runcast.schedules._torch import planned_lrs

    total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
    try:
        total = total or trainer.estimated_stepping_batches
    except (RuntimeError, ValueError, TypeError, AttributeError):
        return {}
    if not trainer.optimizers or not total or not math.isfinite(total) or total < 1:
        return {}
    total = int(total)
    opt = trainer.optimizers[0]
    configs = [c for c in trainer.lr_scheduler_configs if c.scheduler.optimizer is opt]
    steps = np.arange(total + 1)
    try:
        if not configs:
            lrs = np.full(total + 1, float(opt.param_groups[0]["lr"]))
            source = f"lightning: constant LR, {total} steps"
        elif configs[0].reduce_on_plateau:
            return {}
        else:
            cfg = configs[0]
            every = max(int(cfg.frequency or 1), 1)
            if cfg.interval == "step":
                at = steps // every
            else:
                epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1
                per_epoch = max(total // epochs, 1)
                at = (np.maximum(steps, 1) - 1) // per_epoch // every
            lrs = planned_lrs(cfg.scheduler, int(at.max()) + 1)[at]
            source = f"lightning: {type(cfg.scheduler).__name__} per {cfg.interval}, {total} steps"
    except (RuncastError, TypeError, ValueError, AttributeError) as err:
        warnings.warn(
            f"RuncastCallback records no planned schedule for this run ({err}); forecasts "
            "will not know the LR to come.",
            RuncastWarning,
            stacklevel=3,
        )
        return {}
    return {PLAN_KEY: plan_entry(lrs, source)}
