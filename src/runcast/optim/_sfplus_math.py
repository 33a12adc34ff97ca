"""ScheduleFree+'s per-tensor updates: a plain loop (the reference) and a ``foreach`` twin.

Both take the same lists and scalars and must give the same numbers (tested step by step over
200 steps). The step is split in two phases because the Polyak step size needs two global
reductions over *all* parameters (``<g, z - x>`` and ``||g||_1``) before any tensor moves.
The per-tensor sums are stacked and summed in float64 in one fixed order by both paths, so the
two agree to rounding of the elementwise kernels only.
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
    """Per-tensor ``sum(g * (z - x))`` and ``sum(|g|)``, as 0-d tensors (reference)."""
    dots, l1s = [], []
    for g, z, x in zip(grads, zs, xs, strict=True):
        dots.append((g * (z - x)).sum())
        l1s.append(g.abs().sum())
    return dots, l1s


def sums_foreach(torch: Any, grads: list[Any], zs: list[Any], xs: list[Any]) -> tuple[Any, Any]:
    """The same sums with one kernel per op over all tensors (fast)."""
    prods = torch._foreach_mul(grads, torch._foreach_sub(zs, xs))
    return [p.sum() for p in prods], [a.sum() for a in torch._foreach_abs(grads)]


def total(torch: Any, parts: list[Any]) -> float:
    """Sum 0-d tensors in float64 in list order (one host sync: the step size needs it)."""
    if not parts:
        return 0.0
    return float(torch.stack([p.double().cpu() for p in parts]).sum())


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
        m.mul_(s.beta1).add_(g, alpha=1 - s.beta1)
        v.mul_(s.beta2).addcmul_(g, g, value=1 - s.beta2)
        denom = (v / s.bias2).sqrt_().add_(s.eps)
        z.addcdiv_(m, denom, value=-s.alpha / s.bias1)
        x.mul_(1 - s.c).add_(z, alpha=s.c)
        p.copy_(torch.mul(x, s.beta).add_(z, alpha=1 - s.beta))


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
    """The same updates with ``torch._foreach_*`` kernels over the whole group."""
    if s.decay:
        torch._foreach_add_(zs, ps, alpha=-s.decay)
    torch._foreach_mul_(ms, s.beta1)
    torch._foreach_add_(ms, grads, alpha=1 - s.beta1)
    torch._foreach_mul_(vs, s.beta2)
    torch._foreach_addcmul_(vs, grads, grads, value=1 - s.beta2)
    denom = torch._foreach_div(vs, s.bias2)
    torch._foreach_sqrt_(denom)
    torch._foreach_add_(denom, s.eps)
    torch._foreach_addcdiv_(zs, ms, denom, value=-s.alpha / s.bias1)
    torch._foreach_mul_(xs, 1 - s.c)
    torch._foreach_add_(xs, zs, alpha=s.c)
    ys = torch._foreach_mul(xs, s.beta)
    torch._foreach_add_(ys, zs, alpha=1 - s.beta)
    torch._foreach_copy_(ps, ys)
