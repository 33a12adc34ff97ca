"""Forecast: a predictive distribution over the future values of a curve.

A forecast is held as sample paths: ``samples[i, j]`` is the value of path ``i`` at
``steps[j]``. Paths (not only per-step marginals) make joint questions such as "when will the
loss first reach 2.0?" answerable. Forecasters that only know marginals build paths by
quantile coupling (one uniform draw per path), which keeps each step's marginal exact.

Example:
    >>> import numpy as np
    >>> from runcast.forecast import Forecast
    >>> rng = np.random.default_rng(0)
    >>> f = Forecast([100, 200], 2.0 + 0.1 * rng.standard_normal((1000, 2)) - [[0.0, 0.2]])
    >>> round(float(f.final.median), 1), f.prob_below(2.0) > 0.9
    (1.8, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from runcast.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
Direction = Literal["down", "up"]


def _quantile(samples: FloatArray, q: float | FloatArray, axis: int | None = None) -> FloatArray:
    """``np.quantile``, but exact where samples hold ``inf`` ("never reached").

    Linear interpolation between two infinite samples gives NaN (inf - inf); the inverted CDF
    never interpolates, so a median of "never" is ``inf``, not NaN.
    """
    if np.isinf(samples).any():
        return np.asarray(np.quantile(samples, q, axis=axis, method="inverted_cdf"))
    return np.asarray(np.quantile(samples, q, axis=axis))


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"An interval level must be in (0, 1), but got {level=}.")


def _check_q(q: float | npt.ArrayLike) -> None:
    qa = np.asarray(q, dtype=np.float64)
    if ((qa < 0) | (qa > 1) | ~np.isfinite(qa)).any():
        raise InvalidInputError(f"Quantiles must be in [0, 1], but got q={q!r}.")


def _check_value(x: Any, what: str) -> float:
    """A threshold as a float: a real number, not NaN (inf is fine: P(value < inf) = 1)."""
    try:
        v = float(x)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"{what} must be a number, but got {x!r}.") from err
    if v != v:
        raise InvalidInputError(f"{what} must be a number, but got NaN.")
    return v


class Distribution:
    """A distribution over one number, held as samples (may include ``inf`` for "never").

    Example:
        >>> d = Distribution([1.0, 2.0, 3.0, 4.0])
        >>> d.median, d.interval(0.5)
        (2.5, (1.75, 3.25))
    """

    __slots__ = ("samples",)

    def __init__(self, samples: npt.ArrayLike):
        arr = np.sort(np.asarray(samples, dtype=np.float64).ravel())
        if arr.size == 0:
            raise InvalidInputError("A Distribution needs at least one sample.")
        if np.isnan(arr).any():
            raise InvalidInputError("A Distribution's samples cannot be NaN.")
        self.samples = arr

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0 ≤ q ≤ 1)."""
        _check_q(q)
        return float(_quantile(self.samples, q))

    @property
    def median(self) -> float:
        """The median."""
        return self.quantile(0.5)

    @property
    def mean(self) -> float:
        """The mean (``inf`` if any sample is ``inf``)."""
        return float(self.samples.mean())

    def interval(self, level: float = 0.8) -> tuple[float, float]:
        """The central interval holding ``level`` of the mass, e.g. 0.8 → (q10, q90)."""
        _check_level(level)
        a = (1.0 - level) / 2.0
        return self.quantile(a), self.quantile(1.0 - a)

    def prob_below(self, x: float) -> float:
        """P(value < x)."""
        x = _check_value(x, "The threshold")
        return float(np.searchsorted(self.samples, x, side="left") / self.samples.size)

    def prob_above(self, x: float) -> float:
        """P(value > x)."""
        x = _check_value(x, "The threshold")
        return float(1.0 - np.searchsorted(self.samples, x, side="right") / self.samples.size)

    def to_dict(self) -> dict[str, Any]:
        """Median, mean and the 50/80/95% intervals, JSON-ready (``inf`` becomes None)."""

        def j(v: float) -> float | None:
            return None if not np.isfinite(v) else float(v)

        out: dict[str, Any] = {"median": j(self.median), "mean": j(self.mean)}
        for lvl in (0.5, 0.8, 0.95):
            lo, hi = self.interval(lvl)
            out[f"interval_{int(lvl * 100)}"] = [j(lo), j(hi)]
        return out

    def __repr__(self) -> str:
        lo, hi = self.interval(0.8)
        return f"Distribution(median={self.median:.6g}, 80%=[{lo:.6g}, {hi:.6g}])"


