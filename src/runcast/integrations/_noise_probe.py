"""Feed a :class:`GradientNoiseScale` from the gradients a training step computes anyway.

Two pairs of batch sizes come for free (McCandlish et al. 2018, appendix A):

- gradient accumulation: each micro-batch's gradient (seen by a hook on every parameter as it
  arrives, before it is added into ``.grad``) against the accumulated gradient (``.grad`` at
  the optimizer step). A loss divided by the number of micro-batches, or not, scales both by
  the same factor, which B_simple does not see.
- DDP: this rank's gradient against the all-reduced one, read inside a communication hook that
  does the usual all-reduce (the bucket before and after it).

No extra backward pass, no extra communication, and no ``.item()``: the squared norms are 0-d
tensors summed on the device.
"""

from __future__ import annotations

import warnings
from typing import Any

from runcast.errors import InvalidInputError, RuncastWarning


class _DDPState:
    """What the communication hook adds up between two optimizer steps."""

    def __init__(self, process_group: Any, world: int) -> None:
        self.process_group = process_group
        self.world = world
        self.local: Any = None
        self.glob: Any = None


def _allreduce_with_norms(state: _DDPState, bucket: Any) -> Any:
    """DDP's default all-reduce (mean over ranks), reading the bucket's squared norm before
    (this rank's gradient) and after (the mean over ranks)."""
    import torch.distributed as dist

    buf = bucket.buffer()
    sq = buf.detach().float().square().sum()
    state.local = sq if state.local is None else state.local + sq
    buf.div_(state.world)
    fut = dist.all_reduce(buf, group=state.process_group, async_op=True).get_future()

    def done(f: Any) -> Any:
        out = f.value()[0]
        gsq = out.detach().float().square().sum()
        state.glob = gsq if state.glob is None else state.glob + gsq
        return out

    return fut.then(done)


class NoiseProbe:
    """Squared gradient norms at two batch sizes for each optimizer step.

    Args:
        model: the module (a ``DistributedDataParallel`` one: rank against all-reduce).
        params: its trainable parameters.
        noise_scale: the :class:`~runcast.steer.GradientNoiseScale` to feed.
        batch_size: examples (or tokens) in one micro-batch on one rank.
    """

    def __init__(self, model: Any, params: list[Any], noise_scale: Any, batch_size: float) -> None:
        import torch

        self._torch = torch
        self.noise_scale = noise_scale
        self.batch_size = float(batch_size)
        self._params = params
        self._micro_sq: Any = None
        self._counts = [0] * len(params)
        self._warned = False
        self._ddp: _DDPState | None = None
        self._handles: list[Any] = []
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            import torch.distributed as dist

            group = model.process_group
            self._ddp = _DDPState(group, dist.get_world_size(group))
            # DDP checks a hook's annotations against its own types: a bare lambda has none
            model.register_comm_hook(
                self._ddp, lambda state, bucket: _allreduce_with_norms(state, bucket)
            )
        for i, p in enumerate(params):
            self._handles.append(p.register_hook(self._micro_hook(i)))

    def _micro_hook(self, i: int) -> Any:
        def hook(grad: Any) -> None:
            self._counts[i] += 1
            if self._ddp is not None:
                return  # under DDP only the count of micro-batches is needed
            sq = grad.detach().float().square().sum()
            self._micro_sq = sq if self._micro_sq is None else self._micro_sq + sq

        return hook

    def step(self) -> dict[str, Any]:
        """Feed the pair of the step that just ended; returns ``noise_scale`` and
        ``batch_size`` (the examples behind the step's gradient) for the log."""
        micro = max(self._counts)
        micro_sq, self._micro_sq = self._micro_sq, None
        self._counts = [0] * len(self._params)
        out: dict[str, Any] = {}
        if micro == 0:
            return out
        local = self.batch_size * micro
        if self._ddp is not None:
            state = self._ddp
            small, big = state.local, state.glob
            state.local = state.glob = None
            out["batch_size"] = local * state.world
            if small is None or big is None or state.world < 2:
                return out
            self.noise_scale.update(small, big, local, local * state.world)
        else:
            out["batch_size"] = local
            if micro < 2 or micro_sq is None:
                self._warn_once()
                return out
            grads = [p.grad for p in self._params if p.grad is not None]
            norms = self._torch._foreach_norm([g.detach() for g in grads])
            total_sq = self._torch.stack([n.float().square() for n in norms]).sum()
            # |accumulated grad / micro|^2 and the mean |micro grad|^2 carry the same factor
            self.noise_scale.update(micro_sq / micro, total_sq / micro**2, self.batch_size, local)
        out["noise_scale"] = self.noise_scale.value()
        return out

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                RuncastWarning(
                    "The gradient noise scale needs two batch sizes from one step: accumulate "
                    "gradients over 2+ micro-batches (call record() once per optimizer step, "
                    "after the last backward) or train under DistributedDataParallel. This "
                    "step had one backward pass, so noise_scale is not recorded."
                ),
                stacklevel=4,
            )

    def remove(self) -> None:
        """Remove the parameter hooks (the DDP communication hook stays with the model)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()


def check_batch_size(batch_size: object) -> float:
    """The monitor's ``batch_size`` argument as a float > 0, or an error naming it."""
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, float))
        or not (batch_size > 0)
    ):
        raise InvalidInputError(
            f"batch_size must be the examples (or tokens) in one micro-batch on one rank, > 0, "
            f"but got {batch_size=}. The noise scale needs it to know the two batch sizes."
        )
    return float(batch_size)
