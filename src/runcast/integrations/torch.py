"""Plain PyTorch: record loss, LR, gradient norm, parameter norm and effective LR every step.

:class:`TrainingMonitor` is cheap enough to call every step: norms are computed on the device
with ``torch._foreach_norm`` (one kernel per dtype/device group, not one per tensor), results stay
0-d tensors, and nothing calls ``.item()``. The tracker (``runcast.init``) keeps tensors as they
are and converts them to floats in its background writer at flush time, so the training thread
never waits for the device.

The effective LR. A weight matrix whose output goes straight into a normalisation layer
(LayerNorm, RMSNorm, BatchNorm, GroupNorm, InstanceNorm) is scale-invariant: scaling it does not
change the loss, so its gradient shrinks as ``1/||W||`` and an update of size ``lr`` moves its
direction by about ``lr / ||W||²`` (van Laarhoven 2017; Wan et al. 2021). That is its effective
LR, and with weight decay it settles to an equilibrium that a raw LR plot does not show. Which
weights count is decided from the first forward pass, not from names or registration order: a
``Linear``/``Conv`` layer counts when its output tensor is *the very tensor* a normalisation layer
receives as input. ``eff_lr`` is the mean of ``lr / ||W||²`` over those weights (absent when
there are none; a weight still at norm 0 is left out, and NaN when all are); pass
``scale_invariant=[...]`` to choose the weights yourself.

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8),
    ...                             torch.nn.Linear(8, 1))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> mon = TrainingMonitor(model, opt)
    >>> loss = model(torch.randn(16, 4)).pow(2).mean()
    >>> loss.backward()
    >>> m = mon.record(0, loss)
    >>> sorted(m), mon.scale_invariant_names
    (['eff_lr', 'grad_norm', 'loss', 'lr', 'param_norm'], ['0.weight'])
"""

from __future__ import annotations

from typing import Any

from runcast._optional import require
from runcast.errors import InvalidInputError
from runcast.integrations._early_torch import BestWeights, EarlyStopping  # noqa: F401

_NORMS = (
    "LayerNorm",
    "RMSNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "SyncBatchNorm",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LlamaRMSNorm",
)
_WEIGHTED = ("Linear", "Conv1d", "Conv2d", "Conv3d", "Conv1D")


def _is_norm(mod: Any) -> bool:
    return type(mod).__name__ in _NORMS or type(mod).__name__.endswith("RMSNorm")


