"""The Power scheduler (Shen et al. 2024): its power law, warmup target and decay."""

from __future__ import annotations

import numpy as np
import pytest

from runcast import Schedule
from runcast.schedules._power import power_lr

SPEC = {
    "kind": "power",
    "peak": 3e-4,
    "warmup": 10,
    "total": 200,
    "a": 0.5,
    "b": -0.51,
    "tokens_per_step": 4e5,
}


def test_power_law_is_capped_at_peak() -> None:
    s = Schedule.from_spec({**SPEC, "warmup": 0}).to_spec()
    lrs = power_lr(np.array([0.0, 1.0, 1e3]), s)
    # n = 0 (and small n) would give an infinite or huge LR: the cap at peak holds it
    assert lrs[0] == 3e-4 and lrs[1] == 3e-4
    assert lrs[2] == pytest.approx(0.5 * (1e3 * 4e5) ** -0.51, rel=1e-12)


def test_power_warms_up_to_its_own_value() -> None:
    lrs = Schedule.from_spec(SPEC).array()
    # the paper warms up to lr(n_warmup), below peak here, then follows the power law
    assert lrs[9] == pytest.approx(lrs[10], rel=1e-12) and lrs[10] < 3e-4
    np.testing.assert_array_equal(lrs[:10], np.linspace(0.0, lrs[10], 10))
    assert lrs[199] == pytest.approx(0.5 * (199 * 4e5) ** -0.51, rel=1e-12)


def test_power_decay_defaults_to_one_percent() -> None:
    s = Schedule.from_spec(
        {"kind": "power", "peak": 1.0, "a": 1.0, "b": -0.5, "total": 100, "decay_start": 80}
    )
    # default end: 1% of the LR where the decay starts, reached at total along a geometric path
    assert s(100) == pytest.approx(0.01 * 80**-0.5, rel=1e-12)
    assert s(90) == pytest.approx(0.1 * 80**-0.5, rel=1e-12)


def test_power_without_total_is_open_ended() -> None:
    s = Schedule.from_spec({"kind": "power", "peak": 1.0, "a": 1.0, "b": -0.5})
    # no planned length: the schedule is defined for any number of steps (token-agnostic)
    assert s.total is None
    assert s.array(10_001)[-1] == pytest.approx(1e4**-0.5, rel=1e-12)
