"""The torch adapter: drive a torch optimizer with a Schedule, and sample torch schedulers.

``ScheduleLR`` is a torch ``LRScheduler`` whose LR at step ``t`` (after ``t`` calls of
``scheduler.step()``) is exactly ``schedule.array()[t]``. It keeps no hidden state besides the step
count, so ``state_dict()`` / ``load_state_dict()`` resume exactly, and loading refuses a checkpoint
made with another schedule. ``sample_torch`` runs any torch scheduler on a throwaway copy of its
optimizer and records the LR of every step.

torch is imported when this module is, so it is imported only by the methods that need it.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from runcast._optional import require
from runcast.errors import RuncastWarning, ScheduleError

require("torch", extra="torch", purpose="to drive or sample a torch LR scheduler")

import torch  # noqa: E402
from torch.optim import Optimizer  # noqa: E402
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau  # noqa: E402

if TYPE_CHECKING:
    from runcast.schedules._base import Schedule

__all__ = ["ScheduleLR", "planned_lrs", "sample_torch"]


class ScheduleLR(LRScheduler):
    """A torch LR scheduler that follows a runcast :class:`~runcast.Schedule` step by step.

    Call ``scheduler.step()`` once after every ``optimizer.step()``, as with any torch scheduler.

    Param groups: with ``relative=True`` (default) group ``i`` gets ``schedule[t] * lr_i / lr_0``,
    where ``lr_i`` is the group's LR when the scheduler is created: group 0 follows the schedule
    exactly and the others keep their ratio to it (e.g. a 10x smaller LR for embeddings). With
    ``relative=False`` every group gets exactly ``schedule[t]``.

    Past the schedule's planned end a spec schedule holds its final LR; a recorded schedule
    holds its last recorded LR and warns once (record or plan the LR up to the last step).

    Example:
        >>> import torch
        >>> from runcast import Schedule
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = Schedule.from_spec({"kind": "linear", "peak": 1.0, "total": 4}).to_torch(opt)
        >>> lrs = []
        >>> for _ in range(4):
        ...     lrs.append(opt.param_groups[0]["lr"])
        ...     opt.step()
        ...     sched.step()
        >>> lrs
        [1.0, 0.75, 0.5, 0.25]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedule: Schedule,
        *,
        relative: bool = True,
        last_epoch: int = -1,
    ) -> None:
        self.schedule = schedule
        self.relative = bool(relative)
        n = schedule.total
        self._lrs = schedule.array(n if n is not None else 1024)
        self._warned = False
        lr0 = optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
        if self.relative and len(optimizer.param_groups) > 1 and float(lr0) == 0.0:
            raise ScheduleError(
                "relative=True scales each param group by its LR over group 0's, but group 0 has "
                "lr=0. Give group 0 a non-zero LR, or pass relative=False so every group gets "
                "exactly the schedule's LR."
            )
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int) -> float:
        """The schedule's LR at ``step`` (before the per-group scale)."""
        if step < 0:
            raise ScheduleError(f"step must be non-negative, but got {step=}.")
        if step >= self._lrs.size:
            if self.schedule.kind == "recorded":
                if not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"Step {step} is past the recorded schedule's {self._lrs.size} steps; "
                        "holding its last LR. Record (or plan) the LR up to the last step.",
                        RuncastWarning,
                        stacklevel=3,
                    )
                return float(self._lrs[-1])
            self._lrs = self.schedule.array(max(step + 1, 2 * self._lrs.size))
        return float(self._lrs[step])

    def _scales(self) -> list[float]:
        if not self.relative:
            return [1.0] * len(self.base_lrs)
        ref = float(self.base_lrs[0])
        if ref == 0.0:  # a single group with lr=0: the schedule alone sets its LR
            return [1.0] * len(self.base_lrs)
        return [float(b) / ref for b in self.base_lrs]

    def _values(self) -> list[float]:
        lr = self.lr_at(max(self.last_epoch, 0))
        return [lr * s for s in self._scales()]

    def get_lr(self) -> list[float | torch.Tensor]:  # type: ignore[override]
        """The LR of every param group at the current step."""
        return list(self._values())

    def state_dict(self) -> dict[str, Any]:
        """The step count, the groups' base LRs and the schedule's spec (JSON-ready)."""
        return {
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "base_lrs": [float(b) for b in self.base_lrs],
            "_last_lr": [float(v) for v in self._last_lr],
            "relative": self.relative,
            "schedule": self.schedule.to_spec(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume at the saved step; refuses a state saved with a different schedule."""
        from runcast.schedules._base import Schedule

        saved = state_dict.get("schedule")
        if saved is not None and Schedule.from_spec(saved) != self.schedule:
            raise ScheduleError(
                "This scheduler state was saved with a different schedule "
                f"({Schedule.from_spec(saved)!r}) than this one ({self.schedule!r}). Build the "
                "scheduler from the checkpoint's schedule to resume that run."
            )
        for key in ("last_epoch", "_step_count", "base_lrs", "relative"):
            if key in state_dict:
                setattr(self, key, state_dict[key])
        # set the optimizer's LRs too, so resuming is exact even without the optimizer's state
        values = self._values()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = list(values)


def _detached_copy(scheduler: LRScheduler) -> LRScheduler:
    """A deep copy of ``scheduler`` whose optimizer holds tiny stand-in tensors.

    The user's parameters and optimizer state (possibly gigabytes) are not copied: the deepcopy
    memo maps them to stand-ins. The copy's ``step`` wrapper, which torch binds to the original
    optimizer, is removed, so nothing done to the copy reaches the user's objects.
    """
    opt = scheduler.optimizer
    memo: dict[int, Any] = {id(opt.state): defaultdict(dict)}
    for group in opt.param_groups:
        for p in group["params"]:
            memo[id(p)] = torch.zeros(1, requires_grad=True)
    dup = copy.deepcopy(scheduler, memo)
    dup.optimizer.__dict__.pop("step", None)
    return dup


def sample_torch(
    scheduler_or_factory: LRScheduler | Callable[[Optimizer], Any],
    total: int,
    *,
    lr: float = 1.0,
    group: int = 0,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The LR of steps ``0 … total-1`` of a torch scheduler, without touching the user's objects.

    Args:
        scheduler_or_factory: a freshly made torch scheduler (it is copied, never stepped), or a
            function ``optimizer -> scheduler`` that is called with a throwaway SGD optimizer.
        total: how many steps to sample.
        lr: the throwaway optimizer's LR for a factory (1.0 gives the scheduler's multipliers).
        group: which param group's LR to record.
    """
    if isinstance(scheduler_or_factory, ReduceLROnPlateau):
        raise ScheduleError(
            "ReduceLROnPlateau's LR depends on the metric it watches, so it cannot be sampled "
            "ahead of time. Record the LR during training and use Schedule.from_array(lrs)."
        )
    if isinstance(scheduler_or_factory, LRScheduler):
        if scheduler_or_factory.last_epoch != 0:
            raise ScheduleError(
                f"The scheduler has already been stepped (last_epoch="
                f"{scheduler_or_factory.last_epoch}); sampling it would miss the first steps. "
                "Pass a fresh scheduler or a factory, e.g. "
                "Schedule.from_torch(lambda opt: CosineAnnealingLR(opt, T_max=1000), total=1000)."
            )
        sched: Any = _detached_copy(scheduler_or_factory)
    elif callable(scheduler_or_factory):
        throwaway = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)
        sched = scheduler_or_factory(throwaway)
        if not isinstance(sched, LRScheduler) or isinstance(sched, ReduceLROnPlateau):
            raise ScheduleError(
                f"The factory must return a torch LR scheduler built on the optimizer it is "
                f"given, but it returned {type(sched).__name__}."
            )
        if sched.optimizer is not throwaway:
            raise ScheduleError(
                "The factory's scheduler drives another optimizer than the one it was given; "
                "build it on the argument: lambda opt: CosineAnnealingLR(opt, T_max=...)."
            )
    else:
        raise ScheduleError(
            f"Schedule.from_torch needs a torch LR scheduler or a factory optimizer -> scheduler, "
            f"but got {type(scheduler_or_factory).__name__}."
        )
    if total <= 0:
        raise ScheduleError(f"total must be positive, but got {total=}.")
    groups = sched.optimizer.param_groups
    if not 0 <= group < len(groups):
        raise ScheduleError(f"group {group} does not exist; the optimizer has {len(groups)}.")
    out = np.empty(int(total), dtype=np.float64)
    with warnings.catch_warnings():
        # the copy's optimizer is never stepped on purpose; torch would warn about the order
        warnings.simplefilter("ignore", UserWarning)
        for t in range(int(total)):
            out[t] = float(groups[group]["lr"])
            if t + 1 < total:
                sched.step()
    return out


def planned_lrs(scheduler: Any, total: int, *, group: int = 0) -> np.ndarray[Any, Any]:
    """The LR of steps ``0 … total-1`` as ``scheduler`` plans them from its start.

    A fresh scheduler is sampled on a copy (:func:`sample_torch`). One already stepped (a
    trainer resumed from a checkpoint loads the scheduler's state before training starts) is
    read in closed form where its kind has one (``LambdaLR``, what Hugging Face's schedulers
    are); any other stepped scheduler cannot be replayed from its start and raises. Wrappers
    that hold the scheduler as ``.scheduler`` (Accelerate's) are unwrapped.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1 + t))
        >>> opt.step(); sched.step()
        >>> planned_lrs(sched, 3).tolist()
        [1.0, 0.5, 0.3333333333333333]
    """
    from torch.optim.lr_scheduler import LambdaLR

    inner = scheduler
    while not isinstance(inner, LRScheduler) and hasattr(inner, "scheduler"):
        inner = inner.scheduler
    if isinstance(inner, LRScheduler) and inner.last_epoch == 0:
        return sample_torch(inner, total, group=group)
    if isinstance(inner, LambdaLR):
        if total <= 0:
            raise ScheduleError(f"total must be positive, but got {total=}.")
        fn = inner.lr_lambdas[group] if group < len(inner.lr_lambdas) else inner.lr_lambdas[0]
        base = float(inner.base_lrs[group])
        return np.array([base * float(fn(t)) for t in range(int(total))], dtype=np.float64)
    raise ScheduleError(
        f"The {type(inner).__name__} has been stepped {getattr(inner, 'last_epoch', '?')} "
        "times already, so its planned LRs cannot be replayed from step 0; record the plan "
        "before training starts, or pass a runcast Schedule."
    )
