"""A run's config as the JSON text the store keeps.

Configs hold what training code has at hand: numpy scalars (``np.float32(3e-4)`` from a sweep),
arrays, tensors. Each is stored as the number, list or string it stands for, so that a
config read back compares and sorts as numbers; only what has no JSON form is kept as its repr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from runcast.errors import InvalidInputError


def _json_default(value: Any) -> Any:
    """A JSON form of a config value json cannot write: numbers stay numbers, not their repr."""
    if isinstance(value, np.generic):  # np.float32(3e-4) -> 3e-4
        return value.item()
    if isinstance(value, np.ndarray) or type(value).__module__.startswith("torch"):
        try:
            return value.tolist()  # an array (or a tensor) -> a (nested) list of numbers
        except Exception:
            return repr(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)  # anything else is kept as its repr, readable if not usable


def config_json(config: Mapping[str, Any] | None, what: str = "The run's config") -> str:
    """``config`` as the JSON text the store keeps, or an error that says what to change.

    Example:
        >>> config_json({"lr": np.float32(0.5), "layers": np.arange(2)})
        '{"lr": 0.5, "layers": [0, 1]}'
    """
    if config is not None and not isinstance(config, Mapping):
        raise InvalidInputError(
            f"{what} must be a dict of hyper-parameters, but got {type(config).__name__}."
        )
    try:
        return json.dumps(dict(config or {}), default=_json_default, allow_nan=True)
    except (TypeError, ValueError, RecursionError) as err:
        raise InvalidInputError(
            f"{what} cannot be stored as JSON: {err}. Use string keys and numbers, strings, "
            "lists or dicts as values."
        ) from err
