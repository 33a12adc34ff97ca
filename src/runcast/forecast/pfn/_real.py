"""Training tasks cut from real recorded curves, in exactly the space inference sees.

The synthetic prior (``_prior.py``) teaches the network what curves under a schedule can do; real
runs teach it what they do. A task is a real loss curve cut at a random point: the part before
the cut is encoded by :func:`runcast.forecast.pfn._method.encode` (binned, normalised and
squashed as a forecast would be), and the network is asked the values after it, always including
the last. A dense (per-step) curve's targets are running medians over the width of one of its
bins, because the forecast reads the network as the trend and adds the per-step scatter itself.
The schedule is shown when the run has one, except in a share of tasks, so that the network
stays humble about cooldowns it cannot see.

Example:
    >>> import numpy as np
    >>> from runcast import Curve
    >>> s = np.arange(0, 2000)
    >>> pool = [RealCurve(Curve(s, 2.0 + 5.0 * (1.0 + s) ** -0.4), None, "toy")]
    >>> b = real_batch(np.random.default_rng(0), pool, batch=4)
    >>> b.obs_feat.shape, b.q_z.shape, bool(np.isfinite(b.q_z).all())
    ((4, 100, 5), (4, 24), True)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.errors import InvalidInputError
from runcast.forecast.pfn._features import squash, token_features
from runcast.forecast.pfn._prior import N_OBS, N_QUERY, Z_RANGE, Batch
from runcast.schedules import Schedule

#: the cut-offs tasks are drawn at (fractions of the run), as the forecasts that are asked
CUT_RANGE = (0.05, 0.9)
#: share of tasks whose schedule is hidden (the prior hides 40%)
HIDE_SCHEDULE = 0.4


@dataclass(frozen=True)
class RealCurve:
    """A recorded loss curve (positive, falling), its run's schedule if known, and its group.

    Tasks are drawn group by group with equal weight, so a family with many runs does not
    drown one with few.
    """

    curve: Curve
    schedule: Schedule | None
    group: str


def task(
    c: Curve, schedule: Schedule | None, k: int, queries: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[Any], ...]:
    """One task: the finite curve ``c`` observed up to its point ``k`` (excluded), asked at
    its points ``queries`` (after ``k``); ``schedule`` None hides it. Returns the model's
    ``(obs_feat, obs_z, obs_mask, q_feat, q_z)`` for one row.
    """
    from runcast.forecast.pfn._method import encode

    step, value = c.step.astype(np.float64), c.value.astype(np.float64)
    until = int(step[-1])
    enc = encode(Curve(step[:k], value[:k]), until, schedule, "down")
    n_obs = enc.step.size
    obs_z = np.zeros(N_OBS)
    obs_z[:n_obs] = enc.obs_z[0]
    obs_x = np.full(N_OBS, step[k - 1] / until)
    obs_x[:n_obs] = enc.step / until
    mask = np.arange(N_OBS) < n_obs
    # a dense curve's trend at each query: the median over one bin's width around it
    half = (k // N_OBS) // 2 if enc.binned else 0
    y = np.array([np.median(value[max(0, i - half) : i + half + 1]) for i in queries])
    q_z = np.clip(squash((y - enc.ref[0]) / enc.scale[0]), *Z_RANGE)
    feats = token_features(enc.grid, np.concatenate([obs_x, step[queries] / until])[None, :])[0]
    return feats[:N_OBS], obs_z, mask, feats[N_OBS:], q_z


def _draw(rc: RealCurve, rng: np.random.Generator, n_query: int) -> tuple[npt.NDArray[Any], ...]:
    """A task of ``rc`` at a random cut-off, schedule shown or hidden, random questions."""
    from runcast.forecast.pfn._method import MIN_POINTS

    c = rc.curve.finite()
    step = c.step
    first, until = float(step[0]), float(step[-1])
    lo = max(int(np.searchsorted(step, first + CUT_RANGE[0] * (until - first))), MIN_POINTS)
    hi = int(np.searchsorted(step, first + CUT_RANGE[1] * (until - first)))
    k = min(int(rng.integers(lo, max(hi, lo + 1))), step.size - 1)  # points observed
    show = rc.schedule is not None and rng.random() >= HIDE_SCHEDULE
    future = np.arange(k, step.size)
    q = np.sort(rng.choice(future, size=n_query, replace=future.size < n_query))
    q[-1] = step.size - 1  # the final value: the question most asked
    return task(c, rc.schedule if show else None, k, q)


def real_batch(
    rng: np.random.Generator, pool: Sequence[RealCurve], batch: int, n_query: int = N_QUERY
) -> Batch:
    """``batch`` tasks cut from curves of ``pool`` (a group drawn uniformly, then a curve)."""
    groups: dict[str, list[RealCurve]] = defaultdict(list)
    for rc in pool:
        c = rc.curve.finite()
        if len(c) > 8 and np.all(c.value > 0):
            groups[rc.group].append(rc)
    if not groups:
        raise InvalidInputError(
            "No usable real curve: each needs more than 8 finite, positive points (a loss)."
        )
    names = sorted(groups)
    rows = []
    for _ in range(batch):
        members = groups[names[int(rng.integers(len(names)))]]
        rows.append(_draw(members[int(rng.integers(len(members)))], rng, n_query))
    of, oz, om, qf, qz = (np.stack(col) for col in zip(*rows, strict=True))
    return Batch(obs_feat=of, obs_z=oz, obs_mask=om.astype(bool), q_feat=qf, q_z=qz)
