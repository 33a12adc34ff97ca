"""Batch-size plot data: batch size, noise scale and CBS intervals from a run, in the report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import runcast
from runcast.report import build_report, write_html, write_png
from runcast.report._batch import batch_data, batch_figure


def _run(db: Path) -> str:
    with runcast.init(project="b", name="warm", db=db) as run:
        extra = {0: {"batch_size": 8}, 50: {"cbs_lo": 16, "cbs_hi": 32}, 60: {"batch_size": 16}}
        extra[150] = {"cbs_lo": 64}  # every batch size passed: no upper end
        for s in range(200):
            point = {"loss": 3.0 / (1 + s) ** 0.3, "noise_scale": 2.0 + s / 10}
            run.log({**point, **extra.get(s, {})}, step=s)
    return run.id


def test_batch_data_reads_the_run(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    rid = _run(db)
    with runcast.open_store(db) as store:
        d = batch_data(store, rid)
    assert d is not None
    # logged at each change, held to the run's last step
    assert d.batch_step.tolist() == [0, 60, 199] and d.batch.tolist() == [8.0, 16.0, 16.0]
    assert d.noise.size == 200 and d.noise[-1] == pytest.approx(21.9)
    assert d.cbs_step.tolist() == [50, 150] and d.cbs_lo.tolist() == [16.0, 64.0]
    assert d.cbs_hi[0] == 32.0 and math.isnan(d.cbs_hi[1])
    js = d.to_dict()
    assert js["cbs"]["hi"] == [32.0, None]  # JSON-ready: NaN as null


def test_no_batch_metrics_no_panel(tmp_path: Path) -> None:
    with runcast.init(name="plain", db=tmp_path / "p.db") as run:
        run.log({"loss": 1.0}, step=0)
    with runcast.open_store(tmp_path / "p.db") as store:
        assert batch_data(store, run.id) is None


def test_figure_and_report(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    db = tmp_path / "r.db"
    rid = _run(db)
    with runcast.open_store(db) as store:
        d = batch_data(store, rid)
        assert d is not None
        fig = batch_figure(d)
        names = [t.name for t in fig.data]
        assert names == ["batch size", "noise scale B_simple", "measured CBS [lo, hi]"]
        bars = fig.data[2].error_y.array
        assert np.allclose(bars, [16.0, 64.0])  # [16, 32] and [64, open: drawn to 128]
        rep = build_report(store, [rid], whatif=False)
    assert len(rep.batch) == 1 and rep.batch[0].run_id == rid
    html = write_html(rep, tmp_path / "r.html").read_text()
    assert "warm: batch size" in html
    pytest.importorskip("matplotlib")
    pngs = write_png(rep, tmp_path / "png")
    assert any(p.name.endswith("-batch.png") and p.stat().st_size > 1000 for p in pngs)
