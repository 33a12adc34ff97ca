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


@pytest.mark.parametrize("step", [2**63, 2**64, np.uint64(2**63)])
def test_a_step_past_int64_is_refused_with_the_limit(step: Any) -> None:
    # accepted, it failed the writer's whole batch later (found by fuzzing run.log)
    with pytest.raises(InvalidInputError, match="9223372036854775807"):
        check_step(step)
    assert check_step(2**63 - 1) == 2**63 - 1  # the largest step is still fine


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (torch.tensor(1.0, device="meta"), "meta"),
        (torch.nested.nested_tensor([torch.tensor([1.0])]), "not a number"),
        (torch.tensor([[0.0, 1.0]]).to_sparse(), "sparse"),
    ],
    ids=["meta", "nested", "sparse"],
)
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_tensors_without_one_readable_value_are_refused(value: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        check_value("m", value, 0)


def test_a_numpy_bool_passes_like_a_python_bool() -> None:
    assert check_value("m", np.bool_(True), 0) == (np.bool_(True), False)


def test_tensors_to_floats_gives_nan_for_a_tensor_that_cannot_be_read() -> None:
    # one unreadable tensor must not fail the others (the writer would lose the whole batch)
    out = tensors_to_floats([torch.tensor(1.5), torch.tensor(2.0, device="meta")])
    assert out[0] == 1.5 and np.isnan(out[1])
