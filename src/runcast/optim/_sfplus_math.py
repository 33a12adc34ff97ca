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

    The L1 norms take one fused kernel, except for large float tensors on the CPU: there the
    fused L1 norm is not vectorised (2.5-4x a pass over memory, and 0.1% off in float32) and
    ``abs().sum()`` allocates a tensor-sized temporary (page faults on every step), while BLAS's
    ``asum`` is one vectorised pass, as fast as the dot product.
    """
    dots = [torch.dot(g.reshape(-1), d.reshape(-1)) for g, d in zip(grads, ds, strict=True)]
    if grads[0].device.type != "cpu":
        return dots, list(torch._foreach_norm(grads, 1))
    large = [_blas_l1(torch, g) for g in grads]
    small = [g for g, l1 in zip(grads, large, strict=True) if l1 is None]
    fused = iter(torch._foreach_norm(small, 1) if small else [])
    return dots, [next(fused) if l1 is None else l1 for l1 in large]


def _blas_l1(torch: Any, g: Any) -> Any:
    """``||g||_1`` by BLAS ``sasum``/``dasum`` for a large float32/float64 CPU tensor, else None."""
    if g.numel() < _LARGE or g.dtype not in (torch.float32, torch.float64):
        return None
    from scipy.linalg import blas  # a core dependency; BLAS's L1 norm, no temporary

    flat = g.detach().reshape(-1).numpy()
    asum = blas.sasum if g.dtype == torch.float32 else blas.dasum
    return torch.tensor(float(asum(flat)), dtype=torch.float64)


_LARGE = 1 << 16  # elements: from here a per-tensor call beats the fused kernel on the CPU


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
    doc), with ``torch._foreach_*`` kernels. The caller moves the scale.

    On the CPU the tensors are cut into blocks of ~128k elements and all kernels run block by
    block, so each block's six buffers stay in cache from one kernel to the next (one kernel
    over all tensors, then the next, reads everything from memory every time: measured slower
    than even the reference's tensor-by-tensor loop on 16 x 512x512). Every kernel is
    elementwise, so blocking changes no number. On other devices one launch covers all.
    """
    if not ps:
        return
    if ps[0].device.type != "cpu":
        _update_block(torch, ps, grads, ds, ms, vs, s)
        return
    for bp, bg, bd, bm, bv in _blocks([ps, grads, ds, ms, vs]):
        _update_block(torch, bp, bg, bd, bm, bv, s)


def _update_block(
    torch: Any,
    ps: list[Any],
    grads: list[Any],
    ds: list[Any],
    ms: list[Any],
    vs: list[Any],
    s: Scalars,
) -> None:
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


_BLOCK = 1 << 17  # elements per block on the CPU: six float32 buffers of it fit in L2/L3


def _blocks(lists: list[list[Any]]) -> list[list[list[Any]]]:
    """The parallel lists cut into blocks of at most ~``_BLOCK`` elements: small tensors are
    gathered into one block, large ones split into flat views (contiguous tensors only; a
    non-contiguous one goes whole)."""
    out: list[list[list[Any]]] = []
    current: list[list[Any]] = [[] for _ in lists]
    size = 0
    for tensors in zip(*lists, strict=True):
        n = tensors[0].numel()
        if n > _BLOCK and all(t.is_contiguous() for t in tensors):
            parts = [t.view(-1).split(_BLOCK) for t in tensors]
            pieces = list(zip(*parts, strict=True))
        else:
            pieces = [tensors]
        for piece in pieces:
            m = piece[0].numel()
            if size and size + m > _BLOCK:
                out.append(current)
                current, size = [[] for _ in lists], 0
            for bucket, t in zip(current, piece, strict=True):
                bucket.append(t)
            size += m
    if size:
        out.append(current)
    return out
