"""Cyclic schedules and phase sequences (continual pre-training with re-warmup)."""

from __future__ import annotations

import numpy as np
import pytest

from runcast import Schedule
from runcast.schedules._phases import cycle_position


@pytest.mark.parametrize("mult", [1.0, 1.5, 2.0, 3.0])
def test_cycle_position_walks_cycles(mult: float) -> None:
    u = np.arange(0, 500, dtype=np.float64)
    k, x = cycle_position(u, 7.0, mult)
    # reference: walk the cycles one at a time
    ref_k, ref_x = [], []
    for ui in u:
        kk, start, length = 0, 0.0, 7.0
        while ui >= start + length:
            start, length, kk = start + length, length * mult, kk + 1
        ref_k.append(kk)
        ref_x.append((ui - start) / length)
    np.testing.assert_array_equal(k, ref_k)  # boundaries fall in the right cycle
    np.testing.assert_allclose(x, ref_x, rtol=1e-9, atol=1e-12)
    assert ((x >= 0) & (x < 1)).all()


def test_cosine_restarts_start_each_cycle_at_peak() -> None:
    s = Schedule.from_spec({"kind": "cyclic", "peak": 1.0, "base": 0.1, "period": 10, "total": 40})
    lrs = s.array()
    assert lrs[[0, 10, 20, 30]].tolist() == [1.0, 1.0, 1.0, 1.0]  # SGDR: a restart every period
    assert lrs[5] == pytest.approx(0.55)  # halfway down the cosine to base


def test_triangular_is_continuous_after_warmup() -> None:
    s = Schedule.from_spec(
        {
            "kind": "cyclic",
            "peak": 1.0,
            "period": 10,
            "warmup": 5,
            "shape": "triangular",
            "total": 40,
        }
    )
    lrs = s.array()
    assert lrs[4] == 1.0 and lrs[5] == 1.0 and lrs[10] == 0.0  # peak after warmup, base mid-cycle


def test_sequence_rewarmup_for_continual_pretraining() -> None:
    first = {"kind": "cosine", "peak": 1.0, "end": 0.1, "warmup": 5, "total": 100}
    second = {
        "kind": "wsd",
        "peak": 0.5,
        "end": 0.0,
        "warmup": 10,
        "init": 0.1,
        "decay_start": 40,
        "total": 50,
    }
    s = Schedule.from_spec(
        {"kind": "sequence", "phases": [{**first, "steps": 60}, {**second, "steps": 50}]}
    )
    lrs = s.array()
    assert s.total == 110 and s.peak == 1.0
    # phase one is cut at step 60 of its own 100-step cosine; phase two restarts at its step 0
    np.testing.assert_array_equal(lrs[:60], Schedule.from_spec(first).array()[:60])
    np.testing.assert_array_equal(lrs[60:], Schedule.from_spec(second).array())
    assert s(500) == 0.0  # held past the end at the last phase's final LR


def test_sequence_rejects_recorded_phase() -> None:
    from runcast.errors import ScheduleError

    with pytest.raises(ScheduleError, match=r"Schedule\.from_array"):
        Schedule.from_spec({"kind": "sequence", "phases": [{"kind": "recorded", "steps": 3}]})
