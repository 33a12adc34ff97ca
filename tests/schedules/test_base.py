"""The Schedule type: construction from arrays and strings, lengths, equality, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from runcast import Curve, Schedule
from runcast.errors import ScheduleError


@pytest.mark.parametrize(
    ("lrs", "match"),
    [
        ([1e-3, -1e-4], r"lrs\[1\] = -0.0001"),
        ([1e-3, float("nan")], r"lrs\[1\] = nan"),
        ([float("inf")], r"lrs\[0\] = inf"),
        ([], "non-empty 1-D"),
        ([[1e-3]], "non-empty 1-D"),
    ],
)
def test_from_array_rejects_bad_lrs(lrs: list[float], match: str) -> None:
    with pytest.raises(ScheduleError, match=match):
        Schedule.from_array(lrs)


def test_recorded_schedule_cannot_be_extended() -> None:
    s = Schedule.from_array([1e-3, 5e-4, 1e-4])
    assert s.array(2).tolist() == [1e-3, 5e-4]
    with pytest.raises(ScheduleError, match="3 steps but 5 were asked for"):
        s.array(5)  # a recorded LR is never guessed beyond what was recorded


def test_schedule_shorter_than_curve_is_an_error() -> None:
    s = Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "total": 100})
    c = Curve([0, 50, 199], [3.0, 2.5, 2.0], schedule=s)
    with pytest.raises(ScheduleError, match="plans 100 steps but the curve runs to step 199"):
        s.check_covers(c.last_step + 1)
    s.check_covers(100)  # exactly long enough is fine
    Schedule.from_spec({"kind": "constant", "peak": 1e-3}).check_covers(10**9)  # open-ended


@pytest.mark.parametrize(
    ("text", "kind", "field", "value"),
    [
        ("wsd:peak=1e-3,total=100,decay_fraction=0.2", "wsd", "decay_start", 80),
        ('{"kind": "cosine", "peak": 0.001, "total": 50}', "cosine", "end", 0.0),
        ("cyclic:peak=1,period=10,shape=triangular", "cyclic", "shape", "triangular"),
        ("power:peak=0.02,warmup=5", "power", "b", -0.51),
    ],
)
def test_from_string(text: str, kind: str, field: str, value: object) -> None:
    s = Schedule.from_string(text)
    assert s.kind == kind and s.to_spec()[field] == value  # CLI specs parse to the same spec


@pytest.mark.parametrize(
    ("text", "match"),
    [("cosine:peak", "not key=value"), ("{bad json", "not valid JSON"), ("nope:peak=1", "nope")],
)
def test_from_string_errors(text: str, match: str) -> None:
    with pytest.raises(ScheduleError, match=match):
        Schedule.from_string(text)


def test_equality_and_hash() -> None:
    a = Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "total": 10})
    b = Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "total": 10, "end": 0.0})
    r = Schedule.from_array(a.array())
    assert a == b and hash(a) == hash(b)  # defaults filled in: the same schedule
    assert a != r  # a spec and a recording are different objects even with equal LRs
    assert r == Schedule.from_array(a.array()) and hash(r) == hash(Schedule.from_array(a.array()))


def test_array_is_read_only_and_cached() -> None:
    s = Schedule.from_spec({"kind": "linear", "peak": 1.0, "total": 4})
    lrs = s.array()
    with pytest.raises(ValueError, match="read-only"):
        lrs[0] = 2.0  # a cached array must not be corrupted by a caller
    assert s.array() is lrs
    np.testing.assert_array_equal(lrs, [1.0, 0.75, 0.5, 0.25])


def test_open_ended_needs_total() -> None:
    with pytest.raises(ScheduleError, match=r"schedule.array\(total\)"):
        Schedule.from_spec({"kind": "constant", "peak": 1.0}).array()


def test_an_array_past_any_training_run_is_a_schedule_error() -> None:
    # found by fuzzing the CLI: 'cosine:peak=3e-4,total=1e12' asked numpy for 7 TiB (MemoryError)
    s = Schedule.from_string("cosine:peak=3e-4,total=1e12")
    with pytest.raises(ScheduleError, match=r"1000000000000 steps is past the 1e\+08"):
        s.array()


@pytest.mark.parametrize("lrs", ["abc", [1e-3, "x"], [1e-3, None, {}]])
def test_from_array_of_non_numbers_is_a_schedule_error(lrs: object) -> None:
    # found by fuzzing: numpy's ValueError/TypeError ("could not convert string to float")
    with pytest.raises(ScheduleError, match="needs numbers"):
        Schedule.from_array(lrs)


@pytest.mark.parametrize("peak", [None, 0.0, float("nan")])
def test_refining_to_a_peak_of_zero_is_a_schedule_error(peak: float | None) -> None:
    # found by fuzzing: an all-zero schedule refined to its own peak (0) came back all zero
    s = Schedule.from_array(np.zeros(100))
    with pytest.raises(ScheduleError, match="peak must be a positive LR"):
        s.refine(np.ones(100), peak=peak)
