"""Random sequences of store operations, good and hostile: each one is done exactly or refused
with a RuncastError that says why, and a refused one changes nothing.

Each case runs 60 random operations on one store: create runs (with odd projects, names and
configs, some invalid), write batches (NaN/inf values, repeated and unordered steps, steps past
int64 or negative, text), fork at any step (some negative), delete, set statuses (some unknown),
look runs up by hostile strings (empty, "%", "_", quotes, unicode, prefixes) and read curves
since any step. A plain dict model of what the store should hold follows along; after every
operation, through a second connection, the store must read exactly as the model says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runcast.errors import RuncastError
from runcast.store import Series, SQLStore, open_store

NAMES = ["a", "a", "λ ü", "x" * 200, "%", "_", "'; DROP TABLE runs; --", "a b"]
LOOKUPS = ["", "%", "_", "'", "\\", "zz", "a%", "λ"]
CONFIGS: list[Any] = [{}, {"lr": np.float32(0.5)}, {"n": float("nan")}, {(1, 2): 3}, "lr=1"]
STEPS: list[Any] = [[0, 1, 2], [5, 3, 5], [2**63 - 1], [2**63], [-1], ["a"], []]

Model = dict[str, dict[str, dict[int, float]]]


def _write(store: SQLStore, model: Model, rng: np.random.Generator) -> None:
    run = str(rng.choice(sorted(model)))
    key = str(rng.choice(["loss", "acc", "λ/ü", ""]))
    steps = STEPS[int(rng.integers(len(STEPS)))]
    values = rng.choice([1.0, 0.5, np.nan, np.inf, -2.0], size=len(steps))
    series = Series.of(steps, values, wall=1.0)  # may raise: nothing written then
    with store.writer(run) as sink:
        sink.write({key: series})
    if len(series):
        points = model[run].setdefault(key, {})
        for s, v in zip(series.step.tolist(), series.value.tolist(), strict=True):
            points[s] = v  # the later write of a step wins


def _op(store: SQLStore, model: Model, rng: np.random.Generator) -> None:
    roll = rng.random()
    if roll < 0.2 or not model:
        config = CONFIGS[int(rng.integers(len(CONFIGS)))]
        info = store.create_run(str(rng.choice(["p", "", "ü"])), str(rng.choice(NAMES)), config)
        model[info.id] = {}
    elif roll < 0.55:
        _write(store, model, rng)
    elif roll < 0.65:
        run = str(rng.choice(sorted(model)))
        at = int(rng.choice([-1, 0, 1, 3, 10]))
        child = store.fork(run, at)
        model[child.id] = {
            k: {s: v for s, v in pts.items() if s < at} for k, pts in model[run].items()
        }
        model[child.id] = {k: pts for k, pts in model[child.id].items() if pts}
    elif roll < 0.72:
        run = str(rng.choice(sorted(model)))
        store.delete(run)
        del model[run]
    elif roll < 0.8:
        store.set_status(str(rng.choice(sorted(model))), str(rng.choice(["failed", "done"])))  # type: ignore[arg-type]
    elif roll < 0.9:
        found = store.run(str(rng.choice(LOOKUPS + NAMES)))
        assert found.id in model
    else:
        run = str(rng.choice(sorted(model)))
        since = int(rng.choice([-(2**70), 0, 2, 2**70]))
        for key, pts in model[run].items():
            got = store.curve(run, key, since_step=since)
            assert got.step.tolist() == sorted(s for s in pts if s > since)


def _check(db: Path | str, model: Model) -> None:
    with open_store(db) as store:  # a second connection sees exactly the model
        assert sorted(r.id for r in store.runs()) == sorted(model)
        for run, keys in model.items():
            assert store.keys(run) == sorted(keys)
            for key, pts in keys.items():
                curve = store.curve(run, key)
                assert curve.step.tolist() == sorted(pts)
                expect = [pts[s] for s in sorted(pts)]
                assert np.array_equal(curve.value, expect, equal_nan=True)


@pytest.mark.parametrize("seed", range(3))
def test_random_store_operations_are_exact_or_refused(seed: int, store_db: Path | str) -> None:
    rng = np.random.default_rng(seed)
    store = open_store(store_db)
    assert isinstance(store, SQLStore)
    model: Model = {}
    errors: list[str] = []
    for _ in range(60):
        try:
            _op(store, model, rng)
        except RuncastError as err:
            errors.append(str(err))
        _check(store_db, model)
    store.close()
    assert model and errors  # both outcomes were exercised
    assert all(len(e) > 30 for e in errors), errors  # each error says what was wrong
