"""The Store interface's shared methods, checked on the SQLite and the PostgreSQL store."""

from __future__ import annotations

from pathlib import Path

import pytest

from runcast import Curve
from runcast.store import Series, Store, open_store


def test_the_default_store_implements_the_interface(store_db: Path | str) -> None:
    with open_store(store_db) as store:
        assert isinstance(store, Store)


@pytest.mark.parametrize(
    ("steps", "values", "expected_steps", "expected_values"),
    [
        ([0, 1, 2], [3.0, 2.0, 1.0], [0, 1, 2], [3.0, 2.0, 1.0]),
        ([5, 1, 3], [1.0, 3.0, 2.0], [1, 3, 5], [3.0, 2.0, 1.0]),  # logged out of order
        ([0, 1, 1], [3.0, 2.0, 2.5], [0, 1], [3.0, 2.5]),  # a repeated step: last wins
    ],
)
def test_curve_sorts_and_deduplicates(
    store_db: Path | str,
    steps: list[int],
    values: list[float],
    expected_steps: list[int],
    expected_values: list[float],
) -> None:
    with open_store(store_db) as store:
        run = store.create_run()
        with store.writer(run.id) as w:
            w.write({"loss": Series.of(steps, values)})
        curve = store.curve(run.id, "loss")
        assert isinstance(curve, Curve)
        assert curve.step.tolist() == expected_steps
        assert curve.value.tolist() == expected_values


def test_curves_reads_every_metric(store_db: Path | str) -> None:
    with open_store(store_db) as store:
        run = store.create_run()
        with store.writer(run.id) as w:
            w.write({"b": Series.of([0], [1.0]), "a": Series.of([0, 1], [2.0, 3.0])})
        curves = store.curves(run.id)
        assert list(curves) == ["a", "b"]
        assert len(curves["a"]) == 2
        assert list(store.curves(run.id, ["b"])) == ["b"]


def test_a_closed_store_says_so(store_db: Path | str) -> None:
    store = open_store(store_db)
    store.close()
    store.close()  # idempotent
    with pytest.raises(Exception, match="closed"):
        store.runs()
