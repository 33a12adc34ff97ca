"""TrainingPlateau: stop from the training loss alone (no validation set)."""

from __future__ import annotations

import numpy as np
import pytest

from runcast.errors import InvalidInputError
from runcast.steer import TrainingPlateau


def _first_stop(tp: TrainingPlateau, values: np.ndarray) -> int | None:
    for s, v in enumerate(values):
        if tp.update(s, float(v)):
            return s
    return None


def test_stops_once_the_loss_has_flattened() -> None:
    rng = np.random.default_rng(0)
    s = np.arange(2000)
    loss = 0.2 + 2.0 * np.exp(-s / 150) + rng.normal(0, 0.05, s.size)  # noisy batches
    stop = _first_stop(TrainingPlateau(block=100, tol=0.02, patience=2), loss)
    # exp(-s/150): a block of 100 makes < 2% of the progress once s > ~600; two such blocks
    assert stop is not None and 600 <= stop <= 1100


def test_a_loss_that_keeps_falling_is_not_stopped() -> None:
    s = np.arange(2000)
    loss = 3.0 - s / 1000  # a steady decline (a long decay): every block gains > 2%
    assert _first_stop(TrainingPlateau(block=100, tol=0.02, patience=2), loss) is None


def test_decision_numbers_and_nan_blocks() -> None:
    tp = TrainingPlateau(block=2, tol=0.1, patience=1, min_blocks=2)
    ds = [tp.update(i, v) for i, v in enumerate([2.0, 2.0, np.nan, np.nan, 1.0, 1.0, 0.99, 0.99])]
    assert ds[3].reason == "2 block(s)"  # a NaN block: no evidence either way
    assert ds[-1].action == "stop" and ds[-1].numbers["gain"] == pytest.approx(0.01 / 1.01)


def test_state_dict_roundtrip() -> None:
    values = np.linspace(2.0, 1.0, 50) ** 3
    a = TrainingPlateau(block=7, tol=0.2, patience=2)
    for s in range(30):
        a.update(s, float(values[s]))
    b = TrainingPlateau(block=7, tol=0.2, patience=2)
    b.load_state_dict(a.state_dict())
    rest_a = [a.update(s, float(values[s])).action for s in range(30, 50)]
    rest_b = [b.update(s, float(values[s])).action for s in range(30, 50)]
    assert rest_a == rest_b and b.medians == a.medians


@pytest.mark.parametrize(
    "kwargs", [{"block": 0}, {"tol": -0.1}, {"patience": 0}, {"min_blocks": 1}]
)
def test_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError):
        TrainingPlateau(**{"block": 10, **kwargs})  # type: ignore[arg-type]
