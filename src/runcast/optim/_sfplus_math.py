"""ScheduleFree+'s per-tensor updates: the paper's plain loop (the reference) and a fast ``foreach``
twin that keeps other state.

The reference keeps the paper's sequences ``z`` and ``x`` per parameter and writes ``y`` into the
parameter. The fast path keeps ``y`` in the parameter and ``d = z - x`` (scaled, see below) in the
state, so ``x`` and ``z`` are never stored: ``x = y - (1 - beta) d``, ``z = x + d``. That is the
same memory as the ``schedulefree`` package (one extra buffer beside Adam's two moments), needs
no subtraction pass for ``<g, z - x>`` (it is ``<g, d>``), and updates ``y`` in place instead of
rebuilding it from ``x`` and ``z``: 26 reads and writes of a tensor per step against 30 for the
reference's kernels and 20 for ``torch.optim.AdamW(foreach=True)``.

Derivation (one step, ``u`` the Adam direction, ``delta`` the AdamC decay, ``c`` the averaging
weight, ``b0``/``b1`` the interpolation before/after)::

    z' = z - delta y - alpha u          d1 = z' - x = d - delta y - alpha u
    x' = x + c d1                       d' = z' - x' = (1 - c) d1
    y' = x' + (1 - b1) d' = x + k d1    with k = c + (1 - b1)(1 - c)
       = (1 - (1 - b0) delta) y + (k - (1 - b0)) (d - delta y) - k alpha u

``d'`` is ``d1`` times the scalar ``1 - c``: the buffer holds ``D = d / s`` and only the scalar
``s`` (the ``scale``) is multiplied, which saves a pass over memory every step. When ``s`` falls
below 1e-3 the buffer is rescaled (a rare extra pass; ``s`` shrinks like ``1 / t``). With
``c = 1`` (the warm start) ``d' = 0`` exactly: the buffer is zeroed and ``s = 1``.

Both paths take the optimizer-wide scalars from one :class:`Scalars` and must agree to 1e-6 over
200 steps (tested in float64, where rounding cannot hide a wrong formula, and in float32).
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
    beta: float  # interpolation y = beta * x + (1 - beta) * z after this step
    beta_prev: float  # the interpolation y was built with before this step
    scale: float  # the fast path's d = scale * D (its buffer D); 1 for the reference


# --- phase 1: the two reductions ---------------------------------------------------------------
def sums_plain(torch: Any, grads: list[Any], zs: list[Any], xs: list[Any]) -> tuple[Any, Any]:
    """Per-tensor ``<g, z - x>`` and ``||g||_1``, as 0-d tensors (reference)."""
    dots, l1s = [], []
    for g, z, x in zip(grads, zs, xs, strict=True):
        dots.append(torch.dot(g.reshape(-1), (z - x).reshape(-1)))
        l1s.append(torch.linalg.vector_norm(g, 1))
    return dots, l1s


def sums_foreach(torch: Any, grads: list[Any], ds: list[Any]) -> tuple[Any, Any]:
    """The same sums from the fast path's buffers: ``<g, D>`` (times the scale later) per tensor,
    and the L1 norms. ``d = z - x`` is kept, not formed: no cancellation of two large dot
    products, and no subtraction pass.

    The L1 norms take one fused kernel, except for large tensors on the CPU: there the fused
    L1 norm is not vectorised (measured 2.5x a pass over memory, and 0.1% off in float32) and a
    per-tensor ``abs().sum()`` is faster and exact to float32 summation.
    """
    dots = [torch.dot(g.reshape(-1), d.reshape(-1)) for g, d in zip(grads, ds, strict=True)]
    if grads[0].device.type != "cpu":
        return dots, list(torch._foreach_norm(grads, 1))
    large = [g.numel() >= _LARGE for g in grads]
    small = [g for g, big in zip(grads, large, strict=True) if not big]
    fused = iter(torch._foreach_norm(small, 1) if small else [])
    l1s = [g.abs().sum() if big else next(fused) for g, big in zip(grads, large, strict=True)]
    return dots, l1s


_LARGE = 1 << 16  # elements: from here a per-tensor kernel beats the fused one on the CPU


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
    ds: list[Any],
    ms: list[Any],
    vs: list[Any],
    s: Scalars,
) -> None:
    """The same step on the fast path's state (``y`` in ``ps``, ``D`` in ``ds``; see the module
    doc), with ``torch._foreach_*`` kernels over the whole group. The caller moves the scale."""
    k = s.c + (1 - s.beta) * (1 - s.c)
    a = k - (1 - s.beta_prev)
    if s.decay:
        # D <- D - delta y / s (z decays at y), then y's own share of the decay
        torch._foreach_add_(ds, ps, alpha=-s.decay / s.scale)
        torch._foreach_mul_(ps, 1 - (1 - s.beta_prev) * s.decay)
    torch._foreach_lerp_(ms, grads, 1 - s.beta1)
    torch._foreach_mul_(vs, s.beta2)
    torch._foreach_addcmul_(vs, grads, grads, value=1 - s.beta2)
    # m_hat / (sqrt(v_hat) + eps) with the bias corrections folded into two scalars: one pass
    # over memory less than dividing the denominator
    denom = torch._foreach_sqrt(vs)
    torch._foreach_add_(denom, s.eps * s.bias2**0.5)
    step = s.alpha * s.bias2**0.5 / s.bias1
    if a:
        torch._foreach_add_(ps, ds, alpha=a * s.scale)
    torch._foreach_addcdiv_(ps, ms, denom, value=-k * step)
    if s.c < 1:
        torch._foreach_addcdiv_(ds, ms, denom, value=-step / s.scale)
    else:
        torch._foreach_zero_(ds)  # x = z: d is exactly 0
