"""Checkpoints that always hold a schedule-free optimizer's ``x``, the weights to evaluate.

In train mode a schedule-free optimizer (ScheduleFree+, or the ``schedulefree`` package's) keeps
``y`` in the model, so ``torch.save(model.state_dict())`` mid-training saves weights nobody
evaluated. :func:`checkpoint` saves the model and optimizers in eval mode (the model holds
``x``), switching back afterwards; :func:`restore` loads such a checkpoint and puts each optimizer
back in the mode it is in now, so training resumes exactly where it stopped.

Example:
    >>> import torch, schedulefree
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = schedulefree.AdamWScheduleFree(model.parameters(), lr=0.1)
    >>> opt.train()
    >>> for _ in range(3):
    ...     opt.zero_grad(); model(torch.ones(4, 2)).sum().backward(); opt.step()
    >>> ckpt = checkpoint(model, opt)
    >>> opt.eval(); x = model.weight.detach().clone(); opt.train()
    >>> bool(torch.equal(ckpt["model"]["weight"], x)), opt.param_groups[0]["train_mode"]
    (True, True)
"""

from __future__ import annotations

import copy
from typing import Any

from runcast.errors import InvalidInputError
from runcast.integrations._schedulefree import eval_mode, in_train_mode, set_mode


def checkpoint(model: Any, *optimizers: Any, **extra: Any) -> dict[str, Any]:
    """A checkpoint dict: ``model`` (at ``x``), ``optimizers`` (their state), and ``extra``.

    The tensors are copies, so training can go on while the checkpoint is written to disk
    (``torch.save(checkpoint(model, opt, step=step), path)``).
    """
    with eval_mode(*optimizers):
        state = {
            "model": copy.deepcopy(model.state_dict()),
            "optimizers": [copy.deepcopy(o.state_dict()) for o in optimizers],
        }
    state.update(extra)
    return state


def restore(state: dict[str, Any], model: Any, *optimizers: Any) -> dict[str, Any]:
    """Load a :func:`checkpoint` into ``model`` and ``optimizers``; returns its extra entries.

    Each optimizer ends in the mode it was in before the call (train mode rebuilds ``y`` from
    the saved ``x`` and ``z``).
    """
    saved = state.get("optimizers") if isinstance(state, dict) else None
    if not isinstance(saved, list) or "model" not in state:
        raise InvalidInputError(
            "This is not a runcast.optim.checkpoint(...) dict (it needs 'model' and "
            "'optimizers'); save it with runcast.optim.checkpoint(model, *optimizers)."
        )
    if len(saved) != len(optimizers):
        raise InvalidInputError(
            f"The checkpoint holds {len(saved)} optimizer state(s) but {len(optimizers)} "
            "optimizer(s) were passed; pass them in the order they were saved."
        )
    modes = [in_train_mode(o) for o in optimizers]
    # the checkpoint was taken in eval mode: load into eval mode, then switch back
    for o in optimizers:
        set_mode(o, train=False)
    model.load_state_dict(state["model"])
    for o, sd in zip(optimizers, saved, strict=True):
        o.load_state_dict(sd)
    for o, mode in zip(optimizers, modes, strict=True):
        if mode:
            set_mode(o, train=True)
    return {k: v for k, v in state.items() if k not in ("model", "optimizers")}
