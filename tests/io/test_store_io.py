from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import runcast
from runcast.errors import InvalidInputError, RunNotFoundError
from runcast.io import (
    export_run,
    import_csv,
    import_jsonl,
    import_tensorboard,
    import_wandb,
    read_csv,
    write_run,
)
from runcast.store import Points, open_store


@pytest.fixture
def logged(store_db: Path | str) -> str:
    run = runcast.init(db=store_db, name="src")
    for step in range(5):
        row = {"loss": 3.0 - step * 0.5}
        if step % 2 == 0:
            row["val"] = float("nan") if step == 2 else 2.0
        run.log(row, step=step * 10)
    with pytest.warns(runcast.RuncastWarning, match=r"val \(1\)"):
        run.finish()
    return run.id


def test_write_run_records_a_finished_run_with_wall_times(store_db: Path | str) -> None:
    pts = {"loss": Points(np.array([0, 5]), np.array([2.0, 1.0]), np.array([100.0, 160.0]))}
    info = write_run(pts, db=store_db, project="p", name="w", config={"a": 1})
    assert (info.status, info.project, info.config, info.n_points) == ("finished", "p", {"a": 1}, 2)
    assert (info.start_time, info.end_time) == (100.0, 160.0)  # from the points' wall times


def test_export_wide_csv_round_trips_through_import(
    store_db: Path | str, tmp_path: Path, logged: str
) -> None:
    out = export_run(store_db, logged, tmp_path / "run.csv")
    assert out.read_text().splitlines() == [
        "step,loss,val",
        "0,3.0,2.0",
        "10,2.5,",  # not logged at step 10: an empty cell
        "20,2.0,nan",  # logged but missing: nan
        "30,1.5,",
        "40,1.0,2.0",
    ]
    info = import_csv(out, db=store_db, name="back")
    with open_store(store_db) as store:
        for key in ("loss", "val"):
            a, b = store.curve(logged, key), store.curve(info.id, key)
            np.testing.assert_array_equal(a.step, b.step)
            np.testing.assert_array_equal(a.value, b.value)  # NaN in the same places


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_export_parquet(store_db: Path | str, tmp_path: Path, logged: str, layout: str) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = export_run(store_db, logged, tmp_path / "run.parquet", layout=layout)  # type: ignore[arg-type]
    table = pq.read_table(out).to_pydict()
    if layout == "wide":
        assert table["step"] == [0, 10, 20, 30, 40]
        assert table["val"][1] is None  # not logged -> null
        assert np.isnan(table["val"][2])  # logged as NaN -> NaN
    else:
        assert sorted(set(table["key"])) == ["loss", "val"]
        assert len(table["step"]) == 8
        assert all(t > 1.6e9 for t in table["wall_time"])


def test_export_long_csv_keeps_wall_times(
    store_db: Path | str, tmp_path: Path, logged: str
) -> None:
    out = export_run(store_db, logged, tmp_path / "run.csv", layout="long", keys=["loss"])
    lines = out.read_text().splitlines()
    assert lines[0] == "key,step,value,wall_time"
    assert len(lines) == 6 and lines[1].startswith("loss,0,3.0,")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"path": "run.txt"}, InvalidInputError, "format must be 'csv' or 'parquet'"),
        ({"layout": "tall"}, InvalidInputError, "layout must be"),
        ({"run": "ghost"}, RunNotFoundError, "No run 'ghost'"),
    ],
)
def test_export_errors(
    store_db: Path | str,
    tmp_path: Path,
    logged: str,
    kwargs: dict[str, str],
    error: type,
    match: str,
) -> None:
    args = {"run": logged, "path": "run.csv", "layout": "wide"} | kwargs
    with pytest.raises(error, match=match):
        export_run(store_db, args["run"], tmp_path / args["path"], layout=args["layout"])  # type: ignore[arg-type]


def test_importers_name_the_run_after_the_file_and_record_its_source(
    store_db: Path | str, tmp_path: Path
) -> None:
    (tmp_path / "a.jsonl").write_text('{"step": 0, "loss": 1}\n{"step": 1, "loss": 0.5}\n')
    (tmp_path / "h.csv").write_text("_step,_timestamp,loss\n0,1700000000,1\n1,1700000060,0.5\n")
    j = import_jsonl(tmp_path / "a.jsonl", db=store_db)
    w = import_wandb(tmp_path / "h.csv", db=store_db, project="wb")
    assert (j.name, j.project, j.n_points) == ("a", "imported", 2)
    assert j.config["imported_from"] == str((tmp_path / "a.jsonl").resolve())
    assert (w.name, w.project) == ("h", "wb")
    assert (w.start_time, w.end_time) == (1700000000.0, 1700000060.0)  # from _timestamp


def test_import_tensorboard(store_db: Path | str, tmp_path: Path) -> None:
    writer_mod = pytest.importorskip("torch.utils.tensorboard")
    logdir = tmp_path / "tb-run"
    with writer_mod.SummaryWriter(str(logdir)) as w:
        for step in range(20):
            w.add_scalar("loss", 2.0 - step * 0.05, global_step=step)
    info = import_tensorboard(logdir, db=store_db)
    assert info.name == "tb-run" and info.n_points == 20
    with open_store(store_db) as store:
        assert store.curve(info.id, "loss").value[-1] == pytest.approx(1.05)


def test_a_failed_import_leaves_no_run_behind(store_db: Path | str, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("step,loss\n0,1\n1,zzz\n2,1\n")
    with pytest.raises(runcast.RuncastError):
        import_csv(tmp_path / "bad.csv", db=store_db)
    with open_store(store_db) as store:
        assert store.runs() == []


def test_read_csv_matches_what_import_stores(store_db: Path | str, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("step,loss\n3,1.0\n1,2.0\n")
    info = import_csv(tmp_path / "a.csv", db=store_db)
    with open_store(store_db) as store:
        assert (
            store.curve(info.id, "loss").step.tolist()
            == read_csv(tmp_path / "a.csv")["loss"].step.tolist()
        )


def test_wide_export_of_a_metric_named_step_is_refused_not_unreadable(
    store_db: Path | str, tmp_path: Path
) -> None:
    # a W&B history with _step and a "step" metric exported to a header 'step,step': the file
    # could not be read back
    pts = {"step": Points(np.array([0, 1]), np.array([0.0, 1.0]), np.array([1.0, 2.0]))}
    info = write_run(pts, db=store_db)
    with pytest.raises(InvalidInputError, match=r"metric named 'step'.*layout='long'"):
        export_run(store_db, info.id, tmp_path / "w.csv")
    out = export_run(store_db, info.id, tmp_path / "l.csv", layout="long")  # the way out works
    assert out.read_text().splitlines()[1:] == ["step,0,0.0,1.0", "step,1,1.0,2.0"]
