"""Random and hostile input through ``runcast.init`` and ``run.log``: recorded exactly, or a
clear error that leaves every earlier point intact.

Each case starts a run (sometimes with a bad project, name or config) and logs a random mix of
good values (floats, ints, numpy scalars, 0-d arrays and tensors, NaN, inf) and bad ones (None,
strings, complex numbers, n-d arrays and tensors, meta tensors, empty or non-string keys, steps
that are negative, fractional, past int64 or not numbers) at auto, repeated, decreasing and
huge steps. After ``finish`` every accepted point must read back exactly (NaN and inf as
missing, a repeated step as its last value); every refused call must be a RuncastError that
says why.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import runcast
from runcast.errors import RuncastError
from runcast.store import open_store

GOOD = [
    lambda r: float(r.normal()),
    lambda r: int(r.integers(-5, 5)),
    lambda r: float("nan"),
    lambda r: float("inf"),
    lambda r: np.float32(r.random()),
    lambda r: np.int64(r.integers(0, 9)),
    lambda r: np.array(r.random()),
    lambda r: torch.tensor(float(r.random())),
    lambda r: torch.tensor([float(r.random())]),
    lambda r: True,
    lambda r: 10**400,  # too large for a float: missing, like inf
]
BAD = [
    lambda r: None,
    lambda r: "0.5",
    lambda r: complex(1, 2),
    lambda r: np.ones(3),
    lambda r: torch.ones(2, 2),
    lambda r: torch.tensor(1.0, device="meta"),
    lambda r: {"nested": 1.0},
    lambda r: [1.0],
]
KEYS = ["loss", "train/loss", "λ/ü", "a.b c", "x" * 300, "💥"]
BAD_KEYS: list[Any] = ["", 3, None, ("a",)]
BAD_STEPS: list[Any] = [-1, 1.5, 2.0, "3", 2**63, 2**64, float("nan"), True]
BAD_INIT: list[dict[str, Any]] = [
    {"project": None},
    {"name": 7},
    {"config": "lr=1"},
    {"config": {(1, 2): 3}},
    {"flush_every": 0},
]


def _expected(value: Any) -> float:
    try:
        f = float(value.reshape(())) if hasattr(value, "reshape") else float(value)
    except OverflowError:
        return math.nan
    return f if math.isfinite(f) else math.nan


def _one_run(rng: np.random.Generator, db: Path | str, errors: list[str]) -> None:
    if rng.random() < 0.2:
        bad = BAD_INIT[int(rng.integers(len(BAD_INIT)))]
        with pytest.raises(RuncastError) as err:
            runcast.init(db=db, **bad)
        errors.append(str(err.value))
        return
    run = runcast.init(project="fuzz", config={"lr": np.float32(0.5)}, db=db, flush_every=0.05)
    want: dict[str, dict[int, float]] = {}
    for _ in range(int(rng.integers(5, 40))):
        key = KEYS[int(rng.integers(len(KEYS)))]
        value = GOOD[int(rng.integers(len(GOOD)))](rng)
        step: Any = None
        roll = rng.random()
        if roll < 0.15:
            value = BAD[int(rng.integers(len(BAD)))](rng)
        elif roll < 0.25:
            key = BAD_KEYS[int(rng.integers(len(BAD_KEYS)))]
        elif roll < 0.35:
            step = BAD_STEPS[int(rng.integers(len(BAD_STEPS)))]
        elif roll < 0.6:  # a repeated, earlier, later or the largest step
            step = int(rng.choice([0, run.step - 1, run.step + 100, 2**63 - 1]))
        at = run.step if step is None else step
        try:
            run.log({key: value}, step=step)
        except RuncastError as err:
            errors.append(str(err))
            continue
        want.setdefault(key, {})[at] = _expected(value)  # a later write of a step wins
    run.finish()
    with pytest.raises(RuncastError):  # a finished run refuses more points
        run.log({"loss": 1.0})
    with open_store(db) as store:
        assert sorted(store.keys(run.id)) == sorted(want)  # no key lost, none made up
        assert store.run(run.id).config == {"lr": 0.5}
        for key, points in want.items():
            curve = store.curve(run.id, key)
            steps = sorted(points)
            assert curve.step.tolist() == steps, key
            expect = np.array([points[s] for s in steps])
            assert np.array_equal(curve.value, expect, equal_nan=True), key


@pytest.mark.parametrize("seed", range(3))
def test_random_logging_is_recorded_exactly_or_refused_clearly(
    seed: int, tmp_path: Path, store_db: Path | str
) -> None:
    rng = np.random.default_rng(seed)
    errors: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runcast.RuncastWarning)
        for case in range(8):
            # a fresh SQLite file per case; PostgreSQL's runs share one database
            db = tmp_path / f"fuzz{case}.db" if isinstance(store_db, Path) else store_db
            _one_run(rng, db, errors)
    assert errors  # the hostile inputs were drawn and refused
    assert all(len(e) > 40 for e in errors), errors  # and each error says what and why
