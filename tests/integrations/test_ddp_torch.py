"""runcast.init and the callbacks' shared decisions under real torch.distributed.

Two gloo ranks started with torch.multiprocessing.spawn (``_ddp_scripts/torch_ranks.py``), no
mocks. The ranks run once per test module (and once per pytest-xdist worker that takes a test
of it); each test reads one part of what they recorded and reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runcast.store import open_store

pytest.importorskip("torch.distributed")

SCRIPT = Path(__file__).parent / "_ddp_scripts" / "torch_ranks.py"


@pytest.fixture(scope="module")
def ranks(
    tmp_path_factory: pytest.TempPathFactory,
    free_port: Callable[[], int],
    launcher_free_env: Callable[[], dict[str, str]],
) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("ddp_torch")
    db = out / "runcast.db"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(db), str(out), str(free_port())],
        capture_output=True,
        text=True,
        env=launcher_free_env(),
        timeout=120,  # a rank left waiting in a collective shows up here, not as a hung suite
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return db, reports


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_only_rank_zero_records_by_default(ranks: tuple[Path, list[dict[str, Any]]]) -> None:
    db, (r0, r1) = ranks
    assert (r0["zero_enabled"], r1["zero_enabled"]) == (True, False)  # rank 1 got a no-op run
    with open_store(db) as store:
        (info,) = store.runs("zero")  # one run: rank 1 wrote nothing
        assert info.status == "finished"  # finish() twice on every rank: no error, one status
        # every point is rank 0's, none doubled
        assert store.curve(info.id, "rank").value.tolist() == [0.0] * 10
        assert store.curve(info.id, "loss").step.tolist() == list(range(10))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_every_rank_records_when_told(ranks: tuple[Path, list[dict[str, Any]]]) -> None:
    db, (r0, r1) = ranks
    assert r0["each_enabled"] and r1["each_enabled"]
    with open_store(db) as store:
        runs = store.runs("each")
        assert len(runs) == 2  # one run per rank
        by_rank = {int(store.curve(info.id, "rank").value[0]): info for info in runs}
        assert sorted(by_rank) == [0, 1]
        for rank, info in by_rank.items():
            # each run holds its own rank's 10 points only
            assert store.curve(info.id, "rank").value.tolist() == [float(rank)] * 10
            assert info.status == "finished"  # the with-block finished it on every rank
        assert by_rank[1].name == "job/rank1"
        assert by_rank[1].config == {"rank": 1, "world_size": 2}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_rank_zero_decides_for_every_rank(ranks: tuple[Path, list[dict[str, Any]]]) -> None:
    db, reports = ranks
    for r in reports:
        # rank 1's own "stop" is not acted on anywhere: rank 0 said continue
        assert r["differ_stops"] is False
        # rank 0's stop is acted on everywhere, with its reason and numbers, on every rank
        assert r["stop_stops"] is True
        (d,) = r["decisions"]
        assert (d["action"], d["step"], d["numbers"]) == ("stop", 15, {"p": 0.02})
        assert d["reason"].startswith("stopped learning")
    with open_store(db) as store:
        (info,) = store.runs("steer")
        # rank 0 recorded where the run was stopped, once
        assert store.curve(info.id, "runcast_stop").step.tolist() == [15]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_failing_rule_warns_on_rank_zero_and_stops_no_one(
    ranks: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, (r0, r1) = ranks
    # both ranks came back from the broadcast (the script finished) and neither stops
    assert r0["failed_stops"] is False and r1["failed_stops"] is False
    (message,) = r0["warnings"]
    assert "step 10 (ValueError: forecaster down)" in message  # names the step and the error
    assert r1["warnings"] == []  # rank 1 never ran the rule


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_rank_zero_run_is_named_like_the_others(
    ranks: tuple[Path, list[dict[str, Any]]],
) -> None:
    db, _ = ranks
    with open_store(db) as store:
        names = sorted(info.name for info in store.runs("each"))
        assert names == ["job/rank0", "job/rank1"]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_unfinished_run_keeps_its_points_at_exit(
    ranks: tuple[Path, list[dict[str, Any]]],
) -> None:
    db, _ = ranks
    with open_store(db) as store:
        (info,) = store.runs("unfinished")
        assert store.summary(info.id)["loss"].n_points == 10  # written when the worker exited