class TrainingMonitor:
    """Per-step training signals for a plain PyTorch loop, as 0-d tensors.

    Args:
        model: the ``torch.nn.Module`` being trained.
        optimizer: its optimizer (the LR of its first param group is recorded as ``lr``).
        run: a :class:`runcast.Run`; when given, :meth:`record` also logs to it.
        every: record on every ``every``-th call only (returns ``{}`` otherwise).
        scale_invariant: the parameters whose effective LR to track; default: found from the
            first forward pass (see the module doc).
        noise_scale: a :class:`runcast.steer.GradientNoiseScale` to feed each optimizer step,
            logged as ``noise_scale`` (with ``batch_size``): micro-batch against accumulated
            gradient, or under ``DistributedDataParallel`` this rank's gradient against the
            all-reduced one (a communication hook; no extra backward or communication). Call
            :meth:`record` once per optimizer step, after the last backward, before clipping.
        batch_size: examples (or tokens) in one micro-batch on one rank; needed with
            ``noise_scale``.
        schedule: the planned LR schedule, recorded in the run (``config["runcast_plan"]``)
            so forecasts know the LR to come: a :class:`runcast.Schedule`, or the torch
            scheduler driving ``optimizer`` (sampled on a copy, before its first step).
        total_steps: the planned number of steps (the last step is ``total_steps - 1``);
            needed with a torch scheduler or a schedule without a ``total``.

    Call :meth:`record` after ``loss.backward()`` and before ``optimizer.zero_grad()``, and
    before clipping the gradients (or pass the norm ``clip_grad_norm_`` returns as
    ``grad_norm``): a clipped norm hides the very spike it should show.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        run: Any = None,
        *,
        every: int = 1,
        scale_invariant: list[Any] | None = None,
        noise_scale: Any = None,
        batch_size: float | None = None,
        schedule: Any = None,
        total_steps: int | None = None,
    ) -> None:
        self._torch = require("torch", extra="torch", purpose="for TrainingMonitor")
        if every < 1:
            raise InvalidInputError(f"every must be >= 1, but got {every=}.")
        self.plan = _plan(schedule, total_steps)
        if self.plan and run is not None:
            from runcast.integrations._plan import config_update

            config_update(run, self.plan)
        self.model = model
        self.optimizer = optimizer
        self.run = run
        self.every = every
        self._calls = 0
        self._params = [p for p in model.parameters() if p.requires_grad]
        if not self._params:
            raise InvalidInputError(
                f"{type(model).__name__} has no trainable parameters (every requires_grad is "
                "False): there is no training to monitor. Unfreeze what you train, or pass the "
                "model that owns it."
            )
        names = {id(p): n for n, p in model.named_parameters()}
        self._names = names
        self._handles: list[Any] = []
        self._outputs: dict[int, Any] = {}
        self._found: list[Any] = []
        self._traced = scale_invariant is not None
        self._scale_invariant: list[Any] = list(scale_invariant or [])
        # the LR of each scale-invariant weight: which param group holds it
        self._group_of: dict[int, int] = {}
        for gi, group in enumerate(optimizer.param_groups):
            for p in group["params"]:
                self._group_of[id(p)] = gi
        if not self._traced:
            self._install_trace()
        self._noise: Any = None
        if noise_scale is not None:
            from runcast.integrations._noise_probe import NoiseProbe, check_batch_size

            size = check_batch_size(batch_size)
            self._noise = NoiseProbe(model, self._params, noise_scale, size)

    # --- finding scale-invariant weights on the first forward ---------------------------------
    def _install_trace(self) -> None:
        for mod in self.model.modules():
            kind = type(mod).__name__
            if kind in _WEIGHTED and getattr(mod, "weight", None) is not None:
                self._handles.append(mod.register_forward_hook(self._remember_output))
            elif _is_norm(mod):
                self._handles.append(mod.register_forward_pre_hook(self._check_input))

    def _remember_output(self, mod: Any, args: Any, out: Any) -> None:
        # keep the tensor object itself: identity is only meaningful while it is alive
        self._outputs[id(out)] = (out, mod.weight)

    def _check_input(self, mod: Any, args: tuple[Any, ...]) -> None:
        if args and id(args[0]) in self._outputs:
            out, weight = self._outputs[id(args[0])]
            if out is args[0] and all(weight is not w for w in self._found):
                self._found.append(weight)

    def _finish_trace(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._outputs.clear()
        self._scale_invariant = self._found
        self._traced = True

    @property
    def scale_invariant_names(self) -> list[str]:
        """Names of the weights whose effective LR is tracked."""
        if not self._traced:
            self._finish_trace()
        return [self._names.get(id(p), "?") for p in self._scale_invariant]

    # --- per step ------------------------------------------------------------------------------
    def record(self, step: int, loss: Any = None, *, grad_norm: Any = None) -> dict[str, Any]:
        """The step's signals as 0-d tensors (and logged to ``run`` if one was given).

        Keys: ``loss`` (if given), ``lr``, ``grad_norm`` (the global L2 norm of all gradients,
        or the ``grad_norm`` given: pass what ``clip_grad_norm_`` returned, the norm before
        clipping, when you record after clipping), ``param_norm`` (of all trainable
        parameters), ``eff_lr`` (see the module doc).
        """
        if not self._traced:
            self._finish_trace()
        self._calls += 1
        # the noise probe sums every step's norms, whether or not this call is recorded
        noise = self._noise.step() if self._noise is not None else {}
        if (self._calls - 1) % self.every:
            return {}
        torch = self._torch
        out: dict[str, Any] = {}
        with torch.no_grad():
            if loss is not None:
                out["loss"] = loss.detach() if hasattr(loss, "detach") else _number(loss)
            groups = self.optimizer.param_groups
            out["lr"] = float(groups[0]["lr"])
            grads = [p.grad for p in self._params if p.grad is not None]
            if grad_norm is not None:
                given = grad_norm.detach() if hasattr(grad_norm, "detach") else grad_norm
                out["grad_norm"] = given if hasattr(given, "detach") else _number(given)
            elif grads:
                out["grad_norm"] = _global_norm(torch, grads)
            out["param_norm"] = _global_norm(torch, self._params)
            if self._scale_invariant:
                norms = torch._foreach_norm([p.detach() for p in self._scale_invariant])
                lrs = [
                    float(groups[self._group_of.get(id(p), 0)]["lr"]) for p in self._scale_invariant
                ]
                eff = [lr / n.float().square() for lr, n in zip(lrs, norms, strict=True)]
                eff_all = torch.stack([e.to(eff[0].device) for e in eff])
                # a weight at norm 0 (zero-initialised) has no effective LR yet: leave it out
                # of the mean rather than log inf; all of them at 0 gives NaN (nanmean)
                out["eff_lr"] = torch.nanmean(torch.where(torch.isinf(eff_all), torch.nan, eff_all))
        out.update(noise)
        if self.run is not None:
            self.run.log(out, step=step)
        return out


def _plan(schedule: Any, total_steps: int | None) -> dict[str, Any]:
    """``{"runcast_plan": ...}`` of a Schedule or a torch scheduler (empty for None)."""
    if schedule is None:
        return {}
    from runcast.integrations._plan import PLAN_KEY, plan_entry
    from runcast.schedules import Schedule

    if total_steps is not None and (not isinstance(total_steps, int) or total_steps < 2):
        raise InvalidInputError(f"total_steps must be an int >= 2, but got {total_steps!r}.")
    if isinstance(schedule, Schedule):
        total = total_steps if total_steps is not None else schedule.total
        if total is None:
            raise InvalidInputError(
                f"The {schedule.kind!r} schedule has no 'total'; pass total_steps=N so the "
                "run's planned end is known."
            )
        return {PLAN_KEY: plan_entry(schedule.array(total), f"Schedule {schedule.kind}")}
    if total_steps is None:
        raise InvalidInputError(
            f"A torch scheduler ({type(schedule).__name__}) does not say how long the run is; "
            "pass total_steps=N (the number of optimizer steps planned)."
        )
    from runcast.schedules._torch import planned_lrs

    lrs = planned_lrs(schedule, total_steps)
    return {PLAN_KEY: plan_entry(lrs, f"torch {type(schedule).__name__}")}


def _number(value: Any) -> float:
    """A loss given as a plain number, or a clear error naming what it was."""
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"loss must be a tensor or a number, but got {type(value).__name__} {value!r:.60}."
        ) from err


def _global_norm(torch: Any, tensors: list[Any]) -> Any:
    """The L2 norm of all ``tensors`` together, on the device (no sync)."""
    norms = torch._foreach_norm([t.detach() for t in tensors])
    device = norms[0].device
    return torch.linalg.vector_norm(torch.stack([n.float().to(device) for n in norms]))
