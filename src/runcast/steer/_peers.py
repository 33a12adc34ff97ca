"""Forecast a sweep trial's final value from how the sweep's completed trials continued.

In a sweep, the best evidence of where a trial is going is often not its own short, noisy
curve but its peers: trials of the same sweep that already ran to the end. From each completed
peer we take how much it still improved between the current step ``t`` and its end, on a log
scale (``rho = log final - log level(t)``), and add that to the trial's own level at ``t``. The
spread of the peers' ``rho`` (with a floor, inflated for few peers) plus the final value's own
step-to-step scatter make the predictive spread. This is the cross-run learning-curve
extrapolation idea of Chandrashekaran & Lane (2017), in its simplest robust form.

"Level" is the best value over the last ``window`` points (the running minimum of a loss): an
upward spike then does not make a winner look like a loser.

Example:
    >>> import numpy as np
    >>> from runcast.curve import Curve
    >>> s = np.arange(10, 110, 10)
    >>> peers = [Curve(s, 1.0 + 5.0 / s), Curve(s, 0.8 + 5.0 / s)]
    >>> f = peer_forecast(Curve(s[:3], 2.0 + 5.0 / s[:3]), 100, peers)
    >>> f.method, f.final.median > 1.5
    ('peers', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtri

from runcast.errors import InvalidInputError, NotEnoughDataError

if TYPE_CHECKING:
    from runcast.curve import Curve
    from runcast.forecast import Forecast
    from runcast.forecast._types import Direction


def _level(step: np.ndarray, value: np.ndarray, t: int, window: int, down: bool) -> float | None:
    upto = value[: int(np.searchsorted(step, t, side="right"))]
    upto = upto[np.isfinite(upto)][-window:]
    if upto.size == 0:
        return None
    return float(upto.min() if down else upto.max())


def peer_forecast(
    curve: Curve,
    until: int,
    peers: Sequence[Curve],
    *,
    direction: Direction = "down",
    window: int = 10,
    scale_floor: float = 0.1,
    n_paths: int = 400,
) -> Forecast:
    """The distribution of ``curve``'s value at ``until``, from completed ``peers``.

    Args:
        curve: the trial so far.
        until: its last step (where the peers ended).
        peers: completed trials of the same sweep, each observed up to about ``until``.
        direction: ``"down"`` for a loss, ``"up"`` for an accuracy.
        window: points over which the current level is the best value.
        scale_floor: the least spread of the improvement still to come (log units for a
            positive loss, else in the metric's units relative to its typical size), so that
            two similar peers never make the forecast overconfident.
        n_paths: the forecast's sample count (normal quantiles, so the result is deterministic).

    Raises:
        NotEnoughDataError: no peer has a point at or before the trial's current step.

    Example:
        >>> import numpy as np
        >>> from runcast.curve import Curve
        >>> s = np.arange(1, 11)
        >>> f = peer_forecast(Curve(s[:4], 1.0 / s[:4]), 10, [Curve(s, 1.0 / s)])
        >>> round(f.final.median, 3)  # the peer went from 0.25 at step 4 to 0.1
        0.1
    """
    if window < 1 or n_paths < 2 or not scale_floor >= 0:
        raise InvalidInputError(
            f"Need window >= 1, n_paths >= 2, scale_floor >= 0; got {window=}, {n_paths=}, "
            f"{scale_floor=}."
        )
    down = direction == "down"
    fin = curve.finite()
    if len(fin) == 0:
        raise NotEnoughDataError("The trial has no finite point yet; a peer forecast needs one.")
    t = int(fin.step[-1])
    vals = [np.asarray(p.finite().value) for p in peers]
    positive = bool(np.all(fin.value > 0)) and all(bool(np.all(v > 0)) for v in vals if v.size)
    log = down and positive
    tr = np.log if log else (lambda x: np.asarray(x, dtype=np.float64))
    own = _level(np.asarray(fin.step), np.asarray(fin.value), t, window, down)
    assert own is not None
    rho: list[float] = []
    noise: list[float] = []
    finals: list[float] = []
    for p in peers:
        pf = p.finite()
        if len(pf) < 2:
            continue
        lv = _level(np.asarray(pf.step), np.asarray(pf.value), t, window, down)
        if lv is None:
            continue
        final = float(pf.value[-1])
        rho.append(float(tr(final) - tr(lv)))
        finals.append(final)
        noise.append(float(np.std(np.diff(tr(np.asarray(pf.value[-6:]))))))
    if not rho:
        raise NotEnoughDataError(
            f"No peer has a point at or before step {t}; a peer forecast needs completed trials "
            "that reported that early."
        )
    r = np.asarray(rho)
    m = r.size
    floor = scale_floor if log else scale_floor * float(np.median(np.abs(finals)) or 1.0)
    spread = max(float(r.std(ddof=1)) if m > 1 else floor, floor)
    sd = float(np.sqrt(spread**2 * (1.0 + 1.0 / m) + float(np.median(noise)) ** 2))
    z = ndtri((np.arange(n_paths) + 0.5) / n_paths)
    center = float(tr(own)) + float(r.mean())
    samples = center + sd * z
    if log:
        samples = np.exp(samples)
    from runcast.forecast import Forecast

    return Forecast(
        [until],
        samples[:, None],
        direction=direction,
        method="peers",
        info={"n_peers": m, "level": own, "rho_mean": float(r.mean()), "sd": sd, "log": log},
    )
