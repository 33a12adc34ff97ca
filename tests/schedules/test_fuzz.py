"""Random laws, budgets and settings through the planner: a real schedule, or a clear error.

Each case draws a law (the multi-power law's published fit, a momentum law, one whose annealing
gain takes the loss below 0, one fitted on a 300-step run and asked about up to 100x more), a
budget from 2 to 30000 steps, a peak LR from 1e-30 to 10, a warmup up to the whole budget, a
floor, the families, knots and evaluation budget. The plan, when there is one, must be a
schedule of the budget's length with finite LRs between the floor and the peak after warmup,
a positive finite predicted loss, and a positive final-loss distribution; anything else must
be a RuncastError that names what was wrong.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from runcast import Curve, Schedule
from runcast.errors import RuncastError, RuncastWarning
from runcast.forecast.laws import Law, MomentumLaw, MultiPowerLaw, fit_law
from runcast.schedules import plan_schedule


def _laws() -> list[Law]:
    mpl = MultiPowerLaw.published("25M")
    short = {"kind": "cosine", "peak": 1e-3, "end": 1e-4, "warmup": 10, "total": 300}
    steps = np.arange(20, 300, 5)
    values = mpl.predict({**short, "peak": 3e-4}, steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuncastWarning)
        fitted = fit_law(Curve(steps, values, schedule=Schedule.from_spec(short)), "mpl", fast=True)
    return [
        mpl,
        MomentumLaw({"L0": 3.0, "A": 0.5, "alpha": 0.5, "C": 1.5, "lam": 0.996}),
        MultiPowerLaw({**mpl.params, "B": 1e5}),  # its loss goes below 0 when the LR decays
        fitted,
    ]


def _pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


@pytest.mark.parametrize("seed", range(2))
def test_random_settings_get_a_real_plan_or_a_clear_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    laws = _laws()
    plans, errors = 0, []
    for _ in range(20):
        law = _pick(rng, laws)
        budget = int(_pick(rng, [2, 3, 10, 100, 3000, 30000]))
        peak = float(_pick(rng, [3e-4, 1e-3, 1e-30, 10.0]))
        warmup = int(_pick(rng, [0, 1, budget // 2, budget - 2]))
        floor = float(_pick(rng, [0.0, peak / 10, peak * 0.999]))
        families = _pick(rng, [("wsd", "cosine"), ("wsd",), ("cosine",), ()])
        opts: dict[str, Any] = dict(
            warmup=warmup, floor=floor, families=families,
            free_form=not families or bool(rng.random() < 0.3),
            knots=int(_pick(rng, [0, 2, 8])), max_evals=int(_pick(rng, [0, 20])), n_paths=32,
        )  # fmt: skip
        what = f"{law!r}, budget {budget}, peak {peak}, {opts}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy/scipy warnings must not reach the user
                warnings.simplefilter("ignore", RuncastWarning)
                plan = plan_schedule(law, budget, peak, **opts)
        except RuncastError as err:
            errors.append(str(err))
            continue
        plans += 1
        lrs = plan.schedule.array()
        after = lrs[warmup:]
        assert lrs.size == budget and np.all(np.isfinite(lrs)), what
        # the plan stays between the floor and the peak once warmup is over
        assert np.all(after <= peak * (1 + 1e-9)) and np.all(after >= floor * (1 - 1e-9)), what
        # a loss the law predicts, never the <= 0 of a law extrapolated past sense
        assert np.isfinite(plan.loss) and plan.loss > 0 and plan.baseline_loss > 0, what
        # a distribution of positive losses, or none where the law's draws leave the fit far
        # behind (a peak LR of 10: the forecast said so, and the point prediction stands)
        assert plan.final is None or np.all(plan.final.samples > 0), what
    assert plans >= 3  # the fuzz reaches the searches, not only the argument checks
    assert all(len(e) > 30 for e in errors)  # every refusal says what was wrong
