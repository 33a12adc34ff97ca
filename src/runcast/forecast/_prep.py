"""Input checks and preparation shared by every forecaster.

One place turns a user's curve into what the fitters want: NaNs dropped (with a warning),
the direction found (a loss falls, an accuracy rises), values flipped and rescaled so that every
fitter sees a falling curve of order one, spikes replaced by a running median, dense per-step
curves binned to at most ``max_bins`` medians (so a 140k-step curve fits as fast as a 100-point
one), and the per-step observation noise measured (a forecast of per-step values must include it).

Example:
    >>> import numpy as np, runcast
    >>> steps = np.arange(1, 5001)
    >>> c = runcast.Curve(steps, 2.0 + 3.0 * (steps / 100.0) ** -0.5)
    >>> p = prepare(c, until=10_000)
    >>> p.direction, len(p.x) <= 200, int(p.out_steps[-1])
    ('down', True, 10000)
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.errors import (
    InvalidCurveError,
    InvalidInputError,
    NotEnoughDataError,
    RuncastWarning,
)
from runcast.forecast._types import Direction

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: the fewest finite points any forecaster accepts (4 parameters need more than 4 points)
MIN_POINTS = 6
#: default number of forecast steps between the last observed step and ``until``
N_OUT_STEPS = 200
_MAD = 1.4826  # MAD -> standard deviation for a normal


#: a metric named like this is an evaluation curve (smooth, sparse); like TRAIN_NAME, a
#: training loss (noisy, logged every step or averaged over a few)
EVAL_NAME = re.compile(r"(^|[^a-z])(val|valid|validation|eval|evaluation|test|dev)([^a-z]|$)")
TRAIN_NAME = re.compile(r"(^|[^a-z])(train|training)([^a-z]|$)|^loss$")


def fall_scale(down: FloatArray, center: float) -> float:
    """The scale a falling curve is normalised by: how far its 95th percentile lies above its
    recent level ``center`` (else its range, else a thousandth of the level, never 0).

    Example:
        >>> round(fall_scale(np.array([5.0, 3.0, 2.0, 1.0]), 1.0), 6), fall_scale(np.ones(3), 1.0)
        (3.7, 0.001)
    """
    spread = float(np.quantile(down, 0.95) - center)
    return spread if spread > 0 else max(float(np.ptp(down)), abs(center) * 1e-3, 1e-12)


def is_dense(steps: npt.ArrayLike) -> bool:
    """Whether a curve was logged at least every other step over its span.

    Example:
        >>> is_dense(range(0, 500)), is_dense(range(0, 5000, 50))
        (True, False)
    """
    s = np.asarray(steps)
    if s.size < 2:
        return False
    return bool(s.size >= 0.5 * (float(s.max()) - float(s.min()) + 1.0))


def curve_kind(curve: Curve) -> str:
    """``"train"`` (a training loss) or ``"eval"`` (an evaluation curve): ``auto`` picks for each.

    The name decides when it says (``val_loss``, ``eval/accuracy``, ``test_loss`` are
    evaluations; ``train_loss``, ``train/loss`` and a bare ``loss``, what the HF Trainer and most
    loops call the training loss, are training losses); otherwise a curve logged at least every
    other step is a training loss. On runcast's corpus both rules agree on every curve.

    Example:
        >>> import runcast
        >>> curve_kind(runcast.Curve([0, 10, 20], [3.0, 2.0, 1.5], name="eval_loss"))
        'eval'
        >>> curve_kind(runcast.Curve([0, 10, 20], [3.0, 2.0, 1.5], name="loss"))
        'train'
        >>> curve_kind(runcast.Curve([0, 1, 2], [3.0, 2.0, 1.5]))  # no name: every step
        'train'
    """
    name = (curve.name or "").lower()
    if EVAL_NAME.search(name):
        return "eval"
    if TRAIN_NAME.search(name):
        return "train"
    return "train" if is_dense(curve.step) else "eval"


@dataclass(frozen=True)
class Prepared:
    """A curve ready for fitting, in the falling orientation and a normalised scale.

    ``y = sign * (value - center) / scale`` where ``sign`` is +1 for a loss, -1 for an
    accuracy; ``to_values`` undoes it. ``x`` are the (binned) steps of the fitted points.
    """

    x: FloatArray
    y: FloatArray
    weight: FloatArray  # points per bin (1 for unbinned curves)
    direction: Direction
    sign: float
    center: float
    scale: float
    first_step: int
    last_step: int
    until: int
    out_steps: IntArray
    noise_sd: float  # per-step observation noise, in the curve's own units
    n_points: int  # finite points in the observed curve
    constant: bool

    def to_values(self, y: FloatArray) -> FloatArray:
        """Map normalised falling-orientation values back to the curve's own units."""
        return self.center + self.sign * self.scale * y

    def xnorm(self, steps: npt.ArrayLike) -> FloatArray:
        """Steps on the families' scale: 1 at the last observed step, never 0 (step 0 allowed).

        Example:
            >>> import runcast
            >>> p = prepare(runcast.Curve(range(0, 100, 10), [5, 4, 3, 2.5, 2, 1.8, 1.7, 1.6, 1.5,
            ...                                               1.45]), until=200)
            >>> p.xnorm([0, 90]).round(4).tolist()
            [0.011, 1.0]
        """
        return np.asarray((np.asarray(steps, dtype=np.float64) + 1.0) / (self.last_step + 1.0))

    @property
    def recent_drop(self) -> float:
        """How far the (normalised) curve fell over the second half of the observed steps.

        The scale of the run's recent progress: what a forecast's uncertainty per unit of
        horizon is measured in, whatever the curve's units or how far back the fit reaches.
        """
        k = max(1, self.y.size // 20)
        end = float(np.median(self.y[-k:]))
        return abs(float(np.interp(self.last_step / 2.0, self.x, self.y)) - end)

    @property
    def noise_y(self) -> float:
        """The per-step observation noise in normalised units."""
        return self.noise_sd / self.scale


def drop_nan(curve: Curve) -> Curve:
    """The curve without NaN points, warning with how many were dropped."""
    n = curve.n_missing
    if n:
        warnings.warn(
            f"Dropped {n} missing (NaN) value{'s' if n > 1 else ''} of {len(curve)} before "
            "forecasting.",
            RuncastWarning,
            stacklevel=3,
        )
        return curve.finite()
    return curve


def detect_direction(value: FloatArray, name: str | None = None) -> Direction:
    """``"up"`` if the curve rises overall (an accuracy), else ``"down"`` (a loss).

    Compares the medians of the first and last tenth of the points; when they are equal within
    the noise, a name containing ``acc`` breaks the tie.

    Example:
        >>> detect_direction(np.array([0.1, 0.3, 0.5, 0.6, 0.65, 0.7]))
        'up'
    """
    k = max(1, value.size // 10)
    head, tail = float(np.median(value[:k])), float(np.median(value[-k:]))
    if tail > head:
        return "up"
    if tail < head:
        return "down"
    lowered = (name or "").lower()
    return "up" if any(s in lowered for s in ("acc", "auc", "f1", "score")) else "down"


def despike(y: FloatArray, window: int = 5, k: float = 6.0) -> FloatArray:
    """Replace points more than ``k`` robust SDs from their running median by that median.

    A Hampel filter: a single diverging batch or a NaN-adjacent glitch must not bend the fit.

    Example:
        >>> despike(np.array([5.0, 4.0, 3.0, 50.0, 2.0, 1.5, 1.2])).tolist()
        [5.0, 4.0, 3.0, 3.0, 2.0, 1.5, 1.2]
    """
    n = y.size
    if n < window:
        return y
    h = window // 2
    padded = np.pad(y, h, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(padded, window)
    med = np.median(win, axis=1)
    resid = np.abs(y - med)
    mad = _MAD * float(np.median(resid))
    if mad == 0.0:
        mad = _MAD * float(np.median(np.abs(np.diff(y)))) or 1e-12
    out = np.where(resid > k * mad, med, y)
    return np.asarray(out, dtype=np.float64)


def noise_sd(value: FloatArray) -> float:
    """The per-point noise SD, from second differences (blind to a locally linear trend).

    Measured on the last 30% of points, where the curve is flattest.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> round(noise_sd(np.linspace(3, 2, 5000) + 0.1 * rng.standard_normal(5000)), 2)
        0.1
    """
    tail = value[int(value.size * 0.7) :]
    if tail.size < 5:
        tail = value
    if tail.size < 3:
        return 0.0
    d2 = tail[2:] - 2.0 * tail[1:-1] + tail[:-2]
    # var(second difference) = 6 var(noise) for white noise
    return float(_MAD * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0))


def bin_curve(
    step: FloatArray, value: FloatArray, max_bins: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Medians of ``value`` in ``max_bins`` bins of equally many points: (x, y, count).

    Dense curves are logged at (nearly) even steps, so equal-count bins are equal-width bins,
    which keep most of the weight on the late part of the run that governs the extrapolation;
    and a reshape makes the medians one vectorised call (a 140k-point curve bins in ~2 ms).
    The few oldest points that do not fill a bin are dropped.

    Example:
        >>> x, y, n = bin_curve(np.arange(10.0), np.arange(10.0), 3)
        >>> x.tolist(), n.tolist()
        ([2.0, 5.0, 8.0], [3.0, 3.0, 3.0])
    """
    if step.size <= max_bins:
        return step, value, np.ones_like(value)
    k = step.size // max_bins
    drop = step.size - k * max_bins
    xs = step[drop:].reshape(max_bins, k).mean(axis=1)
    ys = np.median(value[drop:].reshape(max_bins, k), axis=1)
    return xs, ys, np.full(max_bins, float(k))


def out_grid(last_step: int, until: int, steps: npt.ArrayLike | None, n: int) -> IntArray:
    """The forecast steps: ``steps`` if given (checked), else up to ``n`` steps ending at until."""
    if steps is not None:
        raw = np.asarray(steps)
        if raw.ndim != 1 or raw.dtype.kind not in "iuf":
            raise InvalidInputError(
                f"steps= must be a list of step numbers, but got {str(steps)[:60]!r}."
            )
        if raw.dtype.kind == "f" and not np.all(np.isfinite(raw) & (raw == np.round(raw))):
            raise InvalidInputError(
                f"steps= must be whole step numbers, but got {str(steps)[:60]!r}."
            )
        st = np.unique(raw.astype(np.int64))
        if st.size == 0:
            raise InvalidInputError("steps= is empty; pass at least one step to forecast.")
        if st[0] <= last_step or st[-1] > until:
            raise InvalidInputError(
                f"steps= must lie after the last observed step {last_step} and at most "
                f"until={until}, but got {int(st[0])}..{int(st[-1])}."
            )
        return st
    grid = np.unique(np.round(np.linspace(last_step, until, n + 1)[1:]).astype(np.int64))
    return grid[grid > last_step]


def as_until(until: object) -> int:
    """``until`` as a step number: a whole number up to 2**53 (``int``, numpy or a whole float).

    Example:
        >>> as_until(10_000.0)
        10000
        >>> as_until("a")
        Traceback (most recent call last):
        ...
        runcast.errors.InvalidInputError: until must be a whole step number, but got 'a'.
    """
    try:
        value = float(until)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(until, bool) or not np.isfinite(value) or value != round(value):
        raise InvalidInputError(f"until must be a whole step number, but got {until!r}.")
    if abs(value) > 2**53:
        raise InvalidInputError(
            f"until={until!r} is past the 2**53 steps a forecast can count exactly; forecast "
            "an earlier step."
        )
    return int(value)


#: values beyond this are refused: the fits' squared differences would overflow
MAX_ABS_VALUE = 1e100


def check_magnitude(value: FloatArray) -> None:
    """Refuse values too large to forecast: every method squares differences of them.

    Past ~1e154 the squares overflow to inf and a posterior's weights turn NaN; no metric worth
    forecasting lives anywhere near :data:`MAX_ABS_VALUE`.

    Example:
        >>> check_magnitude(np.array([3.0, 1e12]))
        >>> check_magnitude(np.array([1e308, -1e308]))
        Traceback (most recent call last):
        ...
        runcast.errors.InvalidCurveError: The curve's values reach 1e+308, too large to forecast (the limit is 1e+100); rescale the metric (e.g. log it, or divide by a constant).
    """  # noqa: E501
    biggest = float(np.max(np.abs(value))) if value.size else 0.0
    if biggest > MAX_ABS_VALUE:
        raise InvalidCurveError(
            f"The curve's values reach {biggest:.3g}, too large to forecast (the limit is "
            f"{MAX_ABS_VALUE:.0e}); rescale the metric (e.g. log it, or divide by a constant)."
        )


def prepare(
    curve: Curve,
    until: int,
    *,
    steps: npt.ArrayLike | None = None,
    direction: Direction | None = None,
    max_bins: int = 200,
    skip: float = 0.1,
    n_out: int = N_OUT_STEPS,
) -> Prepared:
    """Check and prepare ``curve`` for forecasting it up to step ``until``.

    Args:
        curve: the observed beginning of the run.
        until: the last step to forecast (must be after the curve's last step).
        steps: specific steps to forecast instead of the default grid.
        direction: ``"down"`` (loss) or ``"up"`` (accuracy); None detects it.
        max_bins: dense curves are reduced to this many bin medians.
        skip: the first ``skip`` fraction of the observed steps is left out of the fit (the
            warm-up and the first rapid drop follow no extrapolation family).
        n_out: the number of default forecast steps.
    """
    if not isinstance(curve, Curve):
        raise InvalidInputError(
            f"forecast needs a runcast.Curve, but got {type(curve).__name__}; "
            "build one with runcast.Curve(steps, values)."
        )
    curve = drop_nan(curve)
    n = len(curve)
    if n < MIN_POINTS:
        raise NotEnoughDataError(
            f"Forecasting needs at least {MIN_POINTS} finite points, but the curve has {n}. "
            "Log the metric more often, or wait for more steps."
        )
    last = curve.last_step
    until = as_until(until)
    if until <= last:
        raise InvalidInputError(
            f"until={until} must be after the curve's last observed step {last}; "
            "there is nothing left to forecast."
        )
    if direction is not None and direction not in ("down", "up"):
        raise InvalidInputError(f"direction must be 'down', 'up' or None, but got {direction!r}.")
    step = curve.step.astype(np.float64)
    value = np.asarray(curve.value, dtype=np.float64)
    check_magnitude(value)
    dirn: Direction = direction or detect_direction(value, curve.name)
    sign = 1.0 if dirn == "down" else -1.0
    sd = noise_sd(value)
    start = int(np.searchsorted(step, step[0] + skip * (step[-1] - step[0])))
    if n - start < MIN_POINTS:
        start = max(0, n - MIN_POINTS)
    fs, fv = step[start:], value[start:]
    x, yv, w = bin_curve(fs, fv, max_bins)
    if w.max() == 1.0:
        yv = despike(yv)
    down = sign * yv
    k = max(1, down.size // 20)
    center_down = float(np.median(down[-k:]))
    constant = bool(np.ptp(value) == 0.0)
    scale = fall_scale(down, center_down)
    y = (down - center_down) / scale
    return Prepared(
        x=x,
        y=y,
        weight=w,
        direction=dirn,
        sign=sign,
        center=sign * center_down,
        scale=scale,
        first_step=int(curve.step[0]),
        last_step=last,
        until=until,
        out_steps=out_grid(last, until, steps, n_out),
        noise_sd=sd,
        n_points=n,
        constant=constant,
    )
