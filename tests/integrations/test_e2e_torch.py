"""End to end, the README's plain loop: an MLP on the bundled digits, a runcast Schedule driving
the optimizer, TrainingMonitor recording (the norm before clipping), the InstabilityGuard at its
defaults recording its events in the run. A healthy run gets no alarm; a spike is caught and
recorded with its reason; the dashboard forecasts the running run to the planned end; ``runcast
forecast RUN --from STEP`` uses the schedule the monitor was given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import runcast
from runcast import Schedule
from runcast.integrations.torch import TrainingMonitor
from runcast.steer import InstabilityGuard

TOTAL, BATCH, CLIP = 300, 64, 0.2


def _train(db: Path, e2e: Any, spike_at: int | None = None) -> tuple[Any, InstabilityGuard]:
    xt, yt, _, _ = e2e.digits()
    model = e2e.mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    plan = Schedule.from_spec(
        {"kind": "cosine", "peak": 3e-3, "end": 3e-5, "warmup": 20, "total": TOTAL}
    )
    sched = plan.to_torch(opt)
    gen = torch.Generator().manual_seed(0)
    with runcast.init(project="e2e", name="loop", db=str(db)) as run:
        mon = TrainingMonitor(model, opt, run, schedule=plan)
        guard = InstabilityGuard("rollback", model=model, optimizer=opt, run=run)
        for step in range(TOTAL):
            idx = torch.randint(0, len(yt), (BATCH,), generator=gen)
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)  # the norm before
            mon.record(step, loss, grad_norm=gn)
            seen = loss.detach() * (100.0 if step == spike_at else 1.0)
            d = guard.check(step, loss=seen, grad_norm=gn)
            if d.action == "stop":
                break
            if d.action not in ("skip", "lower_lr", "rollback"):
                opt.step()
            sched.step()  # the schedule follows the step count, applied or not
            if step == TOTAL // 5:
                e2e.check_live_forecast(db, run, planned_end=TOTAL - 1)
    return run, guard


def test_plain_loop_end_to_end(tmp_path: Path, e2e: Any) -> None:
    torch.set_num_threads(1)
    db = tmp_path / "loop.db"
    run, guard = _train(db, e2e)
    assert guard.events == []  # a healthy classifier, its loss near 0: no false alarm
    store = runcast.open_store(db)
    info = store.run(run.id)
    assert info.status == "finished"
    assert {"loss", "lr", "grad_norm", "param_norm"} <= set(store.keys(info.id))
    lrs = e2e.check_plan_matches_lr(store, info.id)
    assert lrs.size == TOTAL and float(lrs[-1]) == pytest.approx(3e-5, rel=0.01)
    out = e2e.cli_forecast_from(db, info.id, 60)
    assert out["schedule_known"] is True and out["until"] == TOTAL - 1
    assert out["final"]["interval_95"][0] > 0  # the loss heads to 0, forecast above it


def test_a_spike_is_caught_and_recorded_with_its_reason(tmp_path: Path, e2e: Any) -> None:
    torch.set_num_threads(1)
    db = tmp_path / "spike.db"
    run, guard = _train(db, e2e, spike_at=150)
    assert [(d.step, d.action) for d in guard.events] == [(150, "rollback")]
    store = runcast.open_store(db)
    info = store.run(run.id)
    assert store.curve(info.id, "guard_rollback").step.tolist() == [150]
    (event,) = info.config["runcast_guard_events"]
    assert event["step"] == 150 and "loss spike" in event["reason"]
    # the monitor recorded the norm before clipping, not the clipped one
    assert float(store.curve(info.id, "grad_norm").value.max()) > 2 * CLIP