@dataclass(eq=False)
class Forecast:
    """A predictive distribution over a curve's values at future ``steps``.

    Args:
        steps: the forecast steps, strictly increasing.
        samples: array ``(n_paths, len(steps))`` of sampled values.
        direction: ``"down"`` for a loss (lower is better), ``"up"`` for an accuracy.
        method: the name of the forecaster that made it.
        info: extra facts about the fit (law parameters, timings, warnings), JSON-ready.
    """

    steps: npt.NDArray[np.int64]
    samples: FloatArray
    direction: Direction = "down"
    method: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        steps: npt.ArrayLike,
        samples: npt.ArrayLike,
        direction: Direction = "down",
        method: str = "",
        info: dict[str, Any] | None = None,
    ):
        raw_steps = np.asarray(steps).ravel()
        if raw_steps.dtype.kind not in "iuf" or not np.all(raw_steps == np.round(raw_steps)):
            raise InvalidInputError(
                f"Forecast steps must be whole step numbers, but got {str(steps)[:60]!r}."
            )
        st = raw_steps.astype(np.int64)
        try:
            sm = np.asarray(samples, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InvalidInputError(f"Forecast samples must be numbers: {err}.") from err
        if sm.ndim == 1:
            sm = sm[None, :]
        if sm.ndim != 2 or sm.shape[1] != st.size:
            raise InvalidInputError(
                f"Forecast samples must have shape (n_paths, {st.size}), but got {sm.shape}."
            )
        if st.size == 0:
            raise InvalidInputError("A Forecast needs at least one step.")
        if sm.shape[0] == 0:
            raise InvalidInputError("A Forecast needs at least one sample path.")
        if st.size > 1 and (np.diff(st) <= 0).any():
            raise InvalidInputError("Forecast steps must be strictly increasing.")
        if not np.isfinite(sm).all():
            raise InvalidInputError("Forecast samples must be finite.")
        if direction not in ("down", "up"):
            raise InvalidInputError(f"direction must be 'down' or 'up', but got {direction!r}.")
        self.steps = st
        self.samples = sm
        self.direction = direction
        self.method = method
        self.info = dict(info or {})

    @classmethod
    def from_quantiles(
        cls,
        steps: npt.ArrayLike,
        levels: npt.ArrayLike,
        values: npt.ArrayLike,
        n_paths: int = 512,
        direction: Direction = "down",
        method: str = "",
        info: dict[str, Any] | None = None,
    ) -> Forecast:
        """Build a forecast from per-step quantiles ``values[k, j]`` at ``levels[k]``.

        Paths are quantile-coupled: path i takes the same probability level at every step,
        which keeps every step's marginal exact (and makes steps monotone in that level).
        """
        lv = np.asarray(levels, dtype=np.float64)
        if (
            lv.ndim != 1
            or lv.size < 2
            or not (np.all(np.diff(lv) > 0) and lv[0] > 0 and lv[-1] < 1)
        ):
            raise InvalidInputError(
                f"levels must be at least two increasing probabilities in (0, 1), but got "
                f"{str(levels)[:60]!r}."
            )
        if int(n_paths) < 1:
            raise InvalidInputError(f"n_paths must be at least 1, but got {n_paths!r}.")
        # quantiles that cross (a quantile model's usual flaw) are rearranged: sorted per step
        qv = np.sort(np.asarray(values, dtype=np.float64), axis=0)
        u = (np.arange(n_paths) + 0.5) / n_paths
        # linear interpolation of each step's quantile function at the path levels
        idx = np.clip(np.searchsorted(lv, u) - 1, 0, lv.size - 2)
        w = np.clip((u - lv[idx]) / (lv[idx + 1] - lv[idx]), 0.0, 1.0)[:, None]
        samples = qv[idx] * (1.0 - w) + qv[idx + 1] * w
        return cls(steps, samples, direction=direction, method=method, info=info)

    # --- per-step summaries -------------------------------------------------------------------
    def quantile(self, q: float) -> FloatArray:
        """The ``q`` quantile at every forecast step."""
        _check_q(q)
        return _quantile(self.samples, q, axis=0)

    @property
    def median(self) -> FloatArray:
        """The median at every forecast step."""
        return self.quantile(0.5)

    @property
    def mean(self) -> FloatArray:
        """The mean at every forecast step."""
        return np.asarray(self.samples.mean(axis=0), dtype=np.float64)

    def interval(self, level: float = 0.8) -> tuple[FloatArray, FloatArray]:
        """The central ``level`` interval at every step, as ``(lo, hi)`` arrays."""
        _check_level(level)
        a = (1.0 - level) / 2.0
        q = _quantile(self.samples, np.array([a, 1.0 - a]), axis=0)
        return q[0], q[1]

    def at(self, step: int) -> Distribution:
        """The distribution at ``step`` (which must be one of the forecast's steps)."""
        j = int(np.searchsorted(self.steps, step))
        if j >= self.steps.size or self.steps[j] != step:
            raise InvalidInputError(
                f"Step {step} is not a forecast step; forecast steps run "
                f"{int(self.steps[0])}..{int(self.steps[-1])} ({self.steps.size} of them)."
            )
        return Distribution(self.samples[:, j])

    @property
    def final(self) -> Distribution:
        """The distribution of the value at the last forecast step."""
        return Distribution(self.samples[:, -1])

    def prob_below(self, x: float, at: int | None = None) -> float:
        """P(value < x) at step ``at`` (default: the last step)."""
        d = self.final if at is None else self.at(at)
        return d.prob_below(x)

    def prob_above(self, x: float, at: int | None = None) -> float:
        """P(value > x) at step ``at`` (default: the last step)."""
        d = self.final if at is None else self.at(at)
        return d.prob_above(x)

    def prob_beats(self, target: float, at: int | None = None) -> float:
        """P(the run beats ``target``): below it for a loss, above it for an accuracy."""
        if self.direction == "down":
            return self.prob_below(target, at)
        return self.prob_above(target, at)

    def steps_to(self, target: float) -> Distribution:
        """The distribution of the first forecast step at which the curve beats ``target``.

        Paths that never reach it within the forecast count as ``inf``; so a median of ``inf``
        means "more likely than not, not within this horizon".
        """
        target = _check_value(target, "The target")
        hit = self.samples <= target if self.direction == "down" else self.samples >= target
        any_hit = hit.any(axis=1)
        first = np.argmax(hit, axis=1)
        out = np.where(any_hit, self.steps[first].astype(np.float64), np.inf)
        return Distribution(out)

    def to_dict(self, levels: tuple[float, ...] = (0.8, 0.95)) -> dict[str, Any]:
        """A JSON-ready summary: steps, median, intervals, the final distribution, metadata."""
        out: dict[str, Any] = {
            "method": self.method,
            "direction": self.direction,
            "steps": self.steps.tolist(),
            "median": self.median.tolist(),
            "final": self.final.to_dict(),
            "info": self.info,
        }
        for lvl in levels:
            lo, hi = self.interval(lvl)
            out[f"interval_{round(lvl * 100)}"] = {"lo": lo.tolist(), "hi": hi.tolist()}
        return out

    def __repr__(self) -> str:
        lo, hi = self.final.interval(0.8)
        return (
            f"Forecast({self.method or 'unknown'}, "
            f"steps {int(self.steps[0])}..{int(self.steps[-1])}, "
            f"final median {self.final.median:.6g}, 80% [{lo:.6g}, {hi:.6g}])"
        )
