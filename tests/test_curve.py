from __future__ import annotations

import numpy as np
import pytest

from runcast import Curve, Schedule
from runcast.errors import InvalidCurveError, InvalidInputError


def test_curve_holds_arrays() -> None:
    c = Curve([0, 5, 10], [3.0, 2.0, 1.5], name="loss")
    assert c.step.dtype == np.int64 and c.value.dtype == np.float64
    assert c.last_step == 10 and len(c) == 3
    with pytest.raises(ValueError, match="read-only"):
        c.value[0] = 1.0  # curves are immutable: forecasts must not mutate recorded data


@pytest.mark.parametrize(
    ("steps", "values", "match"),
    [
        ([0, 0], [1.0, 2.0], "strictly increasing"),
        ([2, 1], [1.0, 2.0], r"step\[0\] = 2 is followed by step\[1\] = 1"),
        ([-1, 1], [1.0, 2.0], "negative"),
        ([0.5, 1], [1.0, 2.0], r"whole numbers, but step\[0\] = 0.5\. "),  # not np.float64(0.5)
        ([0, 1], [1.0], "2 steps and 1 values"),
        ([0, 1], [1.0, float("inf")], "finite or NaN"),
        ([0, 1], ["a", "b"], "numbers"),
        ([[0, 1]], [[1.0, 2.0]], "one-dimensional"),
    ],
)
def test_curve_rejects_bad_input_with_a_precise_message(steps, values, match) -> None:
    with pytest.raises(InvalidCurveError, match=match):
        Curve(steps, values)


def test_from_unsorted_keeps_last_value_per_step() -> None:
    c = Curve.from_unsorted([5, 1, 5, 3], [9.0, 1.0, 7.0, 3.0])
    assert c.step.tolist() == [1, 3, 5]
    assert c.value.tolist() == [1.0, 3.0, 7.0]


def test_nan_is_missing_and_finite_drops_it() -> None:
    c = Curve([0, 1, 2], [1.0, float("nan"), 0.5])
    assert c.n_missing == 1
    assert c.finite().step.tolist() == [0, 2]


def test_until_head_and_lr() -> None:
    s = Schedule.from_spec({"kind": "cosine", "peak": 1.0, "end": 0.0, "total": 11})
    c = Curve(np.arange(11), np.linspace(3, 1, 11), schedule=s)
    assert c.until(4).last_step == 4
    assert c.until(4.5).last_step == 4 and len(c.until(-1)) == 0
    for bad in (float("nan"), "x", None):
        # NaN compares False with every step: it used to give back the whole curve
        with pytest.raises(InvalidInputError, match="needs a step number"):
            c.until(bad)  # type: ignore[arg-type]
    assert c.head(0.5).last_step == 5
    # the README's cosine reaches `end` at step == total, so the last step is just above it
    assert c.lr()[0] == pytest.approx(1.0)
    assert c.lr()[-1] == pytest.approx((1 + np.cos(np.pi * 10 / 11)) / 2)
    with pytest.raises(InvalidCurveError, match=r"schedule must be a runcast\.Schedule"):
        Curve([0], [1.0], schedule={"kind": "constant"})  # type: ignore[arg-type]
