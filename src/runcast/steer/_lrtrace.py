"""A sweep trial's future LR, inferred from the LR it logged and the LRs its completed peers logged.

A trial whose schedule is not given may still log its LR (Optuna: the user attribute
``"runcast_lr"`` before each report; Ray Tune: a result field). Its past LR says which phase it
is in (warm-up, constant, decaying) but not what comes: a constant LR may stay constant or
decay at 80% of the budget. The completed trials of the same sweep logged their whole LR: each
one whose recent LR shape (relative to its peak so far) matches the trial's is one plausible
future, scaled to the trial's peak. :func:`lr_continuations` returns those futures, each with
the number of completed peers that ran it; the pruner forecasts under each and weighs them by
that count (no future is guessed that no completed trial ran).

Example:
    >>> import numpy as np
    >>> steps = np.arange(100)
    >>> wsd = np.minimum(1.0, (100 - steps) / 20)  # constant, then a decay over the last 20%
    >>> const = np.ones(100)
    >>> own = (steps[:50], 0.5 * const[:50])  # constant so far, at half their LR
    >>> cands = lr_continuations(own, [(steps, wsd), (steps, const), (steps, const)], total=100)
    >>> [(round(float(s.array(100)[95]), 3), n) for s, n in cands]  # LR at step 95, peers
    [(0.125, 1), (0.5, 2)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from runcast.schedules import Schedule

LRTrace = tuple[Sequence[int] | np.ndarray, Sequence[float] | np.ndarray]
# the largest difference of LR relative to the peak so far at which two trials' recent LRs count
# as the same phase (a cosine and a linear decay at 40% of the budget are 0.05 apart; a decay
# and a constant LR soon differ by more)
MATCH_TOL = 0.1
# future LR shapes closer than this (relative to the trial's peak) count as one
SHAPE_ROUND = 0.05


def per_step(trace: LRTrace, upto: int) -> np.ndarray | None:
    """A logged LR (at some steps) as one LR per step ``0 .. upto - 1`` (linear in between,
    held before the first and after the last logged step); None if none is finite.

    Example:
        >>> per_step(([0, 4], [1.0, 0.0]), 6).tolist()
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    st = np.asarray(trace[0], dtype=np.float64)
    lr = np.asarray(trace[1], dtype=np.float64)
    ok = np.isfinite(st) & np.isfinite(lr) & (lr >= 0)
    if not ok.any() or upto < 1:
        return None
    order = np.argsort(st[ok], kind="stable")
    return np.interp(np.arange(upto, dtype=np.float64), st[ok][order], lr[ok][order])


def recorded_schedule(trace: LRTrace, total: int) -> Schedule | None:
    """A completed trial's logged LR as a schedule of ``total`` steps (None if it has no LR).

    Example:
        >>> recorded_schedule(([0, 9], [1.0, 0.1]), 10).array()[-1]
        np.float64(0.1)
    """
    lrs = per_step(trace, total)
    return None if lrs is None else Schedule.from_array(lrs)


def lr_continuations(
    own: LRTrace, completed: Sequence[LRTrace | None], total: int
) -> list[tuple[Schedule, int]]:
    """The trial's plausible schedules: its own logged LR up to its last logged step ``t``,
    then the future of each completed peer whose LR over ``[t/2, t]`` (relative to its peak
    up to ``t``) is within ``MATCH_TOL`` of the trial's, scaled to the trial's peak; alike
    futures merged, each with how many peers ran it. Empty when no peer matches.
    """
    st = np.asarray(own[0], dtype=np.float64)
    ok = np.isfinite(st) & np.isfinite(np.asarray(own[1], dtype=np.float64))
    if not ok.any() or total < 2:
        return []
    t = int(min(st[ok].max(), total - 1))
    mine = per_step(own, t + 1)
    if mine is None or mine.max() <= 0:
        return []
    recent = np.arange(t // 2, t + 1)
    mine_rel = mine[recent] / mine.max()
    # compared on a few steps of the recent half, where the trial logged
    logged = st[ok][(st[ok] >= t // 2) & (st[ok] <= t)].astype(np.int64)
    at = np.unique(np.concatenate([logged, [t]])) - t // 2
    out: dict[tuple[float, ...], tuple[Schedule, int]] = {}
    future = np.linspace(t + 1, total - 1, 8).astype(np.int64) if t + 1 < total else None
    for trace in completed:
        if trace is None:
            continue
        theirs = per_step(trace, total)
        if theirs is None:
            continue
        peak = float(theirs[: t + 1].max())
        if peak <= 0:
            continue
        if np.max(np.abs(theirs[recent][at] / peak - mine_rel[at])) > MATCH_TOL:
            continue
        scale = float(mine.max()) / peak
        full = np.concatenate([mine, theirs[t + 1 :] * scale])
        key = (
            ()
            if future is None
            else tuple(np.round(full[future] / mine.max() / SHAPE_ROUND).astype(int).tolist())
        )
        sched, n = out.get(key, (Schedule.from_array(full), 0))
        out[key] = (sched, n + 1)
    return list(out.values())
