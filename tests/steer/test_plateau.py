"""PlateauDetector: patience on evaluation metrics, with explicit state."""

from __future__ import annotations

import math

import pytest

from runcast.errors import InvalidInputError
from runcast.steer import PlateauDetector


@pytest.mark.parametrize(
    ("mode", "values", "stop_at"),
    [
        ("min", [1.0, 0.9, 0.95, 0.93], 3),  # two evals after 0.9 without a new best
        ("min", [1.0, 0.9, 0.8, 0.7], None),
        ("max", [0.5, 0.6, 0.59, 0.58], 3),
        ("min", [1.0, math.nan, math.inf], 2),  # NaN/inf never count as a new best
    ],
)
def test_plateau(mode: str, values: list[float], stop_at: int | None) -> None:
    p = PlateauDetector(patience=2, mode=mode)  # type: ignore[arg-type]
    actions = [p.update(i, v).action for i, v in enumerate(values)]
    expected = ["continue"] * len(values)
    if stop_at is not None:
        expected[stop_at] = "stop"
    assert actions == expected


def test_plateau_min_delta_relative() -> None:
    p = PlateauDetector(patience=1, min_delta=0.05, relative=True)
    p.update(0, 1.0)
    d = p.update(1, 0.96)  # 4% better: not the 5% asked for
    assert d.action == "stop"
    assert d.numbers["best"] == 1.0 and d.numbers["evals_without_improvement"] == 1.0


def test_plateau_state_roundtrip() -> None:
    a = PlateauDetector(patience=3)
    for i, v in enumerate([1.0, 0.8, 0.85]):
        a.update(i, v)
    b = PlateauDetector(patience=3)
    b.load_state_dict(a.state_dict())
    # a resumed detector continues exactly where the first one was
    assert [b.update(3, 0.9).action, b.update(4, 0.9).action] == ["continue", "stop"]


@pytest.mark.parametrize("kwargs", [{"patience": 0}, {"min_delta": -1.0}, {"mode": "x"}])
def test_plateau_rejects(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        PlateauDetector(**kwargs)  # type: ignore[arg-type]


def test_a_value_that_is_not_a_number_is_an_invalid_input_error() -> None:
    # float("x") raised a bare ValueError from inside update()
    with pytest.raises(InvalidInputError, match=r"takes a number, but got 'x' at step 3"):
        PlateauDetector().update(3, "x")  # type: ignore[arg-type]
