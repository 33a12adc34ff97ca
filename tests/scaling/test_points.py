"""ScalingData from arrays, tables, curves and the store."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import runcast
from runcast import Curve
from runcast.errors import InvalidInputError, NotEnoughDataError
from runcast.scaling import ScalingData


def test_from_arrays_broadcasts_scalars() -> None:
    pts = ScalingData.from_arrays([1e8, 2e8, 4e8], 1e9, [3.0, 2.9, 2.8], group=["a", "a", "b"])
    assert pts.d.tolist() == [1e9] * 3
    assert pts.group.tolist() == [0, 0, 1]
    assert np.isinf(pts.unique).all() and not pts.repeats


@pytest.mark.parametrize(
    ("n", "loss", "msg"),
    [([1e8, -1.0], [3.0, 2.0], "parameter counts"), ([1e8, 2e8], [3.0, 0.0], "Losses")],
)
def test_bad_points_are_named(n: list[float], loss: list[float], msg: str) -> None:
    with pytest.raises(InvalidInputError, match=msg):
        ScalingData.from_arrays(n, 1e9, loss)


def test_from_table_csv_gz_and_mapping(tmp_path: Path) -> None:
    path = tmp_path / "pts.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("params,tokens,loss,run\n1e8,2e9,3.1,a\n1e8,4e9,,a\n4e8,2e9,2.7,b\n")
    pts = ScalingData.from_table(path, n="params", d="tokens", group="run")
    # the empty loss cell is skipped, the rest kept in order
    assert pts.loss.tolist() == [3.1, 2.7] and pts.n.tolist() == [1e8, 4e8]
    cols = {"N": [1e8, 4e8], "D": [2e9, 2e9], "loss": [3.1, 2.7]}
    assert ScalingData.from_table(cols).loss.tolist() == [3.1, 2.7]
    with pytest.raises(InvalidInputError, match="no column 'tokens'"):
        ScalingData.from_table(cols, d="tokens")


def test_from_curves_drops_the_start_and_thins() -> None:
    c = Curve(np.arange(1, 101), np.linspace(4.0, 3.0, 100))
    pts = ScalingData.from_curves([c, c], [1e8, 2e8], [1e6, 2e6], drop_first=0.5, max_per_run=10)
    assert len(pts) == 20
    # only steps past 50 of 100, thinned to 10 per run, the last step always kept
    assert pts.d[:10].min() > 50e6 and pts.d[9] == 100e6 and pts.d[19] == 200e6
    final = ScalingData.from_curves([c], [1e8], 1e6, drop_first=1.0)
    assert final.d.tolist() == [100e6] and final.loss.tolist() == [3.0]
    with pytest.raises(NotEnoughDataError):
        ScalingData.from_curves([Curve([], [])], [1e8], 1e6)


def test_from_store_reads_config(db_path: Path) -> None:
    for size, tps in ((1e8, 1e6), (3e8, 2e6)):
        with runcast.init(
            project="scale",
            name=f"m{size:g}",
            db=db_path,
            config={"n_params": size, "tokens_per_step": tps},
        ) as run:
            for s in range(1, 21):
                run.log({"loss": 2.0 + 1.0 / s}, step=s * 10)
    with runcast.init(
        project="other", name="x", db=db_path, config={"tokens": 1e9, "steps": 100}
    ) as run:
        run.log({"loss": 3.0}, step=1)
    store = runcast.open_store(db_path)
    pts = ScalingData.from_store(store, project="scale", drop_first=0.0)
    assert len(pts) == 40 and set(pts.sizes.tolist()) == {1e8, 3e8}
    # D is step x tokens per step; every checkpoint of a run shares its group
    big = pts.n == 3e8
    assert pts.d[big].max() == 200 * 2e6
    assert np.unique(pts.group).size == 2
    with pytest.raises(InvalidInputError, match="has no parameter count"):
        ScalingData.from_store(store, project="other")


def test_auto_uses_final_losses_only_with_many_runs() -> None:
    c = Curve(np.arange(1, 101), np.linspace(4.0, 3.0, 100))
    few = ScalingData.from_curves([c] * 3, [1e8, 2e8, 4e8], 1e6)
    many = ScalingData.from_curves([c] * 12, np.geomspace(1e8, 1e9, 12).tolist(), 1e6)
    # 3 runs: every checkpoint past the first half; 12 runs: one final loss each
    assert len(few) == 3 * 20 and few.d.min() > 50e6
    assert len(many) == 12 and (many.d == 100e6).all()
    with pytest.raises(InvalidInputError, match="'auto'"):
        ScalingData.from_curves([c], [1e8], 1e6, drop_first="half")
