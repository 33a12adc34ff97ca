"""ScheduleFree+'s per-tensor updates: a plain loop (the reference) and a ``foreach`` twin.

Both take the same lists and scalars and must give the same numbers (tested step by step over
200 steps to 1e-6). The step is split in two phases because the Polyak step size needs two
global reductions over *all* parameters (``<g, z - x>`` and ``||g||_1``) before any tensor
moves. The per-tensor sums are stacked and summed in float64 in one fixed order by both paths;
the elementwise updates are the same operations, so the two differ by the rounding of the
reductions only.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Scalars(NamedTuple):
    """One step's scalars, shared by every tensor of a param group."""

    alpha: float  # the Polyak step size times the group's lr multiplier
    decay: float  # alpha**2 * weight_decay (AdamC: decay scaled by the squared step)
    beta1: float
    beta2: float
    bias1: float  # 1 - beta1**t
    bias2: float  # 1 - beta2**t
    eps: float
    c: float  # averaging weight of z into x
    beta: float  # interpolation y = beta * x + (1 - beta) * z


# --- phase 1: the two reductions ---------------------------------------------------------------
def sums_plain(torch: Any, grads: list[Any], zs: list[Any], xs: list[Any]) -> tuple[Any, Any]:
    """Per-tensor ``<g, z - x>`` and ``||g||_1``, as 0-d tensors (reference)."""
    dots, l1s = [], []
    for g, z, x in zip(grads, zs, xs, strict=True):
        dots.append(torch.dot(g.reshape(-1), (z - x).reshape(-1)))
        l1s.append(torch.linalg.vector_norm(g, 1))
    return dots, l1s


def sums_foreach(torch: Any, grads: list[Any], zs: list[Any], xs: list[Any]) -> tuple[Any, Any]:
    """The same sums: one fused subtraction and L1 norm over all tensors, then a dot each.

    ``z - x`` is formed first rather than ``<g, z> - <g, x>``: z and x are close, and the
    difference of two large dot products would lose the digits that the step size (loss plus
    this product, which nearly cancel late in training) is made of.
    """
    diffs = torch._foreach_sub(zs, xs)
    dots = [torch.dot(g.reshape(-1), d.reshape(-1)) for g, d in zip(grads, diffs, strict=True)]
    return dots, list(torch._foreach_norm(grads, 1))


def totals(torch: Any, dots: list[Any], l1s: list[Any]) -> tuple[float, float]:
    """Sum each list of 0-d tensors in float64, in list order, with one host sync (the step
    size is a number the updates need)."""
    if not dots:
        return 0.0, 0.0
    device = dots[0].device
    both = torch.stack([t.to(device) for t in (*dots, *l1s)]).double()
    dot, l1 = both[: len(dots)].sum(), both[len(dots) :].sum()
    values = torch.stack((dot, l1)).tolist()
    return float(values[0]), float(values[1])


# --- phase 2: the updates ----------------------------------------------------------------------
def update_plain(
    torch: Any,
    ps: list[Any],
    grads: list[Any],
    zs: list[Any],
    xs: list[Any],
    ms: list[Any],
    vs: list[Any],
    s: Scalars,
) -> None:
    """z, x, the Adam moments and y (the parameter) for one group, tensor by tensor."""
    for p, g, z, x, m, v in zip(ps, grads, zs, xs, ms, vs, strict=True):
        if s.decay:
            z.add_(p, alpha=-s.decay)  # decay at y, where the gradient was taken
        m.lerp_(g, 1 - s.beta1)
        v.mul_(s.beta2).addcmul_(g, g, value=1 - s.beta2)
        denom = v.sqrt().add_(s.eps * s.bias2**0.5)
        z.addcdiv_(m, denom, value=-s.alpha * s.bias2**0.5 / s.bias1)
        x.lerp_(z, s.c)
        p.copy_(x).lerp_(z, 1 - s.beta)


def update_foreach(
    torch: Any,
    ps: list[Any],
    grads: list[Any],
    zs: list[Any],
    xs: list[Any],
    ms: list[Any],
    vs: list[Any],
    s: Scalars,
) -> None:
    """The same updates with ``torch._foreach_*`` kernels over the whole group (one pass over
    memory per kernel: lerp for the averages, no temporary but Adam's denominator)."""
    if s.decay:
        torch._foreach_add_(zs, ps, alpha=-s.decay)
    torch._foreach_lerp_(ms, grads, 1 - s.beta1)
    torch._foreach_mul_(vs, s.beta2)
    torch._foreach_addcmul_(vs, grads, grads, value=1 - s.beta2)
    # m_hat / (sqrt(v_hat) + eps) with the bias corrections folded into two scalars: one pass
    # over memory less than dividing the denominator
    denom = torch._foreach_sqrt(vs)
    torch._foreach_add_(denom, s.eps * s.bias2**0.5)
    torch._foreach_addcdiv_(zs, ms, denom, value=-s.alpha * s.bias2**0.5 / s.bias1)
    torch._foreach_lerp_(xs, zs, s.c)
    torch._foreach_copy_(ps, xs)
    torch._foreach_lerp_(ps, zs, 1 - s.beta)
