from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from types import TracebackType

import pytest

from runcast.store import PointSink, Series
from runcast.track._writer import BackgroundWriter


class ListSink:
    """A sink that records batches in memory; optionally fails its first writes."""

    def __init__(self, run_id: str, fail_first: int = 0) -> None:
        self.run_id = run_id
        self.batches: list[dict[str, Series]] = []
        self.fail_first = fail_first
        self.closed = False

    def write(self, batch: Mapping[str, Series], heartbeat: bool = True) -> None:
        if self.fail_first > 0:
            self.fail_first -= 1
            raise sqlite3.OperationalError("disk I/O error")
        self.batches.append(dict(batch))

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> PointSink:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def steps(self, key: str) -> list[int]:
        return [int(s) for b in self.batches if key in b for s in b[key].step]


def test_flush_commits_everything_pushed_before_it() -> None:
    sink = ListSink("a")
    w = BackgroundWriter(lambda: sink, interval=60.0)  # only explicit flushes write
    for step in range(100):
        w.queue.append((step, 0.0, {"loss": float(step)}, False))
    assert w.flush(timeout=10)
    assert sink.steps("loss") == list(range(100))
    assert w.n_written == 100
    w.close()
    assert sink.closed


def test_rows_with_different_keys_are_split_per_metric() -> None:
    sink = ListSink("a")
    w = BackgroundWriter(lambda: sink, interval=60.0)
    w.queue.append((0, 0.0, {"loss": 2.0, "lr": 0.1}, False))
    w.queue.append((1, 0.0, {"loss": 1.5}, False))
    w.queue.append((2, 0.0, {"lr": 0.05, "loss": float("nan")}, False))
    w.close()
    assert sink.steps("loss") == [0, 1, 2]
    assert sink.steps("lr") == [0, 2]
    assert w.nonfinite == {"loss": 1}  # counted for the warning at finish


def test_retarget_sends_later_points_to_the_new_sink() -> None:
    first, second = ListSink("a"), ListSink("b")
    w = BackgroundWriter(lambda: first, interval=60.0)
    w.queue.append((0, 0.0, {"x": 1.0}, False))
    w.retarget(lambda: second)
    w.queue.append((1, 0.0, {"x": 2.0}, False))
    w.close()
    assert first.steps("x") == [0] and first.closed
    assert second.steps("x") == [1] and second.closed


def test_a_failed_write_keeps_the_points_and_retries() -> None:
    sink = ListSink("a", fail_first=2)
    w = BackgroundWriter(lambda: sink, interval=0.01)
    for step in range(5):
        w.queue.append((step, 0.0, {"x": float(step)}, False))
    w.flush(timeout=10)
    w.close(timeout=10)
    assert sink.steps("x") == [0, 1, 2, 3, 4]  # nothing lost to the two failures
    assert w.error is None


@pytest.mark.parametrize("n_tensors", [1, 50])
def test_tensor_rows_are_converted_in_the_writer(n_tensors: int) -> None:
    torch = pytest.importorskip("torch")
    sink = ListSink("a")
    w = BackgroundWriter(lambda: sink, interval=60.0)
    for step in range(n_tensors):
        w.queue.append((step, 0.0, {"loss": torch.tensor(step * 0.5), "lr": 0.1}, True))
    w.close()
    values = [float(v) for b in sink.batches for v in b["loss"].value]
    assert values == [s * 0.5 for s in range(n_tensors)]
