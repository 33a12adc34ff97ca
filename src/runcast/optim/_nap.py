"""Normalize-and-Project (Lyle et al. 2024): keep normalised layers' weights at a fixed norm.

A weight whose layer output feeds a normalisation layer is scale-invariant: the loss does not
see its norm, and an update of size ``lr`` turns it by about ``lr / ||W||²``, its effective LR.
Left alone, ``||W||`` grows (or shrinks under weight decay) and the effective LR drifts away
from the schedule. Projecting each such weight back to its norm at the start (or to a given
norm) after every optimizer step fixes ``||W||``, so the effective LR is ``lr / norm²``: the
schedule, times a constant. Which weights count is found on the first forward pass as
:class:`runcast.integrations.torch.TrainingMonitor` finds them: a ``Linear``/``Conv`` layer whose
output tensor *is* a normalisation layer's input.

Use it with ordinary optimizers; a schedule-free optimizer keeps its own copies (``z``, ``x``)
that a projection of the parameters would not reach.

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8),
    ...                             torch.nn.Linear(8, 1))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.5)
    >>> nap = NormProjector(model, optimizer=opt)
    >>> start = model[0].weight.norm().item()
    >>> for _ in range(5):
    ...     opt.zero_grad(); model(torch.randn(16, 4)).pow(2).mean().backward()
    ...     opt.step(); nap.step()
    >>> nap.names, round(model[0].weight.norm().item() / start, 6)
    (['0.weight'], 1.0)
    >>> round(nap.metrics()["nap/eff_lr/0.weight"] * start**2, 6)  # lr / ||W||²
    0.5
"""

from __future__ import annotations

from typing import Any

import torch

from runcast.errors import InvalidInputError
from runcast.integrations.torch import _WEIGHTED, _is_norm


class NormProjector:
    """Project weights feeding a normalisation layer back to a fixed norm after each step.

    Args:
        model: the ``torch.nn.Module`` being trained.
        optimizer: its optimizer, for the per-layer effective LR in :meth:`metrics` (optional).
        norm: project every weight to this norm instead of its norm at the start.
        weights: the parameters to project (default: found on the first forward pass).

    Call :meth:`step` right after ``optimizer.step()``.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any = None,
        *,
        norm: float | None = None,
        weights: list[Any] | None = None,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise InvalidInputError(
                f"model must be a torch.nn.Module, but got {type(model).__name__}."
            )
        if norm is not None and not (isinstance(norm, (int, float)) and 0 < norm < float("inf")):
            raise InvalidInputError(f"norm must be a positive finite number, but got {norm!r}.")
        self.model = model
        self.optimizer = optimizer
        self._names = {id(p): n for n, p in model.named_parameters()}
        # the norm at the start of every candidate, before any optimizer step can move it
        candidates = weights if weights is not None else _candidates(model)
        self._start = {id(p): float(p.detach().norm()) for p in candidates}
        self._fixed = None if norm is None else float(norm)
        self._handles: list[Any] = []
        self._outputs: dict[int, Any] = {}
        self._found: list[Any] = []
        self._weights: list[Any] | None = list(weights) if weights is not None else None
        if self._weights is None:
            for mod in model.modules():
                if type(mod).__name__ in _WEIGHTED and getattr(mod, "weight", None) is not None:
                    self._handles.append(mod.register_forward_hook(self._remember))
                elif _is_norm(mod):
                    self._handles.append(mod.register_forward_pre_hook(self._check))
        self._targets: list[float] = []

    def _remember(self, mod: Any, args: Any, out: Any) -> None:
        self._outputs[id(out)] = (out, mod.weight)

    def _check(self, mod: Any, args: tuple[Any, ...]) -> None:
        if args and id(args[0]) in self._outputs:
            out, weight = self._outputs[id(args[0])]
            if out is args[0] and all(weight is not w for w in self._found):
                self._found.append(weight)

    def _ready(self) -> list[Any]:
        if self._weights is None:
            if not self._outputs and not self._found:
                raise InvalidInputError(
                    "NormProjector.step() was called before the model's first forward pass, so "
                    "it does not know which weights feed a normalisation layer. Call it after "
                    "optimizer.step(), or pass weights=[...]."
                )
            for h in self._handles:
                h.remove()
            self._handles.clear()
            self._outputs.clear()
            self._weights = self._found
        if len(self._targets) != len(self._weights):
            self._targets = [
                self._fixed if self._fixed is not None else self._start[id(p)]
                for p in self._weights
            ]
        return self._weights

    @property
    def names(self) -> list[str]:
        """Names of the projected weights (after the first forward pass)."""
        return [self._names.get(id(p), "?") for p in self._ready()]

    @torch.no_grad()
    def step(self) -> None:
        """Project every weight back to its target norm (call after ``optimizer.step()``)."""
        weights = self._ready()
        if not weights:
            return
        norms = torch._foreach_norm([p.detach() for p in weights])
        # a weight at norm 0 has no direction to keep: leave it (its target is 0 too)
        scales = [
            (t / n.clamp_min(1e-30)).to(p.dtype)
            for t, n, p in zip(self._targets, norms, weights, strict=True)
        ]
        torch._foreach_mul_(weights, scales)

    def metrics(self) -> dict[str, float]:
        """``nap/eff_lr/<name>``: each weight's effective LR, ``lr / norm²`` (needs optimizer)."""
        if self.optimizer is None:
            return {}
        weights = self._ready()
        lr_of = {id(p): float(g["lr"]) for g in self.optimizer.param_groups for p in g["params"]}
        out = {}
        for p, target in zip(weights, self._targets, strict=True):
            if target > 0 and id(p) in lr_of:
                out[f"nap/eff_lr/{self._names.get(id(p), '?')}"] = lr_of[id(p)] / target**2
        return out

    def state_dict(self) -> dict[str, Any]:
        """The projected weights' names and target norms."""
        return {"targets": dict(zip(self.names, self._targets, strict=True))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the target norms saved by :meth:`state_dict` (matched by name)."""
        by_name = {n: p for n, p in self.model.named_parameters()}
        targets = state.get("targets")
        if not isinstance(targets, dict) or any(n not in by_name for n in targets):
            raise InvalidInputError(
                "This NormProjector state names weights the model does not have; load the state "
                "saved for this model."
            )
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._weights = [by_name[n] for n in targets]
        self._targets = [float(v) for v in targets.values()]


def _candidates(model: Any) -> list[Any]:
    return [
        mod.weight
        for mod in model.modules()
        if type(mod).__name__ in _WEIGHTED and getattr(mod, "weight", None) is not None
    ]
