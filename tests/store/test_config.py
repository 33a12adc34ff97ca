from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from runcast.errors import InvalidInputError
from runcast.store._config import config_json


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (np.float32(0.5), 0.5),
        (np.int64(3), 3),
        (np.bool_(True), True),
        (np.arange(3), [0, 1, 2]),
        (torch.tensor(0.25), 0.25),
        (torch.tensor([1, 2]), [1, 2]),
        ({3, 1}, [1, 3]),
        (float("nan"), "nan"),  # NaN is kept (Python's json reads it back)
        (object, "<class 'object'>"),  # no JSON form: its repr
    ],
    ids=["f32", "i64", "bool", "array", "tensor0d", "tensor1d", "set", "nan", "class"],
)
def test_values_are_stored_as_what_they_stand_for(value: Any, stored: Any) -> None:
    got = json.loads(config_json({"v": value}))["v"]
    if stored == "nan":
        assert np.isnan(got)
    else:
        assert got == stored and type(got) is type(stored)  # a number stays a number


@pytest.mark.parametrize(
    ("config", "match"),
    [({(1, 2): 3}, "cannot be stored as JSON.*string keys"), ([("a", 1)], "must be a dict")],
)
def test_configs_json_cannot_hold_are_clear_errors(config: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        config_json(config)
