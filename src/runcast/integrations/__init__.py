"""runcast inside the loops and sweep engines people already use.

Each integration is a module that imports its library lazily (installing the matching extra):

- ``runcast.integrations.torch``: :class:`~runcast.integrations.torch.TrainingMonitor`
  for plain PyTorch loops (loss, LR, grad norm, parameter norm, effective LR);
- ``runcast.integrations.hf``: ``RuncastCallback`` for Hugging Face ``Trainer``;
- ``runcast.integrations.lightning``: ``RuncastCallback`` for Lightning;
- ``runcast.integrations.optuna``: ``ForecastPruner``;
- ``runcast.integrations.ray``: ``ForecastScheduler`` for Ray Tune.

Schedule-free optimizers are switched to eval mode around evaluation and checkpointing by every
integration; :func:`eval_mode` does it in a plain loop.

Every integration records the run's planned LR schedule and length in its config
(``config["runcast_plan"]``); :func:`planned_schedule` reads it back, as the dashboard, the
reports and ``runcast forecast RUN`` do.

Example:
    >>> from runcast.integrations import eval_mode, is_schedule_free
    >>> is_schedule_free(object())
    False
"""

from runcast.integrations._plan import PLAN_KEY, RunPlan, planned_schedule
from runcast.integrations._schedulefree import (
    eval_mode,
    in_train_mode,
    is_schedule_free,
    set_mode,
    unwrap_optimizer,
)

__all__ = [
    "PLAN_KEY",
    "RunPlan",
    "eval_mode",
    "in_train_mode",
    "is_schedule_free",
    "planned_schedule",
    "set_mode",
    "unwrap_optimizer",
]
