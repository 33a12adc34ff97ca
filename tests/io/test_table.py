from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runcast.errors import ImportFormatError, InvalidInputError
from runcast.io._table import (
    SKIP,
    last_of_each_step,
    parse_step,
    parse_value,
    requested_columns,
)

P = Path("log.csv")


@pytest.mark.parametrize(("raw", "step"), [("12", 12), ("12.0", 12), (7, 7), (3.0, 3), ("0", 0)])
def test_steps_parse(raw: Any, step: int) -> None:
    assert parse_step(raw, P, 4, "step") == step


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("", "empty or not a number"),
        (None, "empty or not a number"),
        ("x", "'x'.*is not a number"),
        ("1.5", "not a whole number"),
        ("nan", "not a whole number"),
        ("-2", "out of range"),
        (str(2**63), "out of range"),
        (True, "empty or not a number"),
    ],
)
def test_bad_steps_name_file_and_line(raw: Any, match: str) -> None:
    with pytest.raises(ImportFormatError, match=match) as info:
        parse_step(raw, P, 4, "step")
    assert str(info.value).startswith("log.csv:4:")


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1.5", 1.5), (" 2 ", 2.0), (3, 3.0), (False, 0.0), ("1e3", 1000.0), (10**400, float("inf"))],
)
def test_values_parse(raw: Any, value: float) -> None:
    assert parse_value(raw) == value


@pytest.mark.parametrize("raw", ["", "  ", None])
def test_empty_cells_mean_not_logged(raw: Any) -> None:
    assert parse_value(raw) is SKIP


@pytest.mark.parametrize("raw", ["abc", [1], {"a": 1}])
def test_non_numbers_are_flagged(raw: Any) -> None:
    assert parse_value(raw) is None


def test_nan_text_is_a_missing_value_not_a_skip() -> None:
    v = parse_value("nan")
    assert isinstance(v, float) and np.isnan(v)


def test_last_of_each_step_sorts_and_keeps_the_last() -> None:
    step = np.array([3, 1, 3, 2, 1])
    assert last_of_each_step(step).tolist() == [4, 3, 2]  # steps 1, 2, 3 -> their last rows


@pytest.mark.parametrize(
    "raw", ["9007199254740993", "9223372036854775807", "9223372036854775000"], ids=str
)
def test_large_integer_steps_parse_exactly(raw: str) -> None:
    # they went through float() and came back rounded (2**53 + 1 -> 2**53), or out of range
    assert parse_step(raw, P, 2, "step") == int(raw)


@pytest.mark.parametrize(
    ("columns", "pairs"),
    [
        ("loss", {"loss": "loss"}),  # one name: was split into letters
        (["loss", "acc"], {"loss": "loss", "acc": "acc"}),
        ({"loss": "train/loss"}, {"loss": "train/loss"}),
        (None, None),
    ],
)
def test_requested_columns_take_a_name_a_list_or_a_dict(columns: Any, pairs: Any) -> None:
    assert requested_columns(columns) == pairs


@pytest.mark.parametrize(
    ("columns", "match"),
    [
        ({"loss": "x", "acc": "x"}, r"several file columns to the metric\(s\) \['x'\]"),
        ({"loss": ""}, "non-empty string"),  # `--column loss=` made a metric named ''
    ],
)
def test_requested_columns_refuse_keys_that_would_lose_data(columns: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        requested_columns(columns)
