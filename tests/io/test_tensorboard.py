from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from runcast.errors import ImportFormatError, RuncastWarning
from runcast.io import read_tensorboard
from runcast.io._tensorboard import tensorboard_points

SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter


def test_every_point_is_read_beyond_tensorboards_10000_default(tmp_path: Path) -> None:
    n = 12_000  # TensorBoard's own loader keeps only 10,000 scalars per tag by default
    with SummaryWriter(str(tmp_path)) as w:
        for step in range(n):
            w.add_scalar("train/loss", 1.0 / (step + 1), global_step=step)
    c = read_tensorboard(tmp_path)["train/loss"]
    assert len(c) == n
    np.testing.assert_allclose(c.value, 1.0 / (np.arange(n) + 1), rtol=1e-6)  # float32 in TB


def test_several_tags_wall_times_and_nan(tmp_path: Path) -> None:
    with SummaryWriter(str(tmp_path)) as w:
        for step in range(0, 50, 10):
            w.add_scalar("loss", 3.0 - step / 100, global_step=step)
            if step % 20 == 0:
                w.add_scalar("lr", float("nan") if step == 20 else 0.1, global_step=step)
    pts = tensorboard_points(tmp_path)
    assert sorted(pts) == ["loss", "lr"]
    assert pts["loss"].step.tolist() == [0, 10, 20, 30, 40]
    assert np.isnan(pts["lr"].value).tolist() == [False, True, False]  # NaN = missing
    assert (pts["loss"].wall > 1.6e9).all()  # real wall times, kept for import


def test_add_scalars_subfolders_are_prefixed(tmp_path: Path) -> None:
    with SummaryWriter(str(tmp_path)) as w:
        for step in range(3):
            w.add_scalars("loss", {"train": 1.0 - step * 0.1, "val": 1.2}, global_step=step)
    curves = read_tensorboard(tmp_path)
    # add_scalars writes one sub-folder per series, named <tag>_<series>
    assert sorted(curves) == ["loss", "loss_train/loss", "loss_val/loss"] or sorted(curves) == [
        "loss_train/loss",
        "loss_val/loss",
    ]
    assert curves["loss_train/loss"].value.tolist() == pytest.approx([1.0, 0.9, 0.8])


def test_a_restart_that_repeats_steps_keeps_the_later_values(tmp_path: Path) -> None:
    with SummaryWriter(str(tmp_path)) as w:
        for step in range(5):
            w.add_scalar("loss", 1.0, global_step=step)
    with SummaryWriter(str(tmp_path)) as w:  # resumed from a step-2 checkpoint
        for step in range(2, 6):
            w.add_scalar("loss", 0.5, global_step=step)
    c = read_tensorboard(tmp_path)["loss"]
    assert c.step.tolist() == [0, 1, 2, 3, 4, 5]
    assert c.value.tolist() == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5]


@pytest.mark.parametrize("make", ["missing", "empty", "no-scalars"])
def test_folders_without_scalars_are_clear_errors(tmp_path: Path, make: str) -> None:
    target = tmp_path / "logs"
    if make != "missing":
        target.mkdir()
    if make == "no-scalars":
        with SummaryWriter(str(target)) as w:
            w.add_text("note", "hello", global_step=0)
    match = {
        "missing": "no such folder",
        "empty": "no TensorBoard event files",
        "no-scalars": "no scalar summaries",
    }[make]
    with pytest.raises(ImportFormatError, match=match):
        read_tensorboard(target)


def test_a_file_that_is_not_an_event_file_is_named_as_such(tmp_path: Path) -> None:
    # it read the file's folder and said "the event files hold no scalar summaries"
    f = tmp_path / "log.csv"
    f.write_text("step,loss\n0,1\n")
    with pytest.raises(ImportFormatError, match="not a TensorBoard event file"):
        read_tensorboard(f)


def _event_file(folder: Path, n: int) -> Path:
    with SummaryWriter(str(folder)) as w:
        for s in range(n):
            w.add_scalar("loss", 1.0 / (s + 1), global_step=s)
    return next(folder.glob("*tfevents*"))


def test_an_event_file_damaged_in_the_middle_is_named_in_a_warning(tmp_path: Path) -> None:
    # TensorBoard stops at the first bad checksum without a word: half the run was lost silently
    f = _event_file(tmp_path, 1000)
    data = f.read_bytes()
    half = len(data) // 2
    f.write_bytes(data[:half] + b"\x00" * 50 + data[half + 50 :])
    with pytest.warns(RuncastWarning, match=r"damaged after its first \d+ records"):
        curves = read_tensorboard(tmp_path)
    assert 0 < len(curves["loss"]) < 1000  # what could be read is still imported


def test_an_event_file_cut_short_at_the_end_reads_without_a_warning(tmp_path: Path) -> None:
    # a run still writing, or killed, leaves a partial last record: not damage
    f = _event_file(tmp_path, 1000)
    data = f.read_bytes()
    f.write_bytes(data[:-7])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuncastWarning)
        assert len(read_tensorboard(tmp_path)["loss"]) == 999
