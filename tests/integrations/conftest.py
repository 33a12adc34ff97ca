"""What the end-to-end tests of the integrations share (the ``e2e`` fixture): small real data,
and the checks a user makes with the README open (the dashboard's forecast of a running run,
``runcast forecast RUN --from STEP``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from runcast.integrations._plan import planned_schedule
from runcast.ui import DashboardData


def digits(seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """sklearn's bundled 8x8 digits (no download), scaled, split 1500 / 297."""
    import torch
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    xt = torch.tensor(x[order] / 16.0, dtype=torch.float32)
    yt = torch.tensor(y[order], dtype=torch.long)
    return xt[:1500], yt[:1500], xt[1500:], yt[1500:]


def mlp(seed: int = 0) -> Any:
    """A small MLP for the digits."""
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def dashboard_forecast(db: str | Path, run_id: str, key: str = "loss") -> dict[str, Any]:
    """The dashboard API's forecast payload of one run's metric."""
    api = DashboardData(db)
    try:
        return api.forecast(run_id, key)
    finally:
        api.close()


def check_live_forecast(db: str | Path, run: Any, planned_end: int, key: str = "loss") -> None:
    """The dashboard forecasts a running run to its planned end (not its latest step)."""
    run.flush()
    fc = dashboard_forecast(db, run.id, key)
    assert "note" not in fc, fc.get("note")
    assert fc["final"]["step"] == planned_end  # the trainer's max_steps, not the latest log
    assert fc["cutoff_step"] < planned_end


def cli_forecast_from(db: str | Path, run_id: str, from_step: int, key: str = "loss") -> Any:
    """``runcast forecast RUN --from STEP --json`` as a user types it."""
    from runcast.cli import app

    res = CliRunner().invoke(
        app,
        ["forecast", run_id, "--db", str(db), "--from", str(from_step), "--key", key, "--json"],
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{") :])


def check_plan_matches_lr(store: Any, run_id: str, rtol: float = 1e-3) -> np.ndarray:
    """The recorded plan gives, at every logged step, the LR the trainer logged there."""
    info = store.run(run_id)
    plan = planned_schedule(info.config)
    assert plan.source.startswith("the recorded plan"), plan.source
    lr = store.curve(run_id, "lr")
    planned = plan.schedule.array()[lr.step]
    peak = float(plan.schedule.array().max())
    np.testing.assert_allclose(planned, lr.value, atol=rtol * peak)
    return np.asarray(plan.schedule.array())


class _E2E:
    """The helpers above, as one fixture (tests import no sibling modules here)."""

    digits = staticmethod(digits)
    mlp = staticmethod(mlp)
    dashboard_forecast = staticmethod(dashboard_forecast)
    check_live_forecast = staticmethod(check_live_forecast)
    cli_forecast_from = staticmethod(cli_forecast_from)
    check_plan_matches_lr = staticmethod(check_plan_matches_lr)


@pytest.fixture
def e2e() -> type[_E2E]:
    """Data and checks for the end-to-end tests."""
    return _E2E
