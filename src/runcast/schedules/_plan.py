"""The schedule planner: the LR schedule a fitted law predicts to end at the lowest loss.

Given a law (anything with ``predict(schedule, steps)``; ``forecast(schedule, steps)`` too for
uncertainty), a budget of steps, the peak LR and the warmup, :func:`plan_schedule` searches

* the WSD family (decay start, length and shape, end LR) and cosine (end LR): a grid, then a
  bounded local refine of the best cells;
* free form, as the multi-power law paper optimises a schedule: a non-increasing LR after warmup
  set by a few knots, optimised by L-BFGS-B from the best family schedule;

and reports the best schedule, its predicted final loss and the gain over a cosine baseline. With
``law.forecast``, the final losses come as distributions and the gain as a distribution with
``P(gain > 0)``: paired differences of the two forecasts' paths (runcast's laws draw both from
the same parameter samples for a given seed, so parameter uncertainty cancels where it should),
widened by the law's error on unseen schedules (its ``model_error``, a relative sd) taken as
independent between the two schedules — conservative, since such errors are partly shared.

Example:
    >>> import numpy as np
    >>> from runcast.schedules import plan_schedule
    >>> class Toy:  # loss falls with the LR area, and a low final LR helps
    ...     def predict(self, schedule, steps):
    ...         lrs = schedule.array(int(np.max(steps)) + 1)
    ...         return np.array([1.0 / (1.0 + lrs.sum()) + 2.0 * lrs[-20:].mean()])
    >>> plan = plan_schedule(Toy(), budget=200, peak=1.0, warmup=10, free_form=False)
    >>> plan.schedule.kind, plan.gain > 0
    ('wsd', True)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.errors import FitError, InvalidInputError, ScheduleError
from runcast.forecast._types import Distribution
from runcast.schedules._base import Schedule
from runcast.schedules._kinds import DECAY_SHAPES
from runcast.schedules._search import (
    LossLaw,
    Objective,
    Setting,
    describe,
    search_cosine,
    search_free,
    search_wsd,
)

FloatArray = npt.NDArray[np.float64]

FAMILIES = ("wsd", "cosine")


@dataclass(frozen=True)
class Plan:
    """The planner's answer.

    Attributes:
        schedule: the schedule with the lowest predicted final loss.
        family: where it came from: ``"wsd"``, ``"cosine"`` or ``"free"``.
        loss: its predicted final loss (the law's point prediction).
        baseline: the schedule it is compared with (default: cosine to 0.1x peak).
        baseline_loss: the baseline's predicted final loss.
        final: the distribution of the final loss (None without ``law.forecast``, or when its
            forecast is unpinned: the fitted runs leave the law's parameters loose).
        baseline_final: the same for the baseline.
        gain_samples: paired samples of ``baseline - planned`` final loss (None without it).
        candidates: the best schedule and loss of each family searched.
        evaluations: how many times the law was evaluated.
        seconds: how long planning took.
    """

    schedule: Schedule
    family: str
    loss: float
    baseline: Schedule
    baseline_loss: float
    final: Distribution | None = None
    baseline_final: Distribution | None = None
    gain_samples: Distribution | None = None
    candidates: dict[str, tuple[Schedule, float]] = field(default_factory=dict)
    evaluations: int = 0
    seconds: float = 0.0

    @property
    def gain(self) -> float:
        """Predicted final-loss gain over the baseline (positive: the plan is better)."""
        return self.baseline_loss - self.loss

    @property
    def prob_gain(self) -> float | None:
        """P(gain > 0) from the paired forecast paths, or None without ``law.forecast``."""
        return None if self.gain_samples is None else self.gain_samples.prob_above(0.0)

    def gain_interval(self, level: float = 0.8) -> tuple[float, float] | None:
        """The central ``level`` interval of the gain, or None without ``law.forecast``."""
        return None if self.gain_samples is None else self.gain_samples.interval(level)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (schedules as specs; free-form ones as a few LRs)."""
        out: dict[str, Any] = {
            "family": self.family,
            "schedule": describe(self.schedule),
            "loss": self.loss,
            "baseline": describe(self.baseline),
            "baseline_loss": self.baseline_loss,
            "gain": self.gain,
            "prob_gain": self.prob_gain,
            "candidates": {k: {"loss": v} for k, (_, v) in self.candidates.items()},
            "evaluations": self.evaluations,
            "seconds": self.seconds,
        }
        for key, dist in (
            ("final", self.final),
            ("baseline_final", self.baseline_final),
            ("gain_distribution", self.gain_samples),
        ):
            out[key] = None if dist is None else dist.to_dict()
        return out

    def __repr__(self) -> str:
        p = "" if self.prob_gain is None else f", P(gain>0)={self.prob_gain:.2f}"
        return (
            f"Plan({self.family}: loss {self.loss:.5g}, baseline {self.baseline_loss:.5g}, "
            f"gain {self.gain:+.4g}{p})"
        )


def _check(budget: int, peak: float, warmup: int, floor: float) -> Setting:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 2:
        raise InvalidInputError(f"budget must be a whole number of steps >= 2, but got {budget!r}.")
    for name, value in (("peak", peak), ("floor", floor)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ScheduleError(f"{name} must be an LR (a number), but got {value!r}.")
    whole = isinstance(warmup, (int, np.integer)) or (
        isinstance(warmup, (float, np.floating)) and float(warmup).is_integer()
    )
    if isinstance(warmup, bool) or not whole:
        raise ScheduleError(f"warmup must be a whole number of steps, but got {warmup!r}.")
    if not np.isfinite(peak) or peak <= 0:
        raise ScheduleError(f"peak must be a finite positive LR, but got {peak!r}.")
    if not 0 <= warmup < budget - 1:
        raise ScheduleError(
            f"warmup ({warmup}) must be at least 0 and leave room in the budget ({budget} steps)."
        )
    if not np.isfinite(floor) or not 0 <= floor < peak:
        raise ScheduleError(
            f"floor (the lowest LR a plan may use) must be in [0, peak={peak!r}), but got "
            f"{floor!r}."
        )
    return Setting(int(budget), float(peak), int(warmup), float(floor))


def _forecast_final(
    law: Any, schedule: Schedule, step: int, n_paths: int, seed: int
) -> FloatArray | None:
    try:
        fc = law.forecast(schedule, [step], n_paths=n_paths, seed=seed)
    except TypeError:  # a law whose forecast takes no n_paths/seed
        fc = law.forecast(schedule, [step])
    if fc.info.get("unpinned"):
        return None  # its interval means nothing (the law warned): the point prediction stands
    return np.asarray(fc.samples, dtype=np.float64)[:, -1]


def paired_gain(
    law: Any,
    schedule: Schedule,
    baseline: Schedule,
    step: int,
    *,
    n_paths: int = 512,
    seed: int = 0,
) -> tuple[Distribution | None, Distribution | None, Distribution | None]:
    """Final-loss distributions of two schedules at ``step`` and of ``baseline - schedule``.

    The gain pairs the two forecasts path by path (same seed: the same parameter draws), then
    adds the law's ``model_error`` (a relative sd) back as independent between the schedules;
    None when the forecasts' paths cannot be paired. All three are None when either forecast
    is unpinned (``info["unpinned"]``: the fitted runs leave the law's parameters loose).

    Example:
        >>> from runcast.forecast.laws import MultiPowerLaw
        >>> law = MultiPowerLaw.published("25M")
        >>> cos = Schedule.from_spec({"kind": "cosine", "peak": 3e-4, "end": 3e-5,
        ...                           "warmup": 2160, "total": 24000})
        >>> wsd = Schedule.from_spec({"kind": "wsd", "peak": 3e-4, "end": 3e-5,
        ...                           "warmup": 2160, "total": 24000, "decay_start": 20000})
        >>> _, _, gain = paired_gain(law, wsd, cos, 23999)
        >>> round(gain.median, 2), gain.prob_above(0.0) > 0.9
        (0.05, True)
    """
    a = _forecast_final(law, schedule, step, n_paths, seed)
    b = _forecast_final(law, baseline, step, n_paths, seed)
    if a is None or b is None:
        return None, None, None
    gain = None
    if a.shape == b.shape:
        # the shared part of the model error cancels in b - a; add it back as independent
        sd = float(getattr(law, "model_error", 0.0) or 0.0)
        rng = np.random.default_rng(seed + 1)
        extra = rng.standard_normal(a.size) * sd * np.sqrt(2.0) * float(np.median(b))
        gain = Distribution(b - a + extra)
    return Distribution(a), Distribution(b), gain


def plan_schedule(
    law: LossLaw,
    budget: int,
    peak: float,
    *,
    warmup: int = 0,
    floor: float = 0.0,
    families: Sequence[str] = FAMILIES,
    decay_shapes: Sequence[str] = DECAY_SHAPES,
    free_form: bool = True,
    baseline: Schedule | Mapping[str, Any] | None = None,
    knots: int = 16,
    max_evals: int = 800,
    n_paths: int = 512,
    seed: int = 0,
) -> Plan:
    """Find the schedule with the lowest predicted final loss for ``budget`` steps.

    Args:
        law: a fitted law: ``law.predict(schedule, steps) -> array``; if it also has
            ``law.forecast(schedule, steps) -> Forecast``, the plan carries uncertainty.
        budget: the run's length in steps; the loss at step ``budget - 1`` is minimised.
        peak: the peak LR (kept fixed: the planner shapes the schedule, not its scale).
        warmup: linear warmup steps, shared by every schedule (and the baseline).
        floor: the lowest LR a planned schedule may anneal to. A law fitted on runs that never
            went below some LR extrapolates beneath it; pass that LR to stay where it was fitted.
        families: the families to search, from ``("wsd", "cosine")``.
        decay_shapes: the WSD cooldown shapes to consider (default: all of ``DECAY_SHAPES``).
        free_form: also optimise a free-form non-increasing schedule, started from the best
            family schedule (the slowest part: about ``max_evals`` law evaluations).
        baseline: the schedule to compare with; default cosine from ``peak`` to ``peak / 10``.
        knots: the free-form schedule's number of knots.
        max_evals: the free-form optimiser's budget of law evaluations.
        n_paths, seed: the forecast paths drawn for the uncertainty.

    Example:
        >>> from runcast.forecast.laws import MultiPowerLaw
        >>> law = MultiPowerLaw.published("25M")
        >>> plan = plan_schedule(law, budget=24000, peak=3e-4, warmup=2160, free_form=False)
        >>> plan.family, round(plan.gain, 2), plan.prob_gain > 0.9
        ('wsd', 0.06, True)
    """
    t0 = time.perf_counter()
    st = _check(budget, peak, warmup, floor)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or (not families and not free_form):
        raise InvalidInputError(
            f"families must be drawn from {FAMILIES} (or empty with free_form=True), "
            f"but got {list(families)!r}."
        )
    bad_shapes = [s for s in decay_shapes if s not in DECAY_SHAPES]
    if bad_shapes or not decay_shapes:
        raise InvalidInputError(
            f"decay_shapes must be drawn from {DECAY_SHAPES}, but got {list(decay_shapes)!r}."
        )
    if free_form and (isinstance(knots, bool) or not isinstance(knots, (int, np.integer))
                      or knots < 2):  # fmt: skip
        raise InvalidInputError(f"knots must be a whole number >= 2, but got {knots!r}.")
    if free_form and max_evals < 1:
        raise InvalidInputError(f"max_evals must be at least 1, but got {max_evals!r}.")
    f = Objective(law, st)
    if baseline is None:
        base = Schedule.from_spec(st.spec("cosine", end=0.1 * st.peak))
    else:
        base = baseline if isinstance(baseline, Schedule) else Schedule.from_spec(baseline)
        base.check_covers(st.budget, "the budget")
    base_loss = f(base)
    if not np.isfinite(base_loss):
        raise InvalidInputError(
            f"The law's prediction for the baseline {base!r} is not finite or not a positive "
            "loss; check the law's fit, or plan a budget closer to the runs it was fitted on."
        )
    found: dict[str, tuple[Schedule, float]] = {}
    if "wsd" in families:
        val, sched = search_wsd(f, decay_shapes)
        found["wsd"] = (sched, val)
    if "cosine" in families:
        val, sched = search_cosine(f)
        found["cosine"] = (sched, val)
    if free_form:
        start = min(found.values(), key=lambda p: p[1])[0] if found else base
        val, sched = search_free(f, start, knots=knots, max_evals=max_evals)
        found["free"] = (sched, val)
    family, (best, loss) = min(found.items(), key=lambda kv: kv[1][1])
    if not np.isfinite(loss):
        raise FitError(
            f"The law predicts no finite positive loss for any schedule searched for {st.budget} "
            "steps; it does not hold that far from the runs it was fitted on. Plan a shorter "
            "budget, or refit the law on runs closer to this one."
        )
    final = base_final = gain = None
    if callable(getattr(law, "forecast", None)):
        final, base_final, gain = paired_gain(law, best, base, st.last, n_paths=n_paths, seed=seed)
    return Plan(
        schedule=best,
        family=family,
        loss=loss,
        baseline=base,
        baseline_loss=base_loss,
        final=final,
        baseline_final=base_final,
        gain_samples=gain,
        candidates=found,
        evaluations=f.calls,
        seconds=time.perf_counter() - t0,
    )
