"""Stores with small synthetic runs for the report tests (recorded with the real tracker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runcast

TOTAL = 400
WSD = {
    "kind": "wsd",
    "peak": 1e-3,
    "end": 1e-5,
    "warmup": 20,
    "total": TOTAL,
    "decay_fraction": 0.2,
}


def synthetic_loss(total: int = TOTAL, seed: int = 0, upto: int | None = None) -> np.ndarray:
    """A loss that falls like a power of the LR area and drops during the WSD cooldown."""
    lrs = runcast.Schedule.from_spec({**WSD, "total": total}).array()
    area = np.cumsum(lrs) / lrs.max()
    anneal = (lrs.max() - lrs) / lrs.max()
    rng = np.random.default_rng(seed)
    loss = 1.5 + 2.0 * (1.0 + area) ** -0.5 - 0.15 * anneal + 0.01 * rng.standard_normal(total)
    return loss[: upto or total]


def record(db: Path, name: str, n: int, config: dict[str, Any], seed: int = 0) -> str:
    """Record ``n`` steps of the synthetic loss (and its LR) as a finished run; its id."""
    total = int(config.get("steps", TOTAL))
    loss = synthetic_loss(total, seed, n)
    lrs = runcast.Schedule.from_spec({**WSD, "total": total}).array()
    with runcast.init(project="t", name=name, config=config, db=str(db)) as run:
        for s in range(n):
            run.log({"loss": float(loss[s]), "lr": float(lrs[s])}, step=s)
    return str(run.id)


@pytest.fixture
def store_two(db_path: Path) -> tuple[Path, list[str]]:
    """A store with two finished runs: one with its schedule in config, one with an lr metric."""
    a = record(db_path, "with-spec", TOTAL, {"schedule": WSD}, seed=1)
    b = record(db_path, "lr-only", TOTAL, {}, seed=2)
    return db_path, [a, b]


@pytest.fixture
def recorder() -> Any:
    """The :func:`record` helper (conftest modules cannot be imported under importlib mode)."""
    return record


@pytest.fixture
def wsd_spec() -> dict[str, Any]:
    """The WSD schedule spec of the synthetic runs."""
    return dict(WSD)


@pytest.fixture
def small_report() -> Any:
    """A two-run Report built from plot data directly (no store, no fit): for the renderers."""
    from runcast import Curve, Schedule
    from runcast.forecast import Forecast
    from runcast.report import (
        Report,
        RunPanel,
        Scenario,
        WhatIfData,
        band_data,
        curve_data,
        lr_data,
    )

    panels = []
    sched = Schedule.from_spec(WSD)
    for i, name in enumerate(["alpha", "beta <b>"]):
        loss = synthetic_loss(seed=i)
        curve = Curve(np.arange(TOTAL), loss, name="loss")
        steps = np.arange(80, TOTAL)
        paths = loss[steps][None, :] + np.linspace(-0.1, 0.1, 64)[:, None]
        band = band_data(Forecast(steps, paths, method="test"), 79, float(loss[-8:].mean()))
        scen = tuple(
            Scenario(
                n,
                steps,
                sched.array()[steps],
                loss[steps] + d,
                float(loss[-1] + d),
                float(loss[-1] + d - 0.05),
                float(loss[-1] + d + 0.05),
                n == "this run",
            )
            for n, d in (("this run", 0.0), ("cosine", 0.02))
        )
        val = Curve(np.arange(0, TOTAL, 40), loss[::40] + 0.1, name="val_loss")
        panels.append(
            RunPanel(
                f"id{i}",
                name,
                "finished",
                "loss",
                curve_data(curve),
                (curve_data(val),),
                lr_data(sched, TOTAL),
                band,
                WhatIfData("mpl", TOTAL, scen),
                float(loss[-8:].mean()),
                ("a note",) if i else (),
            )
        )
    return Report("test report", "loss", tuple(panels), "2026-01-01 00:00 UTC")
