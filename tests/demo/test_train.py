"""The demo's training loop: recorded into a real store, live forecasts, the judged forecast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import runcast
from runcast.demo import DemoConfig, Judged, StepInfo, train
from runcast.errors import InvalidInputError

TINY = {"batch": 8, "context": 16, "width": 32, "heads": 2, "layers": 1}


def test_schedule_is_wsd_with_its_decay_at_the_end() -> None:
    cfg = DemoConfig(steps=1000)
    lrs = cfg.schedule().array()
    assert cfg.schedule().kind == "wsd" and lrs.size == 1000
    # warmup 50 steps, stable at the peak until 80%, then down to the end LR
    assert lrs[60] == lrs[799] == cfg.peak_lr
    # the last step is 1/200 of the decay short of its end: within 1% of the peak of end_lr
    assert lrs[801] < cfg.peak_lr and lrs[-1] == pytest.approx(cfg.end_lr, abs=0.01 * cfg.peak_lr)
    assert cfg.cutoff_step == 200 and cfg.forecast_every == 25


@pytest.mark.parametrize(("field", "value"), [("steps", 10), ("forecast_at", 1.0)])
def test_config_rejects_what_cannot_be_forecast(field: str, value: float) -> None:
    with pytest.raises(InvalidInputError, match=field):
        DemoConfig(**{field: value})  # type: ignore[arg-type]


def test_judged_error_and_coverage() -> None:
    j = Judged(cutoff_step=20, median=2.2, lo80=1.9, hi80=2.3, actual=2.0, method="m")
    assert j.error_pct == pytest.approx(10.0)  # 10% too pessimistic
    assert j.inside80
    assert not Judged(20, 2.5, 2.4, 2.6, 2.0, "m").inside80


@pytest.mark.slow
def test_train_records_the_run_and_judges_the_early_forecast(tmp_path: Path) -> None:
    cfg = DemoConfig(steps=120, seed=1, **TINY)  # type: ignore[arg-type]
    seen: list[StepInfo] = []
    res = train(cfg, tmp_path / "out" / "runcast.db", on_step=seen.append, name="t")
    # one callback per step, with the scheduled LR
    assert [s.step for s in seen] == list(range(120))
    np.testing.assert_allclose([s.lr for s in seen], cfg.schedule().array())
    # live forecasts appear from half the cutoff (step 12) on, always for the last step
    with_fc = [s for s in seen if s.forecast is not None]
    assert with_fc and with_fc[0].step >= 12
    assert all(int(s.forecast.steps[-1]) == 119 for s in with_fc)  # type: ignore[union-attr]
    with runcast.open_store(res.db) as store:
        info = store.run(res.run_id)
        loss = store.curve(res.run_id, "loss")
        assert info.status == "finished" and info.name == "t"
        assert info.config["schedule"]["kind"] == "wsd" and info.config["steps"] == 120
        assert store.keys(res.run_id) == ["loss", "lr", "val_loss"]
        # every step recorded, the same numbers the callback saw
        np.testing.assert_allclose(loss.value, [s.loss for s in seen])
    # the loss reached is the one definition the report and the dashboard use too
    assert res.final_loss == pytest.approx(runcast.report.reached(loss))
    # it learned: from ~ln(vocab)=4.5 to clearly lower in 120 tiny steps
    assert seen[0].loss > 4.0 and res.final_loss < 3.4
    j = res.judged
    assert j is not None and j.cutoff_step == 24 and j.actual == res.final_loss
    assert j.lo80 <= j.median <= j.hi80
    # one forecast, one number: the report (and the dashboard, which calls the same
    # forecast_band) shows exactly the interval the demo printed for the forecast at step 24
    with runcast.open_store(res.db) as store:
        band = runcast.report.build_report(store, [res.run_id], whatif=False).runs[0].band
    assert band is not None and band.cutoff_step == j.cutoff_step
    assert (band.final.median, band.final.lo80, band.final.hi80) == (j.median, j.lo80, j.hi80)
    assert band.actual_final == j.actual


def test_live_forecast_notes_failures_and_warnings_once() -> None:
    from runcast.demo._train import _live_forecast

    sched = DemoConfig(steps=200).schedule()
    notes: list[str] = []
    # too few points: no forecast, and a note saying why (not an exception in training)
    assert _live_forecast([0, 1, 2], [3.0, 2.9, 2.8], sched, notes) is None
    assert notes[0].startswith("step 2: no forecast (") and "at least" in notes[0]
    loss = list(1.0 + 3.0 / np.sqrt(1.0 + np.arange(60)))
    loss[10] = float("nan")
    for _ in range(3):  # the same warning three times is noted once
        fc = _live_forecast(list(range(60)), loss, sched, notes)
    assert fc is not None and int(fc.steps[-1]) == 199
    assert len(notes) == 2 and notes[1].startswith("RuncastWarning:") and "NaN" in notes[1]
