"""The multi-power law paper's curves (../shared/data/curves/mpl), read once for every law test."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runcast import Curve, Schedule

#: the paper's split: fit on these three files (the 24000-step ones cut below step 24000)
MPL_FIT = ("cosine_24000", "constant_24000", "wsdcon_9")

MplCurves = Callable[[str], dict[str, Curve]]


@pytest.fixture
def mpl_curves(shared_data: Path, catalog: dict[str, Any]) -> MplCurves:
    """``mpl_curves(size)``: file stem -> Curve (with its schedule) for one model size's nine runs.

    The 24000-step runs are cut below step 24000, as the paper's benchmark does. Each size is
    read once per test (curves are immutable, so the cached ones can be shared).
    """
    read_sizes: dict[str, dict[str, Curve]] = {}

    def read(size: str) -> dict[str, Curve]:
        if size in read_sizes:
            return read_sizes[size]
        out = {}
        for entry in catalog["curves"]:
            if not entry["file"].startswith(f"curves/mpl/{size}/"):
                continue
            with (shared_data / entry["file"]).open() as fh:
                rows = list(csv.DictReader(fh))
            step = np.array([int(r["step"]) for r in rows])
            loss = np.array([float(r["loss"]) for r in rows])
            keep = step < 24000 if step.max() == 24000 else np.ones(step.size, bool)
            name = Path(entry["file"]).stem
            sched = Schedule.from_spec(entry["schedule"])
            out[name] = Curve(step[keep], loss[keep], schedule=sched, name=name)
        read_sizes[size] = out
        return out

    return read


@pytest.fixture
def mpl_fit_curves(mpl_curves: MplCurves) -> Callable[[str], list[Curve]]:
    """``mpl_fit_curves(size)``: the paper's three fit curves of one size, in MPL_FIT order."""
    return lambda size: [mpl_curves(size)[k] for k in MPL_FIT]
