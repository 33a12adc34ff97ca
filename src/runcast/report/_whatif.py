"""Schedule what-ifs: what a run would have reached under other LR schedules of the same length.

A loss law (``runcast.fit_law``) is fitted to the run's curve under its own schedule, then asked
to predict the curve under alternatives: cosine, constant, and WSD with short and long cooldowns.

Example:
    >>> s = Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "end": 1e-5, "total": 100})
    >>> sorted(alternative_schedules(s, 100))[:3]
    ['constant', 'cosine', 'wsd 10% decay']
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.errors import FitError, InvalidInputError, RuncastWarning
from runcast.schedules import Schedule

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Scenario(NamedTuple):
    """One schedule and the loss curve the fitted law predicts under it."""

    name: str
    step: IntArray
    lr: FloatArray
    loss: FloatArray
    final: float
    lo80: float
    hi80: float
    is_actual: bool


class WhatIfData(NamedTuple):
    """The run's own schedule and its alternatives, each with a predicted curve."""

    law: str
    total: int
    scenarios: tuple[Scenario, ...]
    #: alternatives left out: the law takes them to a loss <= 0, which is no prediction
    dropped: tuple[str, ...] = ()

    def best(self) -> Scenario:
        """The scenario with the lowest predicted final loss."""
        return min(self.scenarios, key=lambda s: s.final)


def _warmup_of(lrs: FloatArray) -> int:
    """Warmup steps of a recorded LR: through the first step at 99.9% of the peak (0 if the
    first step is there already)."""
    first = int(np.argmax(lrs >= 0.999 * lrs.max()))
    return first + 1 if first > 0 else 0


def alternative_schedules(schedule: Schedule, total: int) -> dict[str, Schedule]:
    """Schedules of the same length, peak, warmup and final LR as ``schedule``, other shapes.

    Example:
        >>> s = Schedule.from_spec({"kind": "constant", "peak": 1e-3, "total": 50})
        >>> alt = alternative_schedules(s, 50)
        >>> alt["cosine"].to_spec()["end"], alt["wsd 20% decay"](39)
        (1e-05, 0.001)
    """
    if total < 10:
        raise InvalidInputError(f"What-if schedules need at least 10 steps, but got {total=}.")
    lrs = np.asarray(schedule.array(total), dtype=np.float64)
    peak = float(lrs.max())
    if peak <= 0:
        raise InvalidInputError("The run's schedule is zero everywhere; nothing to compare.")
    spec = schedule.to_spec() if schedule.kind != "recorded" else {}
    # a spec's own fields are exact; a recorded LR is read off its array
    warmup = int(spec.get("warmup", min(_warmup_of(lrs), total // 4)))
    end = float(spec.get("end", lrs[-1]))
    if end >= 0.5 * peak:
        # a schedule that ends at its peak (constant) is compared with ones annealing to 1%
        end = 0.01 * peak
    base: dict[str, object] = {"peak": peak, "warmup": warmup, "total": total}
    for k in ("init", "warmup_shape"):
        if k in spec:
            base[k] = spec[k]
    specs: dict[str, dict[str, object]] = {
        "cosine": {"kind": "cosine", "end": end},
        "constant": {"kind": "constant"},
    }
    for frac in (0.1, 0.2, 0.4):
        specs[f"wsd {round(frac * 100)}% decay"] = {
            "kind": "wsd",
            "end": end,
            "decay_start": max(warmup, round(total * (1.0 - frac))),
        }
    return {name: Schedule.from_spec({**spec, **base}) for name, spec in specs.items()}


def whatif_data(
    curve: Curve,
    schedule: Schedule,
    total: int,
    n_points: int = 200,
    alternatives: dict[str, Schedule] | None = None,
) -> WhatIfData:
    """Fit a law to ``curve`` under ``schedule``; predict it under each alternative to ``total``.

    Alternatives whose LR equals the run's own schedule at every step are dropped (they would
    repeat the run's own line).

    Example (a loss that rewards annealing: the constant schedule ends highest):
        >>> s = Schedule.from_spec({"kind": "wsd", "peak": 1e-3, "end": 1e-5, "total": 200,
        ...                         "decay_start": 160})
        >>> lrs = s.array()
        >>> loss = 2.0 + (1 + np.cumsum(lrs) / 1e-3) ** -0.5 - 0.2 * (1e-3 - lrs) / 1e-3
        >>> w = whatif_data(Curve(np.arange(200), loss, name="loss"), s, 200, n_points=20)
        >>> max(w.scenarios, key=lambda sc: sc.final).name
        'constant'
    """
    import warnings

    import runcast
    from runcast.forecast._bounds import infer_bounds
    from runcast.forecast._prep import detect_direction
    from runcast.forecast.laws._base import UNPINNED
    from runcast.forecast.laws._fit import POOR_FIT_RESIDUAL

    observed = curve.finite().with_schedule(schedule)
    if len(observed) < 10:
        raise InvalidInputError(
            f"A what-if needs at least 10 observed points to fit a law, but {curve.name!r} has "
            f"{len(observed)}."
        )
    # the laws model a loss falling with the LR's annealing; an accuracy or any metric that
    # rises is no loss, and the schedule with its lowest value would not be the best
    bounds = infer_bounds(curve.name, observed.value)
    rises = detect_direction(observed.value, curve.name) == "up"
    if rises or (bounds is not None and math.isfinite(bounds.hi)):
        raise InvalidInputError(
            f"Schedule what-ifs model a loss, and {curve.name!r} is not one ("
            f"{'it rises' if rises else bounds.why if bounds else ''}); ask for them on a loss "
            "(--key loss or val_loss)."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuncastWarning)  # said below, as the reason for none
        law = runcast.fit_law([observed])
    if law.noise > POOR_FIT_RESIDUAL:
        raise FitError(
            f"The {law.name} law fits this run poorly (typical relative residual "
            f"{law.noise:.2g} > {POOR_FIT_RESIDUAL}), so its what-ifs would be guesses: none is "
            "shown and no schedule is recommended."
        )
    step = np.unique(np.linspace(1, total - 1, min(n_points, total - 1)).round().astype(np.int64))
    own = np.asarray(schedule.array(total), dtype=np.float64)
    alts = alternative_schedules(schedule, total) if alternatives is None else alternatives
    named = [("this run", schedule, True)]
    named += [(n, s, False) for n, s in alts.items() if not np.allclose(s.array(total), own)]
    scenarios, dropped = [], []
    for name, sched, is_actual in named:
        # the line is the law's own prediction (smooth); the interval comes from its forecast,
        # whose paths carry parameter, model and observation noise
        try:
            with warnings.catch_warnings():
                # an unpinned law's interval is left out below: no need to say so at each line
                warnings.filterwarnings("ignore", UNPINNED, RuncastWarning)
                fc = law.forecast(sched, step)
            lo, hi = fc.final.interval(0.8)
        except FitError:
            if is_actual:
                raise  # the run's own schedule: no what-if without it
            dropped.append(name)  # one alternative the law cannot follow, not the whole panel
            continue
        loss = np.asarray(law.predict(sched, step), dtype=np.float64)
        if fc.info.get("unpinned") or not lo <= loss[-1] <= hi:
            # an interval that misses the law's own prediction is broken, not uncertain:
            # show none rather than a wrong one
            lo = hi = float("nan")
        lr = np.asarray(sched.array(total)[step], dtype=np.float64)
        scenarios.append(Scenario(name, step, lr, loss, float(loss[-1]), lo, hi, is_actual))
    return WhatIfData(str(law.name), total, tuple(scenarios), tuple(dropped))
