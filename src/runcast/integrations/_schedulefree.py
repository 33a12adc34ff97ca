"""Schedule-free optimizers (the ``schedulefree`` package) switched to the right mode.

A schedule-free optimizer (Defazio et al. 2024) keeps two points: ``y``, where gradients are
taken (train mode), and the averaged ``x``, the weights to evaluate and save (eval mode). Its
``.train()``/``.eval()`` move the model's parameters between the two. Evaluating or saving in
train mode silently uses the wrong weights; stepping in eval mode raises "not in train mode".
Every runcast integration switches to eval around evaluation and checkpointing and back to train
before the next step; :func:`eval_mode` does the same for a plain loop.

Detection is duck-typed, so any optimizer following the protocol works (and wrappers such as
Accelerate's ``AcceleratedOptimizer`` or Lightning's ``LightningOptimizer`` are unwrapped): it
has callable ``train``/``eval`` and a ``"train_mode"`` flag in its param groups.

Example:
    >>> import torch
    >>> sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> is_schedule_free(sgd)
    False
    >>> with eval_mode(sgd):  # a no-op for ordinary optimizers
    ...     pass
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def unwrap_optimizer(optimizer: Any) -> Any:
    """The innermost optimizer behind wrappers (``.optimizer`` / ``._optimizer`` chains).

    Example:
        >>> import torch
        >>> sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> class Wrapper:
        ...     def __init__(self, o): self.optimizer = o
        >>> unwrap_optimizer(Wrapper(sgd)) is sgd
        True
    """
    seen = 0
    while seen < 8:  # wrappers nest a few levels at most; a cap avoids cycles
        inner = getattr(optimizer, "optimizer", None) or getattr(optimizer, "_optimizer", None)
        if inner is None or inner is optimizer or not hasattr(inner, "param_groups"):
            break
        optimizer, seen = inner, seen + 1
    return optimizer


def is_schedule_free(optimizer: Any) -> bool:
    """True if ``optimizer`` (or the one it wraps) is a schedule-free optimizer.

    Example:
        >>> import torch, schedulefree
        >>> p = torch.zeros(2, requires_grad=True)
        >>> is_schedule_free(schedulefree.AdamWScheduleFree([p], lr=1e-3))
        True
    """
    opt = unwrap_optimizer(optimizer)
    groups = getattr(opt, "param_groups", None) or []
    return (
        callable(getattr(opt, "train", None))
        and callable(getattr(opt, "eval", None))
        and bool(groups)
        and all("train_mode" in g for g in groups)
    )


def in_train_mode(optimizer: Any) -> bool | None:
    """True/False for a schedule-free optimizer's mode; None for any other optimizer.

    Example:
        >>> import torch, schedulefree
        >>> opt = schedulefree.AdamWScheduleFree([torch.zeros(2, requires_grad=True)])
        >>> in_train_mode(opt)  # schedule-free optimizers start in eval mode
        False
    """
    if not is_schedule_free(optimizer):
        return None
    return bool(unwrap_optimizer(optimizer).param_groups[0]["train_mode"])


def set_mode(optimizer: Any, train: bool) -> bool | None:
    """Put a schedule-free optimizer in train or eval mode; return the mode it was in.

    Returns None (and does nothing) for other optimizers.

    Example:
        >>> import torch, schedulefree
        >>> opt = schedulefree.AdamWScheduleFree([torch.zeros(2, requires_grad=True)])
        >>> set_mode(opt, train=True), in_train_mode(opt)
        (False, True)
    """
    was = in_train_mode(optimizer)
    if was is None or was == train:
        return was
    opt = unwrap_optimizer(optimizer)
    opt.train() if train else opt.eval()
    return was


@contextmanager
def eval_mode(*optimizers: Any) -> Iterator[None]:
    """Evaluate or save with the schedule-free optimizers' evaluation weights, then switch back.

    Inside the block every schedule-free optimizer is in eval mode (the model holds ``x``);
    afterwards each returns to the mode it was in. Other optimizers are left alone, so the same
    loop works with any optimizer.

    Example:
        >>> import torch, schedulefree
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = schedulefree.AdamWScheduleFree([w], lr=0.1)
        >>> opt.train()
        >>> for _ in range(3):  # after one step x and y still coincide
        ...     w.grad = torch.ones(3); opt.step()
        >>> with eval_mode(opt):
        ...     x = w.detach().clone()      # the weights to evaluate and save
        >>> in_train_mode(opt), bool(torch.equal(x, w.detach()))
        (True, False)
    """
    previous = [set_mode(o, train=False) for o in optimizers]
    try:
        yield
    finally:
        for o, was in zip(optimizers, previous, strict=True):
            if was:
                set_mode(o, train=True)
