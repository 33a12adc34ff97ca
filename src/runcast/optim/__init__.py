"""Train without a schedule: optimizers runcast ships and the helpers schedule-free training needs.

- :class:`ScheduleFreePlus`: ScheduleFree+ (Defazio 2026), learning-rate-free and schedule-free
  AdamW; pass each step's loss (``opt.step(loss=loss)``) and log ``opt.metrics()``.
- :func:`recalibrate_bn`: BatchNorm statistics recomputed at a schedule-free optimizer's ``x``.
- :func:`checkpoint` / :func:`restore`: a checkpoint that always holds ``x`` (the weights to
  evaluate), for ScheduleFree+ and the ``schedulefree`` package's optimizers alike.
- :class:`NormProjector`: Normalize-and-Project (Lyle et al. 2024), weights feeding a
  normalisation layer kept at their initial norm so the effective LR is the scheduled one.

Schedule-Free AdamW/SGD themselves come from the ``schedulefree`` package
(``pip install "runcast[schedulefree]"``). Everything here needs torch (``runcast[torch]``) and
imports it on first use.

Example:
    >>> import torch
    >>> from runcast.optim import ScheduleFreePlus
    >>> opt = ScheduleFreePlus(torch.nn.Linear(2, 1).parameters())
    >>> opt.param_groups[0]["lr"]  # a multiplier of the Polyak step, not a learning rate
    1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runcast.optim._bn import recalibrate_bn
    from runcast.optim._checkpoint import checkpoint, restore
    from runcast.optim._nap import NormProjector
    from runcast.optim._sfplus import ScheduleFreePlus

_WHERE = {
    "ScheduleFreePlus": "_sfplus",
    "NormProjector": "_nap",
    "recalibrate_bn": "_bn",
    "checkpoint": "_checkpoint",
    "restore": "_checkpoint",
}

__all__ = ["NormProjector", "ScheduleFreePlus", "checkpoint", "recalibrate_bn", "restore"]


def __getattr__(name: str) -> Any:
    # torch is an extra: import it (and say which extra to install) only when a name is used
    if name in _WHERE:
        import importlib

        from runcast._optional import require

        require("torch", extra="torch", purpose=f"for runcast.optim.{name}")
        return getattr(importlib.import_module(f"runcast.optim.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'runcast.optim' has no attribute {name!r}")
