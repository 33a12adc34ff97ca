from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import torch

from runcast.errors import InvalidInputError
from runcast.track._values import (
    check_step,
    check_value,
    is_tensor,
    rows_to_array,
    tensors_to_floats,
)


@pytest.mark.parametrize("step", [0, 7, np.int64(12), np.uint8(3)])
def test_integer_steps_pass(step: Any) -> None:
    assert check_step(step) == int(step)


@pytest.mark.parametrize(
    ("step", "match"),
    [
        (-1, "cannot be negative"),
        (1.5, r"step=1\.5 \(float\)"),
        (2.0, r"step=2\.0 \(float\)"),  # even whole floats: steps are counts, not epochs
        ("3", "step='3' \\(str\\)"),
        (True, r"step=True \(bool\)"),
        (None, "step=None"),
    ],
)
def test_bad_steps_name_the_value(step: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        check_step(step)


@pytest.mark.parametrize(
    ("value", "tensor"),
    [
        (np.float32(0.5), False),
        (np.int64(3), False),
        (True, False),
        (Fraction(1, 4), False),
        (torch.tensor(0.5), True),
        (torch.tensor([0.5]), True),  # one element is a scalar in all but shape
    ],
)
def test_numbers_and_scalar_tensors_pass(value: Any, tensor: bool) -> None:
    checked, is_t = check_value("m", value, 0)
    assert is_t is tensor
    assert checked is value  # tensors are kept as is: no .item() sync on the training thread


def test_a_one_element_array_becomes_a_float() -> None:
    assert check_value("m", np.array([2.5]), 0) == (2.5, False)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("0.5", "which is a str"),
        (None, "which is a NoneType"),
        ([1.0], "which is a list"),
        (torch.zeros(2, 3), r"a tensor of shape \(2, 3\)"),
        (torch.tensor(1 + 2j), "a tensor of dtype torch.complex64"),
        (np.complex64(1), "a complex number"),
    ],
)
def test_non_numbers_name_key_step_and_value(value: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match) as info:
        check_value("train/loss", value, 42)
    assert "train/loss=" in str(info.value) and "step 42" in str(info.value)


@pytest.mark.parametrize("key", ["", 3, None])
def test_bad_keys_are_refused(key: Any) -> None:
    with pytest.raises(InvalidInputError, match="non-empty strings"):
        check_value(key, 1.0, 0)


def test_is_tensor_does_not_need_torch_for_other_types() -> None:
    assert is_tensor(torch.tensor(1.0))
    assert not is_tensor(np.float64(1.0))
    assert not is_tensor(1.0)


def test_tensors_to_floats_groups_dtypes_and_keeps_order() -> None:
    values = [
        torch.tensor(1.5),
        torch.tensor(2, dtype=torch.int32),
        torch.tensor(0.25, dtype=torch.float16),
        torch.tensor(3.0, requires_grad=True) * 2,  # a graph node: detached, not an error
        torch.tensor([7.0]),
    ]
    assert tensors_to_floats(values) == [1.5, 2.0, 0.25, 6.0, 7.0]


def test_rows_to_array_mixes_python_and_numpy_numbers() -> None:
    arr = rows_to_array([(1, np.float32(0.5)), (2.0, float("inf"))])
    assert arr.dtype == np.float64
    assert arr.tolist() == [[1.0, 0.5], [2.0, float("inf")]]


def test_rows_to_array_survives_a_value_numpy_cannot_bulk_convert() -> None:
    class Odd:
        def __float__(self) -> float:
            raise OverflowError("too odd")

    arr = rows_to_array([(1.0, Odd()), (2.0, 3.0)])
    assert arr[0, 0] == 1.0 and np.isnan(arr[0, 1]) and arr[1, 1] == 3.0  # only it is missing
