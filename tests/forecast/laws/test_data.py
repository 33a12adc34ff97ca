"""Fitting data: NaN dropping, warmup cut, binning of per-step curves, schedule checks."""

from __future__ import annotations

import numpy as np
import pytest

from runcast import Curve, Schedule
from runcast.errors import InvalidCurveError, RuncastWarning, ScheduleError
from runcast.forecast.laws._data import bin_curve, prepare_curves, warmup_end

SPEC = {"kind": "cosine", "peak": 1e-3, "end": 1e-4, "warmup": 100, "total": 2000}


def _curve(n: int = 2000, schedule: Schedule | None = None) -> Curve:
    steps = np.arange(n)
    return Curve(steps, 3.0 + 1.0 / np.sqrt(1 + steps), schedule=schedule)


def test_warmup_end_finds_the_first_step_at_peak() -> None:
    # linspace(0, peak, 100) reaches 99% of the peak at index 99
    assert warmup_end(Schedule.from_spec(SPEC).array()) == 99


def test_bin_curve_keeps_short_curves_and_averages_long_ones() -> None:
    steps, values = np.arange(1000), np.arange(1000.0)
    s, v = bin_curve(steps, values, 2000)
    assert s is steps  # short enough: untouched
    s, v = bin_curve(steps, values, 10)
    # ten bins of 100 steps: means 49.5, 149.5, ... at steps rounded to 50 (banker's), 150, ...
    assert s.size == 10 and v[0] == pytest.approx(49.5) and v[-1] == pytest.approx(949.5)


def test_prepare_cuts_warmup_and_bins() -> None:
    (fc,) = prepare_curves(_curve(schedule=Schedule.from_spec(SPEC)), max_points=64, min_step=None)
    # points before warmup's end (step 99) are dropped, then 1901 points become 64 bin means
    assert fc.steps[0] >= 99 and fc.steps.size == 64
    assert fc.lrs.size == 2000


def test_nan_values_are_dropped_with_a_warning() -> None:
    values = 3.0 + 1.0 / np.sqrt(1 + np.arange(2000))
    values[500:510] = np.nan
    curve = Curve(np.arange(2000), values, schedule=Schedule.from_spec(SPEC))
    with pytest.warns(RuncastWarning, match="dropped 10 missing"):
        (fc,) = prepare_curves(curve, max_points=5000, min_step=0)
    # 10 NaNs gone; step 0 too (no LR applied yet: the warmup starts at LR 0)
    assert fc.steps.size == 1989 and fc.steps[0] == 1


@pytest.mark.parametrize(
    ("curve", "error", "match"),
    [
        (_curve(), ScheduleError, "no schedule"),
        (_curve(2500, Schedule.from_spec(SPEC)), ScheduleError, "shorter than the curve"),
        (_curve(2000, Schedule.from_array(np.full(1500, 1e-3))), ScheduleError, "recorded"),
        (Curve([0, 1, 2], [1.0, -1.0, 0.5], schedule=Schedule.from_spec(SPEC)),
         InvalidCurveError, "positive"),
    ],
)  # fmt: skip
def test_bad_curves_raise_with_the_fix(curve: Curve, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        prepare_curves(curve, max_points=256, min_step=0)
