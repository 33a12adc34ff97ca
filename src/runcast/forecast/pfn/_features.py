"""The PFN's input space: schedule features on a normalised time grid and curve normalisation.

The prior (training) and the method (inference) both go through these functions, so a real
curve reaches the model in exactly the space the synthetic curves were drawn in:

- time is ``x = step / until`` (the forecast horizon is always ``x = 1``);
- the LR schedule is averaged onto ``GRID`` equal blocks of ``[0, 1]`` and turned into four
  per-token features: the LR relative to its peak, the cumulative LR area ``S1`` (the "intrinsic
  time" of the multi-power and momentum laws; equal to ``x`` for a constant LR), a momentum-
  smoothed annealing area ``S2`` (Tissue et al. 2024) and a flag saying a schedule was given;
- a curve's values are made affine-free: ``y_n = (y - ref) / scale`` with ``ref`` the value near
  the last observed point and ``scale`` the drop over the second half of the observed window, then
  squashed with ``asinh`` so early, huge losses and small late changes share one range.

Example:
    >>> import numpy as np
    >>> f = schedule_grid(np.ones((1, GRID)))
    >>> token_features(f, np.array([[0.5]]))[0, 0].round(3).tolist()
    [0.5, 1.0, 0.5, 0.0, 1.0]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Number of equal blocks of normalised time the schedule is averaged onto.
GRID = 256
#: Time constant of the annealing momentum, as a fraction of the horizon.
MOMENTUM_TAU = 0.05
#: Features per token: x, lr/peak, S1, S2, has_schedule.
N_FEATURES = 5


def schedule_grid(lr_blocks: FloatArray, has_schedule: bool | FloatArray = True) -> FloatArray:
    """Cumulative schedule quantities at the ``GRID + 1`` block edges, for a batch of schedules.

    Args:
        lr_blocks: ``(batch, GRID)`` mean LR of each block, relative to the peak (in ``[0, 1]``).
        has_schedule: whether each schedule is real (True) or the neutral stand-in (False).

    Returns:
        ``(batch, 4, GRID + 1)``: the LR of the block starting at each edge, S1 and S2 at each
        edge, and the has-schedule flag.

    Example:
        >>> g = schedule_grid(np.ones((2, GRID)))
        >>> g.shape, float(g[0, 1, -1]), float(g[0, 2, -1])
        ((2, 4, 257), 1.0, 0.0)
    """
    lr = np.asarray(lr_blocks, dtype=np.float64)
    b, n = lr.shape
    s1 = np.zeros((b, n + 1))
    np.cumsum(lr / n, axis=1, out=s1[:, 1:])
    # Momentum of the LR drops (Tissue et al. 2024): m_k = lam * m_{k-1} + max(lr_{k-1} - lr_k, 0).
    # Increases (warmup, restarts) are not annealing, hence the clip at zero.
    drop = np.zeros_like(lr)
    drop[:, 1:] = np.maximum(lr[:, :-1] - lr[:, 1:], 0.0)
    lam = float(np.exp(-1.0 / (MOMENTUM_TAU * n)))
    # closed form of the recursion as a discounted cumulative sum, vectorised over the batch
    powers = lam ** np.arange(n)
    m = np.cumsum(drop / powers, axis=1) * powers
    s2 = np.zeros((b, n + 1))
    np.cumsum(m / n, axis=1, out=s2[:, 1:])
    lr_edge = np.concatenate([lr, lr[:, -1:]], axis=1)
    flag = np.broadcast_to(np.asarray(has_schedule, dtype=np.float64).reshape(-1, 1), (b, n + 1))
    return np.stack([lr_edge, s1, s2, flag], axis=1)


def neutral_grid(batch: int) -> FloatArray:
    """The features used when no schedule is known: a constant LR, flagged as unknown.

    Example:
        >>> neutral_grid(1)[0, :, -1].tolist()  # lr, S1, S2, has_schedule at the horizon
        [1.0, 1.0, 0.0, 0.0]
    """
    return schedule_grid(np.ones((batch, GRID)), has_schedule=False)


def token_features(grid: FloatArray, x: FloatArray) -> FloatArray:
    """Per-token features ``(batch, n, N_FEATURES)`` at normalised times ``x`` ``(batch, n)``.

    S1 and S2 are interpolated linearly between block edges (exact for a blockwise-constant LR);
    the LR is the one of the block ``x`` falls in.
    """
    b, _, e = grid.shape
    n = e - 1
    xc = np.clip(x, 0.0, 1.0)
    pos = xc * n
    i0 = np.minimum(np.floor(pos).astype(np.int64), n - 1)
    w = pos - i0
    rows = np.arange(b)[:, None]

    def interp(k: int) -> FloatArray:
        g = grid[:, k, :]
        out: FloatArray = g[rows, i0] * (1.0 - w) + g[rows, i0 + 1] * w
        return out

    lr = grid[:, 0, :][rows, i0]
    flag = grid[:, 3, :][rows, i0]
    return np.stack([xc, lr, interp(1), interp(2), flag], axis=-1)


def lr_blocks_from_array(lrs: FloatArray, until: int) -> FloatArray:
    """Average a per-step LR array (steps ``0 … until``) onto the ``GRID`` blocks, peak = 1.

    Example:
        >>> lr_blocks_from_array(np.linspace(1.0, 0.0, 1001), 1000)[[0, -1]].round(3).tolist()
        [1.0, 0.001]
    """
    lr = np.asarray(lrs, dtype=np.float64)[: until + 1]
    peak = float(lr.max()) if lr.size else 0.0
    if peak <= 0.0:  # an all-zero LR carries no schedule information
        return np.ones(GRID)
    # exact block means through the cumulative sum, for any ``until`` (not only multiples of GRID)
    c = np.concatenate([[0.0], np.cumsum(lr / peak)])
    edges = np.linspace(0.0, lr.size, GRID + 1)
    ce = np.interp(edges, np.arange(lr.size + 1), c)
    blocks = np.diff(ce) / np.diff(edges)
    # peak block = 1, as in the prior (whose schedules are drawn on the blocks directly)
    out: FloatArray = blocks / blocks.max()
    return out


def nanmedian_rows(a: FloatArray) -> FloatArray:
    """The median of each row's non-NaN values (NaN for an all-NaN row), as ``np.nanmedian``.

    ``np.nanmedian`` over rows goes through masked arrays and costs ~3 ms on a 100 x 1400 array
    (most of a PFN forecast); sorting puts the NaNs last, so each row's median is read off at
    its own count in one sort.

    Example:
        >>> nanmedian_rows(np.array([[3.0, 1.0, np.nan], [4.0, 1.0, 2.0]])).tolist()
        [2.0, 2.0]
    """
    srt = np.sort(a, axis=-1)
    n = np.sum(~np.isnan(a), axis=-1)
    lo = np.take_along_axis(srt, np.maximum((n - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(srt, np.maximum(n // 2, 0)[..., None], axis=-1)[..., 0]
    out: FloatArray = np.where(n > 0, 0.5 * (lo + hi), np.nan)
    return out


def normalise(y: FloatArray, mask: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """The affine map of each observed curve: ``ref`` and ``scale`` per row, ``(batch,)`` each.

    ``ref`` is the median of the last tenth of the observed points, ``scale`` the drop from the
    median of the middle fifth to ``ref``, floored at twice the point noise so a flat
    noisy curve does not blow its noise up. Rows are decreasing curves (the caller flips
    accuracies). ``mask`` marks the real points of each padded row (left-aligned).

    Example:
        >>> ref, scale = normalise(np.array([[4.0, 3.0, 2.5, 2.2, 2.0]]), np.ones((1, 5), bool))
        >>> float(ref[0]), float(scale[0])
        (2.0, 0.5)
    """
    yv = np.where(mask, y, np.nan)
    n = mask.sum(axis=1)
    idx = np.arange(y.shape[1])[None, :]
    k = np.maximum(1, np.ceil(n / 10)).astype(np.int64)[:, None]
    last = (idx >= n[:, None] - k) & mask
    ref = nanmedian_rows(np.where(last, yv, np.nan))
    lo = np.floor(0.4 * (n - 1))[:, None]
    hi = np.ceil(0.6 * (n - 1))[:, None]
    midm = (idx >= lo) & (idx <= hi) & mask
    mid = nanmedian_rows(np.where(midm, yv, np.nan))
    # second differences cancel a locally linear trend, so this measures noise, not progress
    d2 = np.abs(np.diff(yv, n=2, axis=1))
    # rows with < 3 points have no estimate (NaN), taken as no noise
    noise = np.nan_to_num(nanmedian_rows(d2)) / (0.6745 * np.sqrt(6.0))
    floor = 1e-9 * (1.0 + np.abs(ref))
    scale = np.maximum(np.maximum(mid - ref, 2.0 * noise), floor)
    return ref, scale


def squash(y_n: FloatArray) -> FloatArray:
    """The value feature/target space: ``asinh`` of the normalised value.

    Linear near zero (fine resolution for the small changes late in a run), logarithmic far
    from it (the first steps of a loss can sit hundreds of scales above the last value).

    Example:
        >>> squash(np.array([0.0, 0.5, 300.0])).round(2).tolist()
        [0.0, 0.48, 6.4]
    """
    out: FloatArray = np.arcsinh(y_n)
    return out


def unsquash(z: FloatArray) -> FloatArray:
    """The inverse of :func:`squash`."""
    out: FloatArray = np.sinh(z)
    return out
