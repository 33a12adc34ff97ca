"""The planner's searches: WSD and cosine families (grid + local refine) and a free-form schedule.

Every search minimises one number, the law's predicted loss at the last step of the budget, and
treats the law as a black box (``law.predict(schedule, steps)``). A prediction that is not
finite, or not a positive loss, counts as infinitely bad, so a law that breaks on an extreme
schedule cannot win.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize, minimize_scalar

from runcast.schedules._base import Schedule
from runcast.schedules._kinds import DECAY_SHAPES

FloatArray = npt.NDArray[np.float64]

# the grids: decay shares of the budget, end LRs as shares of the peak
WSD_FRACTIONS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)
WSD_ENDS = (0.0, 0.01, 0.03, 0.1)
COSINE_ENDS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


class LossLaw(Protocol):
    """What the planner needs of a law: the predicted loss of a schedule at given steps."""

    def predict(self, schedule: Schedule, steps: npt.ArrayLike) -> FloatArray: ...


@dataclass(frozen=True)
class Setting:
    """What every planned schedule shares: length, peak LR, warmup, and the lowest LR allowed."""

    budget: int
    peak: float
    warmup: int
    floor: float = 0.0

    def lr(self, share: float) -> float:
        """An LR given as a share of the peak, raised to the floor."""
        return max(share * self.peak, self.floor)

    @property
    def last(self) -> int:
        """The step whose loss is minimised (the last step of the budget)."""
        return self.budget - 1

    def spec(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A spec of ``kind`` with the shared fields filled in."""
        return {
            "kind": kind,
            "peak": self.peak,
            "warmup": self.warmup,
            "total": self.budget,
            **fields,
        }


class Objective:
    """The predicted final loss of a schedule, memoised, with a count of law evaluations."""

    def __init__(self, law: LossLaw, setting: Setting):
        self.law = law
        self.setting = setting
        self.calls = 0
        self._memo: dict[Schedule, float] = {}

    def __call__(self, schedule: Schedule) -> float:
        # only specs are memoised: a recorded schedule's key would hold its whole LR array
        spec = schedule.kind != "recorded"
        hit = self._memo.get(schedule) if spec else None
        if hit is not None:
            return hit
        self.calls += 1
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            out = np.asarray(self.law.predict(schedule, [self.setting.last]), dtype=np.float64)
        val = float(out.ravel()[-1]) if out.size else float("nan")
        # a loss law extrapolated far enough can predict a loss <= 0 (a huge annealing gain);
        # such a schedule is out of the law's range, never the "best" one
        if np.isfinite(val) and val > 0:
            for w in said:  # what the law says of a schedule the search may pick, the user hears
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        else:  # ruled out here: the law's warning about it would only alarm
            val = float("inf")
        if spec and len(self._memo) < 4096:
            self._memo[schedule] = val
        return val


def _best(scored: list[tuple[float, Schedule]]) -> tuple[float, Schedule]:
    return min(scored, key=lambda p: p[0])


def _scalar(
    fn: Callable[[float], float], lo: float, hi: float, tol: float, now: float
) -> tuple[float, float]:
    """Bounded 1-D minimisation from the current value ``now``; returns (argmin, min).

    Brent's method never lands exactly on a bound, and optima often sit there (an end LR of
    0): the bounds and the current value are candidates too, so a refine never makes it worse.
    """
    res = minimize_scalar(fn, bounds=(lo, hi), method="bounded", options={"xatol": tol})
    return min(
        ((float(res.x), float(res.fun)), *((x, fn(x)) for x in (lo, hi, now))), key=lambda p: p[1]
    )


def search_wsd(f: Objective, shapes: Sequence[str] = DECAY_SHAPES) -> tuple[float, Schedule]:
    """The best WSD schedule: grid over decay share x shape x end LR, then refine the best."""
    st = f.setting
    max_frac = 1.0 - st.warmup / st.budget

    def make(frac: float, shape: str, end: float) -> Schedule:
        start = min(max(round(st.budget * (1.0 - frac)), st.warmup), st.budget)
        spec = st.spec("wsd", decay_start=start, decay_shape=shape, end=st.lr(end))
        return Schedule.from_spec(spec)

    # a warmup that fills all but a sliver of the budget leaves no room for the grid's shortest
    # decay (5%): decay over what is left rather than search an empty grid
    fracs = [frac for frac in WSD_FRACTIONS if frac <= max_frac] or [max_frac]
    grid: list[tuple[float, tuple[float, str, float]]] = []
    for shape in shapes:
        for end in WSD_ENDS:
            if shape == "exponential" and end == 0.0:
                continue  # a geometric path cannot reach zero
            for frac in fracs:
                grid.append((f(make(frac, shape, end)), (frac, shape, end)))
    grid.sort(key=lambda p: p[0])
    # refine the three best (shape, end) cells: decay share, then end LR, then share again
    refined: list[tuple[float, Schedule]] = [(grid[0][0], make(*grid[0][1]))]
    seen: list[tuple[str, float]] = []
    for _, (frac, shape, end) in grid:
        if (shape, end) not in seen and len(seen) < 3:
            seen.append((shape, end))
            refined.append(_refine_cell(f, make, max_frac, frac, shape, end))
    return _best(refined)


