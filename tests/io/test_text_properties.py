"""Property tests: malformed CSV/JSONL gives a clear runcast error or a correct import."""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runcast.curve import Curve
from runcast.errors import RuncastError
from runcast.io import read_csv, read_jsonl

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# characters that make CSV and JSON go wrong: separators, quotes, newlines, signs, NUL
_NASTY = st.text(alphabet="0123456789,.;\"'\n\r\t -+eEnaifstp{}[]:_\x00\xe9", max_size=200)


def _file(data: bytes, suffix: str) -> Path:
    d = Path(tempfile.mkdtemp())
    p = d / f"log{suffix}"
    p.write_bytes(data)
    return p


def _check_result(curves: dict[str, Curve]) -> None:
    for key, c in curves.items():
        assert c.name == key
        assert (np.diff(c.step) > 0).all() and (c.step >= 0).all()
        assert not np.isinf(c.value).any()


@_SETTINGS
@given(text=_NASTY, header=st.sampled_from(["step,loss,acc\n", "step;loss\n", "", "_step,x\n"]))
def test_csv_garbage_gives_a_runcast_error_or_valid_curves(text: str, header: str) -> None:
    path = _file((header + text).encode("utf-8"), ".csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            curves = read_csv(path)
        except RuncastError:
            return  # a clear error is a fine outcome; any other exception fails the test
    _check_result(curves)


@_SETTINGS
@given(data=st.binary(max_size=200))
def test_csv_random_bytes(data: bytes) -> None:
    path = _file(b"step,loss\n" + data, ".csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(RuncastError):  # a clear error is fine; others fail
            _check_result(read_csv(path))


@_SETTINGS
@given(text=_NASTY)
def test_jsonl_garbage_gives_a_runcast_error_or_valid_curves(text: str) -> None:
    path = _file(('{"step": 0, "loss": 1.0}\n' + text).encode("utf-8"), ".jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            curves = read_jsonl(path)
        except RuncastError:
            return
    _check_result(curves)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@_SETTINGS
@given(
    records=st.lists(
        st.dictionaries(st.sampled_from(["step", "loss", "a"]), _json_values), max_size=6
    )
)
def test_jsonl_odd_json_values(records: list[dict[str, object]]) -> None:
    text = "\n".join(json.dumps(r) for r in records)
    path = _file(text.encode("utf-8"), ".jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(RuncastError):
            _check_result(read_jsonl(path))


_cell = st.one_of(
    st.none(),  # not logged
    st.floats(allow_nan=True, allow_infinity=True, width=64),
)


@_SETTINGS
@given(
    steps=st.lists(st.integers(0, 10**12), min_size=1, max_size=30, unique=True),
    data=st.data(),
)
def test_well_formed_csv_and_jsonl_import_exactly(steps: list[int], data: st.DataObject) -> None:
    rows = [(s, data.draw(_cell), data.draw(_cell)) for s in steps]
    if all(a is None for _, a, _ in rows) or all(b is None for _, _, b in rows):
        rows.append((max(steps) + 1, 1.0, 2.0))  # each metric needs at least one value
    csv_text = "step,a,b\n" + "".join(
        f"{s},{'' if a is None else repr(a)},{'' if b is None else repr(b)}\n" for s, a, b in rows
    )
    jsonl_text = "".join(
        json.dumps(
            {"step": s, **({} if a is None else {"a": a}), **({} if b is None else {"b": b})}
        )
        + "\n"
        for s, a, b in rows
    )
    for curves in (
        read_csv(_file(csv_text.encode(), ".csv")),
        read_jsonl(_file(jsonl_text.encode(), ".jsonl")),
    ):
        for col, key in ((1, "a"), (2, "b")):
            want = sorted((r[0], r[col]) for r in rows if r[col] is not None)
            c = curves[key]
            assert c.step.tolist() == [s for s, _ in want]
            for got, (_, v) in zip(c.value.tolist(), want, strict=True):
                assert v is not None
                if math.isfinite(v):
                    assert got == v  # repr() round-trips a float exactly
                else:
                    assert math.isnan(got)  # NaN and inf are both "missing"
