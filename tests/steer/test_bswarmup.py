"""BatchSizeWarmup and WarmupBatchSampler: doubling rule, LR rule, decisions, exact resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import runcast
from runcast.errors import InvalidInputError
from runcast.steer import BatchSizeWarmup, GradientNoiseScale, WarmupBatchSampler


def test_doubles_while_the_measured_cbs_is_twice_the_batch() -> None:
    w = BatchSizeWarmup(4, 64, cbs=[(0, 2), (1000, 20), (4000, 100)])
    sizes = []
    for step, seen in enumerate(range(0, 5000, 250)):
        w.update(step, seen)
        sizes.append(w.batch_size)
    # CBS(x) linear between points: >= 8 from x=334, >= 16 from 778, >= 32 from ~1,480,
    # >= 64 from ~2,805; then capped at max_batch
    assert sizes[:2] == [4, 4] and sizes[2] == 8  # 500 examples: CBS 11
    assert sizes[4] == 16  # 1,000: CBS 20
    assert sizes[6] == 32  # 1,500: CBS 33.3
    assert sizes[-1] == 64
    assert [d.numbers["batch_size"] for d in w.decisions] == [8, 16, 32, 64]
    assert all(d.action == "grow_batch" for d in w.decisions)


def test_lr_rule_and_reason() -> None:
    w = BatchSizeWarmup(8, 64, cbs=[(0, 40)], rule="linear")
    d = w.update(3, 0)
    # one update can double twice (40 >= 2 x 16): 8 -> 32, SGD's LR x 4
    assert (w.batch_size, w.lr_factor) == (32, 4.0)
    assert d.step == 3 and d.numbers["previous"] == 8 and d.numbers["cbs"] == 40
    assert d.reason == "CBS 40 (measured trajectory at 0 examples) > 2 x 8: batch 8 -> 32, LR x 4"
    adam = BatchSizeWarmup(8, 64, cbs=[(0, 17)])
    adam.update(0, 0)
    assert adam.lr_factor == pytest.approx(math.sqrt(2))
    assert not adam.update(1, 10)  # 17 <= 2 x 16: "continue"
    exact = BatchSizeWarmup(8, 64, cbs=[(0, 16)])
    assert not exact.update(0, 0)  # the CBS must exceed twice the batch, not equal it


def test_never_shrinks_and_never_passes_max_batch() -> None:
    w = BatchSizeWarmup(2, 8, cbs=[(0, 100), (10, 1)])
    w.update(0, 0)
    assert w.batch_size == 8  # capped
    w.update(1, 10)
    assert w.batch_size == 8  # the CBS fell: the batch stays


def test_noise_scale_source_with_multiplier() -> None:
    gns = GradientNoiseScale(horizon=None)
    w = BatchSizeWarmup(4, 128, noise_scale=gns, multiplier=10.0)
    assert not w.update(0, 0)  # no estimate yet (NaN): nothing grows
    gns.update(1 + 3.3 / 4, 1 + 3.3 / 32, 4, 32)  # B_simple = 3.3 -> CBS 33
    d = w.update(1, 100)
    assert w.batch_size == 32 and "10 x noise scale 3.3" in d.reason


def test_logs_each_change_to_the_run(tmp_path: Path) -> None:
    with runcast.init(db=tmp_path / "w.db") as run:
        w = BatchSizeWarmup(4, 16, cbs=[(0, 0), (100, 40)], run=run)
        for step in range(11):
            w.update(step, step * 10)
    with runcast.open_store(tmp_path / "w.db") as store:
        curve = store.curve(run.id, "batch_size")
    assert curve.value.tolist() == [8.0, 16.0]  # a point at each change only
    assert curve.step.tolist() == [d.step for d in w.decisions]


def test_state_dict_resumes_exactly_with_the_noise_source() -> None:
    gns = GradientNoiseScale(horizon=20)
    a = BatchSizeWarmup(4, 64, noise_scale=gns, multiplier=2.0)
    pairs = [(1 + b / 4, 1 + b / 32) for b in range(1, 40)]
    for i, (s, b) in enumerate(pairs[:20]):
        gns.update(s, b, 4, 32)
        a.update(i, i)
    state = a.state_dict()
    b_ = BatchSizeWarmup.from_state_dict(state)
    assert b_.batch_size == a.batch_size and b_.decisions == a.decisions
    for i, (s, b) in enumerate(pairs[20:], start=20):
        for w in (a, b_):
            assert w.noise_scale is not None
            w.noise_scale.update(s, b, 4, 32)
            w.update(i, i)
    assert b_.batch_size == a.batch_size and b_.decisions == a.decisions
    assert len(a.decisions) >= 2


def test_accumulation() -> None:
    w = BatchSizeWarmup(8, 64, cbs=[(0, 33)])
    w.update(0, 0)
    assert w.accumulation(4) == 8
    with pytest.raises(InvalidInputError, match="must divide base_batch"):
        w.accumulation(3)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((8, 48), {"cbs": [(0, 1)]}, "power of two"),
        ((8, 4), {"cbs": [(0, 1)]}, "power of two"),
        ((0, 4), {"cbs": [(0, 1)]}, "base_batch must be"),
        ((4, 8), {}, "neither"),
        ((4, 8), {"cbs": [(0, 1)], "noise_scale": GradientNoiseScale()}, "both"),
        ((4, 8), {"cbs": [(5, 1), (2, 3)]}, "examples increasing"),
        ((4, 8), {"cbs": [(0, -1)]}, "finite values >= 0"),
        ((4, 8), {"cbs": ["ab"]}, "pairs"),
        ((4, 8), {"cbs": [(0, 1)], "rule": "adam"}, "rule must be"),
        ((4, 8), {"noise_scale": GradientNoiseScale(), "multiplier": 0}, "multiplier"),
    ],
)
def test_bad_arguments(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        BatchSizeWarmup(*args, **kwargs)


def test_sampler_follows_the_batch_size_and_resumes_exactly() -> None:
    w = BatchSizeWarmup(2, 8, cbs=[(0, 0), (20, 20)])
    sampler = WarmupBatchSampler(w, n=13, seed=3)
    it = iter(sampler)
    seen, sizes, batches = 0, [], []
    for step in range(6):
        batch = next(it)
        batches.append(batch)
        sizes.append(len(batch))
        seen += len(batch)
        w.update(step, seen)
    assert sizes == [2, 2, 2, 4, 8, 8]  # CBS(x) = x examples: doubles past 4 and 8 seen
    # every epoch is a permutation: the first 13 indices drawn are all distinct
    flat = [i for b in batches for i in b]
    assert sorted(flat[:13]) == list(range(13))
    # resume: a new sampler from the state gives the batches the first would have given
    w2 = BatchSizeWarmup.from_state_dict(w.state_dict())
    s2 = WarmupBatchSampler(w2, n=13)
    s2.load_state_dict(sampler.state_dict())
    assert [next(iter(s2)) for _ in range(1)] == [next(it)]
