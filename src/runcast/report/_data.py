"""Plot data: every picture in a report is computed here into a small named tuple.

Renderers (plotly HTML, matplotlib PNG, the dashboard's JSON) only draw these tuples, so tests
check numbers, not pixels.

Example:
    >>> import numpy as np
    >>> from runcast import Curve
    >>> d = curve_data(Curve([0, 1, 2, 3], [4.0, 2.0, 3.0, 1.0]), beta=0.5)
    >>> d.smooth.round(3).tolist()
    [4.0, 2.667, 2.857, 1.867]
"""

from __future__ import annotations

import itertools
import numbers
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.errors import InvalidInputError
from runcast.forecast import Forecast
from runcast.schedules import Schedule

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _count(name: str, value: object, minimum: int) -> int:
    """``value`` as a whole number >= ``minimum``, else an InvalidInputError naming it.

    Example:
        >>> _count("max_points", 10, 2)
        10
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInputError(f"{name} must be a whole number >= {minimum}, but got {value!r}.")
    return int(value)


def auto_beta(n: int) -> float:
    """An EMA factor that averages about ``n / 40`` points (2.5% of the curve), in [0, 0.99].

    Example:
        >>> auto_beta(4000), auto_beta(20)
        (0.99, 0.0)
    """
    return float(np.clip(1.0 - 40.0 / max(_count("n", n, 0), 1), 0.0, 0.99))


def ema(values: npt.ArrayLike, beta: float) -> FloatArray:
    """Exponential moving average, bias-corrected like Adam: ``m_n / (1 - beta^n)``.

    Without the correction the average starts at 0 and creeps up; dividing by ``1 - beta^n``
    (``n`` = points seen so far) makes it an exact weighted mean from the first point on.
    NaN (missing) points are skipped: they neither move the average nor count in ``n``, and
    their output is NaN.

    Example:
        >>> ema([2.0, float("nan"), 4.0], beta=0.5).tolist()
        [2.0, nan, 3.3333333333333335]
    """
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
        raise InvalidInputError(f"The EMA factor beta must be in [0, 1), but got {beta=}.")
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"ema needs numbers, but got {values!r:.80}: {err}.") from err
    if x.ndim != 1:
        # a 2-D array was averaged as one flattened curve, rows running into each other
        raise InvalidInputError(f"ema needs one curve (a 1-D array), but got shape {x.shape}.")
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    xs = x[ok]
    if xs.size == 0:
        return out
    from scipy.signal import lfilter

    n = np.arange(1, xs.size + 1, dtype=np.float64)
    # m_n = beta * m_(n-1) + (1 - beta) * x_n with m_0 = 0, as one linear filter pass (C loop)
    m = lfilter([1.0 - beta], [1.0, -beta], xs)
    out[ok] = m / (1.0 - beta**n)
    return out


def thin_indices(values: npt.ArrayLike, max_points: int) -> IntArray:
    """Indices of at most ``max(max_points, 4)`` points that keep a noisy curve's look when drawn.

    The curve is cut into ``max_points // 2`` buckets and each keeps its lowest and highest
    point (a min/max decimation): every spike stays visible, unlike taking every k-th point.
    Missing (NaN) points are never kept unless a whole bucket is missing.

    Example:
        >>> v = np.zeros(1000); v[501] = 9.0
        >>> idx = thin_indices(v, 100)
        >>> len(idx) <= 100, 501 in idx.tolist(), int(idx[0]), int(idx[-1])
        (True, True, 0, 999)
    """
    max_points = _count("max_points", max_points, 0)
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    n_buckets = max(max_points // 2 - 1, 1)
    edges = np.linspace(0, n, n_buckets + 1).astype(np.int64)
    keep = [0, n - 1]
    filled = np.where(np.isnan(x), np.inf, x)
    for a, b in itertools.pairwise(edges.tolist()):
        seg = filled[a:b]
        lo = int(np.argmin(seg))
        hi = int(np.argmax(np.where(np.isinf(seg), -np.inf, seg)))
        keep += [a + lo, a + hi]
    return np.unique(np.asarray(keep, dtype=np.int64))


class CurveData(NamedTuple):
    """One metric of one run: raw points and their bias-corrected EMA."""

    label: str
    step: IntArray
    raw: FloatArray
    smooth: FloatArray
    beta: float

    def thinned(self, max_points: int = 5000) -> CurveData:
        """At most ~``max_points`` points for drawing (see :func:`thin_indices`); the EMA was
        computed over every point before thinning, so it is unchanged where kept.

        Example:
            >>> noisy = np.random.default_rng(0).normal(size=10_000)
            >>> d = curve_data(Curve(np.arange(10_000), noisy))
            >>> len(d.thinned(500).step) <= 500, len(d.thinned(20_000).step)
            (True, 10000)
        """
        idx = thin_indices(self.raw, max_points)
        if idx.size == self.step.size:
            return self
        return CurveData(self.label, self.step[idx], self.raw[idx], self.smooth[idx], self.beta)


def curve_data(curve: Curve, beta: float | None = None, label: str | None = None) -> CurveData:
    """Raw and smoothed values of ``curve`` (``beta`` None: :func:`auto_beta` of its length).

    Example:
        >>> d = curve_data(Curve([0, 10], [3.0, 1.0], name="loss"))
        >>> d.label, d.beta, d.smooth.tolist()
        ('loss', 0.0, [3.0, 1.0])
    """
    b = auto_beta(len(curve)) if beta is None else beta
    return CurveData(
        label or curve.name or "value", curve.step, curve.value, ema(curve.value, b), b
    )


class LRData(NamedTuple):
    """A learning-rate schedule over ``0 … total-1``, thinned to at most ~2000 points."""

    step: IntArray
    lr: FloatArray
    kind: str


def lr_data(schedule: Schedule, total: int, max_points: int = 2000) -> LRData:
    """The schedule's LR at evenly spread steps (always including the first and last).

    Example:
        >>> s = Schedule.from_spec({"kind": "wsd", "peak": 1.0, "total": 10, "decay_start": 8})
        >>> d = lr_data(s, 10)
        >>> d.step.tolist()[-3:], d.lr.tolist()[-3:]
        ([7, 8, 9], [1.0, 1.0, 0.5])
    """
    total = _count("total", total, 1)
    # at least 2: the first and the last step are always drawn (0 drew an empty schedule)
    max_points = _count("max_points", max_points, 2)
    lrs = schedule.array(total)
    idx = np.unique(np.linspace(0, total - 1, min(total, max_points)).round().astype(np.int64))
    return LRData(idx, np.asarray(lrs[idx], dtype=np.float64), schedule.kind)


class FinalData(NamedTuple):
    """The forecast distribution of the value at the last step."""

    step: int
    median: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float


class BandData(NamedTuple):
    """A forecast band from ``cutoff_step`` on: median, 80% and 95% intervals per step.

    ``actual_final`` is the smoothed value the run really reached at ``final.step`` when the
    run got there (a forecast made from its beginning, judged by its end), else None.
    """

    cutoff_step: int
    step: IntArray
    median: FloatArray
    lo80: FloatArray
    hi80: FloatArray
    lo95: FloatArray
    hi95: FloatArray
    final: FinalData
    method: str
    actual_final: float | None


def band_data(fc: Forecast, cutoff_step: int, actual_final: float | None = None) -> BandData:
    """The band and final interval of a forecast made at ``cutoff_step``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> fc = Forecast([10, 20], 2.0 + 0.1 * rng.standard_normal((400, 2)))
        >>> b = band_data(fc, cutoff_step=9)
        >>> bool(b.lo95[1] < b.lo80[1] < b.median[1] < b.hi80[1] < b.hi95[1]), b.final.step
        (True, 20)
    """
    lo80, hi80 = fc.interval(0.8)
    lo95, hi95 = fc.interval(0.95)
    f80 = fc.final.interval(0.8)
    f95 = fc.final.interval(0.95)
    final = FinalData(int(fc.steps[-1]), fc.final.median, f80[0], f80[1], f95[0], f95[1])
    return BandData(
        cutoff_step, fc.steps, fc.median, lo80, hi80, lo95, hi95, final, fc.method, actual_final
    )


#: the trend at a point is a straight line fitted to this share of the curve's points around it
#: (half of it at the ends). On the demo's per-step loss (noise 0.063 a step), the line through
#: the last 2% ended 0.03 above the loss's level (1.136, where a line through the last 10 or 20%
#: gives 1.105-1.107): 5% at the end keeps the noise of the end value near 0.015
TREND_SHARE = 0.1
#: ... at least this many points on each side (a short eval curve) and at most this many (a
#: million-step per-step log: 500 points already cut the noise ~20x)
TREND_HALF = (4, 500)


def trend(curve: Curve) -> FloatArray:
    """The curve's trend at each finite point: a local straight-line fit to its neighbours.

    Each point's value is the least-squares line through the points up to ``h`` either side
    (``h`` = 5% of the points, 4 to 500), evaluated at that point. Inside the curve the window
    is centred; at the ends it is one-sided, so the last value is where the line through the
    last points ends, not their mean (which lags behind a curve still falling). This is the
    trend a ``noise=False`` forecast forecasts, and what :func:`reached` reads off.

    Example:
        >>> c = Curve(np.arange(10), 5.0 - 0.5 * np.arange(10) + 0.1 * (-1.0) ** np.arange(10))
        >>> t = trend(c)
        >>> round(float(t[-1]), 2), round(float(t[4]), 2)  # the line itself: 0.5 and 3.0
        (0.48, 3.01)
    """
    c = curve.finite()
    x = c.step.astype(np.float64)
    y = np.asarray(c.value, dtype=np.float64)
    n = y.size
    h = int(np.clip(np.ceil(TREND_SHARE / 2 * n), *TREND_HALF))
    if n < 3:
        return np.array(y, dtype=np.float64)
    h = min(h, n - 1)
    out = np.empty(n)
    # the centred windows: a line fitted to points spread evenly around x_i passes through
    # their mean at x_i, so the interior is a moving average (exact for evenly spaced steps,
    # the usual log; the fit below is used where the window is cut by an end)
    if n > 2 * h:
        csum = np.concatenate([[0.0], np.cumsum(y)])
        out[h : n - h] = (csum[2 * h + 1 :] - csum[: n - 2 * h]) / (2 * h + 1)
    uneven = np.ones(n, dtype=bool)
    if n > 2 * h:
        # a window is even when its 2h step gaps are all equal: no change between neighbours
        d = np.diff(x)
        change = np.concatenate([[0], np.cumsum(d[1:] != d[:-1])])  # changes among d[:k+1]
        mid = np.arange(h, n - h)
        uneven[h : n - h] = change[mid + h - 1] != change[mid - h]
    # the other windows (cut by an end, or over uneven steps: an eval every so often, points
    # missing): the least-squares line from windowed sums, all at once (a loop over a
    # million-point log with gaps took seconds); x centred and scaled keeps the sums exact
    # enough (the fit's slope to ~1e-9 of itself on 1e6 points)
    idx = np.flatnonzero(uneven)
    xs = (x - x.mean()) / max(float(np.ptp(x)), 1.0)
    zero = np.zeros(1)
    s1, sy = (np.concatenate([zero, np.cumsum(v)]) for v in (xs, y))
    sxx, sxy = (np.concatenate([zero, np.cumsum(v)]) for v in (xs * xs, xs * y))
    a, b = np.maximum(idx - h, 0), np.minimum(idx + h + 1, n)
    m = (b - a).astype(np.float64)
    wx, wy = s1[b] - s1[a], sy[b] - sy[a]
    wxx, wxy = sxx[b] - sxx[a], sxy[b] - sxy[a]
    det = m * wxx - wx * wx
    slope = np.divide(m * wxy - wx * wy, det, out=np.zeros_like(det), where=det > 0)
    out[idx] = (wy - slope * wx) / m + slope * xs[idx]
    return out


def reached(curve: Curve) -> float:
    """The value a run reached: its :func:`trend` at the last finite point.

    The one definition of a run's final value in runcast's reports, dashboard, demo and
    ``runcast forecast``: a per-step training loss jumps from one minibatch to the next, so its
    last raw point says little, and the mean of the last points lags behind a curve still
    falling (a WSD cooldown). Other numbers are labelled for what they are ("last point",
    "the law's fit").

    Example (a loss still falling: the last point's mean would lag at 1.02):
        >>> round(reached(Curve(np.arange(100), 1.0 + 0.01 * np.arange(100)[::-1])), 6)
        1.0
    """
    v = curve.finite()
    n = len(v)
    if n == 0:
        raise InvalidInputError(f"The curve {curve.name!r} has no finite values.")
    if n < 3:
        return float(v.value[-1])
    # trend(v)[-1] without the rest of the trend: the line through the last h + 1 points
    h = min(int(np.clip(np.ceil(TREND_SHARE / 2 * n), *TREND_HALF)), n - 1)
    xs = v.step[-h - 1 :].astype(np.float64) - float(v.step[-1])
    ys = np.asarray(v.value[-h - 1 :], dtype=np.float64)
    xm, ym = float(xs.mean()), float(ys.mean())
    slope = float(((xs - xm) * (ys - ym)).sum()) / float(((xs - xm) ** 2).sum())
    return ym - slope * xm
