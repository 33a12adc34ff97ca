"""The memorisation test's combination of per-segment p-values."""

from __future__ import annotations

import numpy as np

from runcast.verify._memo import average_p, segment_auc, stouffer


def _run(rng: np.random.Generator, tail_shift: float) -> list[float]:
    # one run: a fixed held-out tail of 180 records (as the digits' 10%), 15 segments each
    # comparing its last 32 records with 64 of that tail; under the null the records are
    # exchangeable, but every segment sees the same tail
    tail = rng.normal(tail_shift, 1, 180)
    pvals = []
    for _ in range(15):
        seg = rng.normal(0, 1, 32)
        _, p = segment_auc(seg, rng.choice(tail, 64, replace=False))
        pvals.append(1.0 - p)  # the reverse test: the tail has the lower losses
    return pvals


def test_average_p_holds_its_level_where_stouffer_does_not() -> None:
    rng = np.random.default_rng(0)
    runs = [_run(rng, 0.0) for _ in range(300)]
    # the shared tail makes the segments' tests agree: Stouffer's sum treats 15 views of one
    # tail draw as 15 independent tests and alarms far more often than its level
    assert np.mean([stouffer(p) <= 0.05 for p in runs]) > 0.1
    assert np.mean([average_p(p) <= 0.05 for p in runs]) <= 0.05


def test_average_p_still_sees_a_tail_trained_on_throughout() -> None:
    rng = np.random.default_rng(1)
    # a run that trained on its tail: the tail's losses lower everywhere (the price of holding
    # the level under any dependence: a shift of one standard deviation is not always enough)
    assert all(average_p(_run(rng, -1.5)) < 1e-4 for _ in range(5))
    assert average_p([]) == 1.0 and average_p([0.9, 0.8]) == 1.0
