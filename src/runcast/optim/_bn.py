"""BatchNorm statistics recomputed at a schedule-free optimizer's evaluation weights ``x``.

A schedule-free optimizer takes gradients at ``y`` but is evaluated at ``x``: the running
BatchNorm statistics gathered during training describe activations at ``y``, and at ``x`` they
are off (the ``schedulefree`` package's README asks users to recompute them; most do not). This
runs a few training batches through the model at ``x`` with BatchNorm in training mode and
momentum ``None`` (an exact average over the batches, not an EMA), leaving every weight,
optimizer mode and module mode as it found it.

Example:
    >>> import torch, schedulefree
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    >>> opt = schedulefree.AdamWScheduleFree(model.parameters(), lr=0.1)
    >>> batches = [torch.randn(32, 3) for _ in range(4)]
    >>> recalibrate_bn(model, batches, opt)
    4
    >>> x = model[0](torch.cat(batches)).detach()  # the stats are those of these batches at x
    >>> bool(torch.allclose(model[1].running_mean, x.mean(0), atol=1e-5))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from runcast.errors import InvalidInputError
from runcast.integrations._schedulefree import eval_mode


def recalibrate_bn(
    model: torch.nn.Module,
    batches: Iterable[Any],
    *optimizers: Any,
    forward: Callable[[torch.nn.Module, Any], Any] | None = None,
    max_batches: int | None = None,
) -> int:
    """Recompute every BatchNorm layer's running statistics at the optimizers' ``x``.

    Args:
        model: the model (its BatchNorm layers are found by type).
        batches: training inputs; a tuple/list batch passes its first element to the model.
        optimizers: schedule-free optimizers whose ``x`` to use (others are ignored, so the
            call also works, at the current weights, with ordinary optimizers).
        forward: ``forward(model, batch)`` when the model needs more than ``model(batch)``.
        max_batches: stop after this many batches.

    Returns the number of batches used (0 when the model has no BatchNorm layer).
    """
    if max_batches is not None and (isinstance(max_batches, bool) or max_batches < 1):
        raise InvalidInputError(f"max_batches must be >= 1 or None, but got {max_batches!r}.")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    was_training = {m: m.training for m in model.modules()}
    momenta = [m.momentum for m in norms]
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
    used = 0
    try:
        with eval_mode(*optimizers), torch.no_grad():
            model.eval()
            for m in norms:
                m.train()
                m.momentum = None  # cumulative average: every batch counts the same
                m.reset_running_stats()
            for batch in batches:
                if max_batches is not None and used >= max_batches:
                    break
                if forward is not None:
                    forward(model, batch)
                else:
                    model(batch[0] if isinstance(batch, (tuple, list)) else batch)
                used += 1
        if used == 0:
            raise InvalidInputError(
                "recalibrate_bn got no batches; pass a few training batches (an iterable of "
                "inputs) to compute the statistics from."
            )
    except BaseException:
        # bad input never loses the statistics the model had
        for m, state in zip(norms, saved, strict=True):
            m.load_state_dict(state)
        raise
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        for mod, training in was_training.items():
            mod.train(training)
    return used
