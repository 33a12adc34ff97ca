"""Forecast a sweep trial's final value from how the sweep's other trials continued.

Two forecasts. :func:`analog_forecast` (the pruner's default when schedules are known) chains
what trials in a similar state, with a similar LR schedule, did from each step on, using trials
stopped early for the steps they reached. :func:`peer_forecast` (the "shift" forecast, below)
adds the completed trials' mean log improvement to the trial's level.

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

from runcast._range import check_bounds
from runcast.errors import InvalidInputError, NotEnoughDataError, ScheduleError

if TYPE_CHECKING:
    from runcast.curve import Curve
    from runcast.forecast import Forecast
    from runcast.forecast._types import Direction
    from runcast.schedules import Schedule


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
    bounds: tuple[float, float] | None = None,
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
        bounds: the range the metric can take, ``(lo, hi)`` (``-inf``/``inf`` for an open
            side): paths beyond it end on it (an accuracy cannot pass 1.0). None: unbounded.

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
    _check_magnitude([curve, *peers], "peer forecast")
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
    samples = _clip(samples, check_bounds(bounds))
    from runcast.forecast import Forecast

    return Forecast(
        [until],
        samples[:, None],
        direction=direction,
        method="peers",
        info={"n_peers": m, "level": own, "rho_mean": float(r.mean()), "sd": sd, "log": log},
    )


# Values beyond the forecast's limit (MAX_ABS_VALUE) cannot be told apart by a kernel or a
# spread either: their squares overflow float64 (fuzzing: 2e300 raised OverflowError from inside
# the kernel, and a spread of inf made every sample inf). No metric a training run reports comes
# near it.


def _check_magnitude(curves: Sequence[Curve], what: str) -> None:
    """Refuse values too large to compare (see ``MAX_ABS_VALUE``), naming the largest.

    Example:
        >>> from runcast.curve import Curve
        >>> _check_magnitude([Curve([1, 2], [1.0, 2e300])], "peer forecast")
        Traceback (most recent call last):
        ...
        runcast.errors.InvalidInputError: A peer forecast cannot compare values as large as 2e+300 (beyond 1e+100); rescale the metric (e.g. report its log).
    """  # noqa: E501
    # here, not at import: runcast.forecast would add ~0.6 s to importing runcast.steer
    from runcast.forecast._prep import MAX_ABS_VALUE

    big = max((float(np.max(np.abs(c.finite().value), initial=0.0)) for c in curves), default=0.0)
    if big > MAX_ABS_VALUE:
        raise InvalidInputError(
            f"A {what} cannot compare values as large as {big:.3g} (beyond {MAX_ABS_VALUE:.0e}); "
            "rescale the metric (e.g. report its log)."
        )


def _clip(x: np.ndarray, bounds: tuple[float, float] | None) -> np.ndarray:
    # a path past what the metric can be ends on the bound: an accuracy forecast to pass 1.0
    # ties a trial already at 1.0, it does not beat it
    return x if bounds is None else np.clip(x, bounds[0], bounds[1])


def _log_or_raw(log: bool, x: float) -> float:
    return float(np.log(x)) if log else float(x)


def _segments(t: int, until: int) -> list[tuple[int, int]]:
    # doubling horizons: a trial that reached step a is evidence for a -> 2a; the last piece
    # is merged into the final segment when it would be short (< a quarter of its start)
    out: list[tuple[int, int]] = []
    a = max(t, 1)
    while a < until:
        b = min(2 * a, until)
        if until - b < a // 4:
            b = until
        out.append((a, b))
        a = b
    return out


def _lrs(schedule: Schedule | None, until: int) -> np.ndarray | None:
    if schedule is None:
        return None
    try:
        return schedule.array(until)
    except ScheduleError:  # a recorded LR that stops before `until`: its future is unknown
        return None


def _shape(lrs: np.ndarray | None, a: int, b: int) -> tuple[float, float] | None:
    # (log peak LR, mean LR over [a, b) relative to the peak): what the schedule does there
    if lrs is None or lrs.size == 0:
        return None
    peak = float(lrs.max())
    if peak <= 0:
        return None
    part = lrs[min(a, lrs.size - 1) : max(min(b, lrs.size), min(a, lrs.size - 1) + 1)]
    return float(np.log(peak)), float(part.mean() / peak)


def analog_forecast(
    curve: Curve,
    until: int,
    donors: Sequence[tuple[Curve, bool]],
    *,
    direction: Direction = "down",
    schedule: Schedule | None = None,
    donor_schedules: Sequence[Schedule | None] | None = None,
    window: int = 10,
    bandwidth: float = 0.3,
    shape_bandwidth: float = 0.2,
    peak_bandwidth: float = 1.0,
    mismatch_spread: float = 0.1,
    mix: float = 0.2,
    smooth: float = 0.0,
    noise: float = 1.0,
    state_spread: float = 1.0,
    min_donors: int = 1,
    n_paths: int = 400,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
) -> Forecast:
    """The distribution of ``curve``'s value at ``until``, by chaining what similar trials did.

    The horizon from the trial's step ``t`` to ``until`` is cut into doubling segments
    (``t -> 2t -> 4t -> ... -> until``). Each forecast path steps through them: on a segment
    ``[a, b]`` it borrows the change of one donor over ``[a, b]``, picked with a weight that
    falls with the distance between the path's state and the donor's at ``a`` (log level and
    log change since ``a/2``, in units of ``bandwidth``; with schedules, also log peak LR and
    mean LR over the segment relative to the peak). A trial that was stopped early is a donor
    for the segments it reached, so evidence of how curves go on from step ``a`` comes from
    every trial that got past ``2a``, not only from completed ones; the last segment needs
    completed donors (it ends at their final values). ``mix`` of the weight is spread over all
    donors, so a path never follows one neighbour only; when no donor is near the path (in
    schedule, and in state weighted by ``state_spread``), the borrowed change is widened by
    ``mismatch_spread`` per unit of the distance to the nearest one (the evidence is weaker, the
    forecast says so). This is
    analog (nearest-neighbour) forecasting of learning curves across a sweep.

    Args:
        curve: the trial so far.
        until: its last step (where completed donors ended).
        donors: ``(curve, completed)`` pairs: every other trial of the sweep so far, stopped
            early (``completed=False``) or run to the end.
        direction: ``"down"`` for a loss (log scale when positive), ``"up"`` for an accuracy.
        schedule, donor_schedules: the LR schedules of the trial and of each donor (None where
            unknown: that donor's schedule then counts as matching).
        window: points over which a level is the best value (robust to spikes).
        bandwidth, shape_bandwidth, peak_bandwidth: kernel widths of the state distance.
        mismatch_spread: extra spread per unit of distance to the nearest donor (schedule, and
            state weighted by ``state_spread``).
        state_spread: how much the state distance to the nearest donor widens the borrowed
            change (0: only the schedule distance does). A trial unlike every donor, such as
            a slow-LR "late bloomer" when only fast trials have finished, then gets the wide
            forecast its weak evidence deserves instead of the change of a far neighbour.
        mix: the share of each step's weight spread evenly over all donors.
        smooth: draw each borrowed change from a kernel density of the donors' changes, this
            many times Silverman's width (0: the donors' changes as they are).
        noise: the final value is one noisy evaluation: add this many times the completed
            donors' evaluation noise (median over donors of the scatter of their last points
            about a straight line) to every path's final value (0: none). Without it, paths
            that all follow one donor give a point forecast, and a trial a hair from the best
            is pruned with certainty on the last segment.
        min_donors: the fewest donors a segment needs (else NotEnoughDataError).
        n_paths: sample paths; ``seed``: their random draws (decisions are repeatable).
        bounds: the range the metric can take, ``(lo, hi)`` (``-inf``/``inf`` for an open
            side): a path that would pass it stays on it, at every segment and after the
            final evaluation noise. Without it, a trial already at an accuracy of 1.0 gets
            paths above 1.0 (the noise, a donor's late gain) and looks as if it could beat
            another at 1.0. None: unbounded.

    Raises:
        NotEnoughDataError: no completed donor reported at or before the trial's step, or a
            segment has fewer than ``min_donors`` donors.

    Example:
        >>> import numpy as np
        >>> from runcast.curve import Curve
        >>> s = np.arange(10, 110, 10)
        >>> decay = 2.0 ** (-s / 50)  # every trial halves its loss each 50 steps
        >>> done = [(Curve(s, 0.5 * decay), True), (Curve(s, 0.6 * decay), True)]
        >>> f = analog_forecast(Curve(s[:3], 0.55 * decay[:3]), 100, done, window=1)
        >>> f.method, round(f.final.median, 2)  # 0.55 * 2 ** (-100 / 50): the donors' path
        ('analog', 0.14)
        >>> lo, hi = f.final.interval(0.8)  # widened: no donor is exactly where the trial is
        >>> bool(lo < 0.1375 < hi)
        True
    """
    if window < 1 or n_paths < 2 or not bandwidth > 0 or not 0.0 <= mix <= 1.0:
        raise InvalidInputError(
            f"Need window >= 1, n_paths >= 2, bandwidth > 0, 0 <= mix <= 1; got {window=}, "
            f"{n_paths=}, {bandwidth=}, {mix=}."
        )
    if donor_schedules is not None and len(donor_schedules) != len(donors):
        raise InvalidInputError(
            f"donor_schedules must match donors one to one, but got {len(donor_schedules)} "
            f"schedules for {len(donors)} donors."
        )
    _check_magnitude([curve, *(c for c, _ in donors)], "analog forecast")
    down = direction == "down"
    fin = curve.finite()
    if len(fin) == 0:
        raise NotEnoughDataError("The trial has no finite point yet; a forecast needs one.")
    t = int(fin.step[-1])
    prepared = []
    for (c, completed), sch in zip(donors, donor_schedules or [None] * len(donors), strict=True):
        f = c.finite()
        if len(f) >= 2 and int(f.step[0]) <= t:
            lrs = _lrs(sch, until)
            prepared.append((np.asarray(f.step), np.asarray(f.value), completed, lrs))
    if not any(p[2] for p in prepared):
        raise NotEnoughDataError(
            f"No completed trial reported at or before step {t}; an analog forecast needs one."
        )
    positive = bool(np.all(fin.value > 0)) and all(bool(np.all(p[1] > 0)) for p in prepared)
    log = down and positive
    own_lrs = _lrs(schedule, until)
    box = check_bounds(bounds)
    if box is not None and log:
        # the paths move on the log scale: so do their bounds (a floor at or below 0 is none)
        box = (float(np.log(box[0])) if box[0] > 0 else -np.inf, float(np.log(box[1])))

    def state(st: np.ndarray, va: np.ndarray, a: int) -> tuple[float, float] | None:
        now = _level(st, va, a, window, down)
        if now is None:
            return None
        before = _level(st, va, a // 2, window, down)
        x = _log_or_raw(log, now)
        return x, (x - _log_or_raw(log, before)) if before is not None else 0.0

    own = state(np.asarray(fin.step), np.asarray(fin.value), t)
    assert own is not None
    # in raw units the kernel width scales with the metric's typical size
    scale = 1.0 if log else max(abs(own[0]), 1e-12)
    h = bandwidth * scale
    rng = np.random.default_rng(seed)
    pos = np.full(n_paths, own[0])
    slope = np.full(n_paths, own[1])
    segments = _segments(t, until)
    for a, b in segments:
        feats, moves, sched = [], [], []
        for st, va, completed, lrs in prepared:
            if b >= until:
                if not completed:
                    continue
                end = _log_or_raw(log, float(va[-1]))
            else:
                if st[-1] < b:
                    continue
                lv = _level(st, va, b, window, down)
                assert lv is not None
                end = _log_or_raw(log, lv)
            s = state(st, va, a)
            if s is None:
                continue
            feats.append(s)
            moves.append(end - s[0])
            mine, theirs = _shape(own_lrs, a, b), _shape(lrs, a, b)
            if mine is None or theirs is None:
                sched.append(0.0)
            else:
                sched.append(
                    ((mine[0] - theirs[0]) / peak_bandwidth) ** 2
                    + ((mine[1] - theirs[1]) / shape_bandwidth) ** 2
                )
        if len(moves) < min_donors:
            raise NotEnoughDataError(
                f"{len(moves)} trial(s) reported over steps {a}..{b}; min_donors={min_donors}."
            )
        fe = np.asarray(feats)
        mv = np.asarray(moves)
        sd2 = np.asarray(sched)
        d2 = ((pos[:, None] - fe[None, :, 0]) ** 2 + (slope[:, None] - fe[None, :, 1]) ** 2) / h**2
        d2 = d2 + sd2[None, :]
        w = np.exp(-0.5 * (d2 - d2.min(axis=1, keepdims=True)))
        w = (1.0 - mix) * w / w.sum(axis=1, keepdims=True) + mix / mv.size
        pick = (w.cumsum(axis=1) < rng.random(n_paths)[:, None]).sum(axis=1)
        step = mv[np.minimum(pick, mv.size - 1)]
        # per path: the distance to its nearest donor in kernel widths, schedule and (weighted
        # by state_spread) state; far from every donor, the borrowed change is weaker evidence
        near = (d2 - sd2[None, :]) * state_spread + sd2[None, :]
        widen = mismatch_spread * scale * np.sqrt(np.maximum(near.min(axis=1), 0.0))
        # draw from a smoothed (kernel density) version of the donors' moves, Silverman's
        # width: a few donors are a sample of how trials go on, not every way they can
        widen = np.hypot(widen, smooth * 1.06 * mv.std() * mv.size**-0.2)
        if np.any(widen > 0):
            step = step + widen * rng.standard_normal(n_paths)
        moved = _clip(pos + step, box)
        slope = moved - pos
        pos = moved
    if noise > 0:
        # second differences of the last points cancel a straight trend, so a smooth curve
        # has no noise; sd(e[i+1] - 2 e[i] + e[i-1]) = sqrt(6) sd(e) for independent errors
        scatter = [
            float(np.std(np.diff([_log_or_raw(log, float(x)) for x in va[-8:]], n=2)))
            / np.sqrt(6.0)
            for _, va, completed, _ in prepared
            if completed and va.size >= 4
        ]
        if scatter:
            pos = pos + noise * float(np.median(scatter)) * rng.standard_normal(n_paths)
            pos = _clip(pos, box)
    with np.errstate(over="ignore"):
        samples = np.exp(pos) if log else pos
    if not np.all(np.isfinite(samples)):
        # a trial far below its donors' scale (1e-300 among values near 2) borrows a rise
        # that overflows (e^690): refuse it by name rather than forecast inf
        raise InvalidInputError(
            f"The analog forecast of this trial (last value {float(fin.value[-1]):.3g}) leaves "
            "the float range: its donors move on scales it cannot follow. Compare trials of "
            "one metric on one scale."
        )
    from runcast.forecast import Forecast

    return Forecast(
        [until],
        samples[:, None],
        direction=direction,
        method="analog",
        info={
            "n_donors": len(prepared),
            "n_completed": sum(p[2] for p in prepared),
            "segments": len(segments),
            "log": log,
        },
    )
