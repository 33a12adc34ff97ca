from __future__ import annotations

import pytest

from runcast.store import STATUSES, MetricSummary, RunInfo


@pytest.mark.parametrize(
    ("parent", "end", "is_fork", "duration"),
    [(None, None, False, None), ("abcd1234", 110.0, True, 10.0)],
)
def test_run_info_derived_fields(
    parent: str | None, end: float | None, is_fork: bool, duration: float | None
) -> None:
    info = RunInfo(
        id="0123abcd",
        name="r",
        project="p",
        status="finished",
        start_time=100.0,
        end_time=end,
        parent_id=parent,
    )
    assert info.is_fork is is_fork
    assert info.duration == duration


def test_metric_summary_span_and_statuses() -> None:
    assert MetricSummary("loss", 3, first_step=10, last_step=30, last_value=1.0).span == 20
    # the four statuses the brief promises, in a stable order other code may rely on
    assert STATUSES == ("running", "finished", "failed", "killed")