def _refine_cell(
    f: Objective,
    make: Callable[[float, str, float], Schedule],
    max_frac: float,
    frac: float,
    shape: str,
    end: float,
) -> tuple[float, Schedule]:
    lo_end = 1e-3 if shape == "exponential" else 0.0
    lo_frac = min(0.01, max_frac)  # below 1% only when the warmup leaves less than that
    frac, _ = _scalar(lambda x: f(make(x, shape, end)), lo_frac, max_frac, 0.002, frac)
    end, _ = _scalar(lambda e: f(make(frac, shape, e)), lo_end, 0.5, 0.002, end)
    frac, val = _scalar(lambda x: f(make(x, shape, end)), lo_frac, max_frac, 0.001, frac)
    return val, make(frac, shape, end)


def search_cosine(f: Objective) -> tuple[float, Schedule]:
    """The best cosine schedule over its end LR (a share of the peak), grid then refine."""
    st = f.setting

    def make(end: float) -> Schedule:
        return Schedule.from_spec(st.spec("cosine", end=st.lr(end)))

    val, end = min((f(make(e)), e) for e in COSINE_ENDS)
    lo, hi = max(end - 0.1, 0.0), min(end + 0.1, 1.0)
    end2, val2 = _scalar(lambda e: f(make(e)), lo, hi, 0.002, end)
    return (val2, make(end2)) if val2 < val else (val, make(end))


class FreeForm:
    """A monotone non-increasing LR after warmup, set by ``knots`` values and interpolated.

    The value at knot ``k`` is ``floor + (peak - floor) * exp(-c_k)`` with ``c_0 = 0`` and
    ``c_k = sum_{j<=k} softplus(theta_j)``: any real ``theta`` gives a valid schedule (above the
    floor, never rising), so an unconstrained optimiser can search it. Knots sit closer together
    near the end of the budget, where the decay happens.
    """

    def __init__(self, setting: Setting, knots: int):
        self.setting = setting
        self.knots = int(knots)
        span = setting.budget - 1 - setting.warmup
        s = np.linspace(0.0, 1.0, self.knots)
        self.pos = setting.warmup + span * (1.0 - (1.0 - s) ** 2)
        self.steps = np.arange(setting.warmup, setting.budget, dtype=np.float64)
        self.ramp = np.linspace(0.0, setting.peak, setting.warmup)

    def lrs(self, theta: FloatArray) -> FloatArray:
        """The LR of every step for parameters ``theta`` (length ``knots - 1``)."""
        c = np.concatenate([[0.0], np.cumsum(np.logaddexp(0.0, theta))])
        st = self.setting
        vals = st.floor + (st.peak - st.floor) * np.exp(-c)
        return np.concatenate([self.ramp, np.interp(self.steps, self.pos, vals)])

    def schedule(self, theta: FloatArray) -> Schedule:
        """The recorded schedule for ``theta``."""
        return Schedule.from_array(self.lrs(theta))

    def theta_of(self, schedule: Schedule) -> FloatArray:
        """Parameters whose schedule matches ``schedule`` at the knots (a starting point)."""
        lrs = schedule.array(self.setting.budget)
        at = np.interp(self.pos, np.arange(lrs.size, dtype=np.float64), lrs)
        st = self.setting
        share = (at - st.floor) / (st.peak - st.floor)
        at = np.minimum.accumulate(np.clip(share, 1e-4, 1.0))
        d = np.maximum(np.diff(-np.log(at)), 1e-6)
        return np.asarray(np.log(np.expm1(d)), dtype=np.float64)  # softplus inverse


def search_free(
    f: Objective, start: Schedule, knots: int = 16, max_evals: int = 800
) -> tuple[float, Schedule]:
    """Free-form schedule: L-BFGS-B on the knot parameters, started from ``start``."""
    form = FreeForm(f.setting, knots)
    x0 = form.theta_of(start)

    def loss(theta: FloatArray) -> float:
        return f(form.schedule(theta))

    res = minimize(
        loss,
        x0,
        method="L-BFGS-B",
        # finite-difference gradients: one law evaluation per knot and iteration
        options={"maxfun": int(max_evals), "eps": 1e-4, "ftol": 1e-12, "gtol": 1e-9},
    )
    x = np.asarray(res.x, dtype=np.float64)
    return loss(x), form.schedule(x)


def describe(schedule: Schedule) -> Mapping[str, Any]:
    """A short JSON-ready description: the spec, or for a recorded schedule a few of its LRs."""
    if schedule.kind != "recorded":
        return schedule.to_spec()
    lrs = schedule.array()
    idx = np.unique(np.linspace(0, lrs.size - 1, 11).round().astype(int))
    return {
        "kind": "recorded",
        "steps": int(lrs.size),
        "lr_at": {int(i): float(lrs[i]) for i in idx},
    }
