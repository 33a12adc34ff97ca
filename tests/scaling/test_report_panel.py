"""The scaling-law report panel: its numbers, and the HTML report that draws it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runcast.report._scaling import scaling_data, write_scaling_html
from runcast.scaling import ScalingConfig, ScalingData, fit_scaling


@pytest.fixture(scope="module")
def fitted() -> tuple[object, ScalingData]:
    n = np.repeat([1e8, 3e8, 1e9], 4)
    d = np.tile([2e9, 5e9, 1e10, 2e10], 3)
    data = ScalingData.from_arrays(n, d, 1.8 + 480 / n**0.35 + 2000 / d**0.37)
    return fit_scaling(data, config=ScalingConfig(n_boot=10)), data


def test_panel_numbers(fitted: tuple[object, ScalingData]) -> None:
    law, data = fitted
    panel = scaling_data(law, data, points=20)  # type: ignore[arg-type]
    assert [s.n for s in panel.sizes] == [1e8, 3e8, 1e9]
    s = panel.sizes[0]
    # each size: its points' compute 6 N D, sorted, with the law's fit beside its losses
    assert s.compute.tolist() == [6 * 1e8 * x for x in (2e9, 5e9, 1e10, 2e10)]
    np.testing.assert_allclose(s.fitted, s.loss, rtol=1e-3)
    # the frontier is the law's compute-optimal loss, falling with compute, inside its band
    f = panel.frontier
    assert (np.diff(f.median) < 0).all() and (f.lo80 <= f.median).all()
    np.testing.assert_allclose(f.median, law.optimal(f.compute).loss)  # type: ignore[attr-defined]
    assert panel.next_size is not None and panel.next_size.n == pytest.approx(1e9 * 1e9 / 3e8)


def test_html_report_has_the_panel(fitted: tuple[object, ScalingData], tmp_path: Path) -> None:
    law, data = fitted
    path = write_scaling_html(law, data, tmp_path / "scaling.html")  # type: ignore[arg-type]
    text = path.read_text()
    assert "Scaling law" in text and "compute-optimal frontier" in text
