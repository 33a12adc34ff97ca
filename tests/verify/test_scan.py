"""The signals that choose which segments to replay point at the forged ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.stats import mannwhitneyu

from runcast.verify import VerifyConfig, train_with_proof, verify
from runcast.verify._checkpoint import dump_checkpoint, load_checkpoint
from runcast.verify._memo import segment_auc, u_test
from runcast.verify._scan import PARALLEL, robust_z
from runcast.verify.attacks import fabricated_segments
from runcast.verify.examples import digits_cnn, digits_mlp


def test_u_test_is_scipys_asymptotic_mann_whitney() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(-0.3, 1, 32), rng.normal(0, 1, 64)
    for x, y in ((a, b), (np.round(a), np.round(b))):  # with and without ties
        auc, p = segment_auc(x, y)
        ref = mannwhitneyu(x, y, alternative="less", method="asymptotic", use_continuity=False)
        assert abs(p - ref.pvalue) < 1e-12
        assert abs(auc - (1 - ref.statistic / (len(x) * len(y)))) < 1e-12
    # the z is positive when the first sample is the smaller, as the test claims
    assert u_test(a, b)[1] > 0 > u_test(b, a)[1]


def test_robust_z_ignores_what_does_not_vary() -> None:
    assert robust_z(np.ones(5)).tolist() == [0.0] * 5
    z = robust_z(np.array([0.1, -0.2, 0.0, 0.3, -0.1, 9.0]))
    assert int(np.argmax(z)) == 5 and z[5] > 10


def test_interpolated_segments_are_flagged_and_replayed(tmp_path: Path) -> None:
    # 8 segments, the second half interpolated: the linear and frozen-state flags put those
    # segments first, so 3 replays are enough to catch it
    task = digits_mlp()
    folder, _ = fabricated_segments(
        task, tmp_path, steps=240, batch_size=32, checkpoint_every=30, nonce=bytes(32)
    )
    report = verify(folder, task, config=VerifyConfig(seed=0, replay_min=3, replay_share=0.01))
    replay = report.check("replay").numbers
    signals = replay["signals"]
    fabricated = range(4, 8)
    # segment 4 ends on the quarter-trained optimizer state; 5-7 keep it unchanged
    assert [signals["frozen"][j] for j in range(8)] == [0.0] * 5 + [1.0] * 3
    assert all(signals["linear"][j] >= -np.log10(PARALLEL) for j in fabricated)
    assert max(signals["linear"][j] for j in range(3)) < 2  # honest updates are far from parallel
    assert set(replay["segments"]) & set(fabricated)
    assert not report.passed and report.failed == ["replay"]


def test_rounding_noise_is_measured_in_float64_when_it_can_decide(tmp_path: Path) -> None:
    task = digits_cnn()
    folder = train_with_proof(
        task, tmp_path, steps=60, batch_size=32, checkpoint_every=20, nonce=bytes(32)
    )
    # same machine, same threads: every distance is 0, within the floor, so the noise cannot
    # change the verdict and the float64 replay is skipped
    lazy = verify(folder, task, config=VerifyConfig(seed=0)).check("replay").numbers
    assert lazy["rounding_noise"] is None and lazy["steps_replayed"] == 60
    assert lazy["tolerance"] == VerifyConfig().replay_tolerance
    replay = verify(folder, task, config=VerifyConfig(seed=0, measure_noise=True))
    numbers = replay.check("replay").numbers
    # float32 against float64 over 20 steps: far below the update, far above zero
    assert 1e-9 < numbers["rounding_noise"] < 1e-4
    assert numbers["steps_replayed"] == 60 + 2 * 20  # a float64 step counts as two
    factor = VerifyConfig().noise_factor
    assert numbers["tolerance"] == max(1e-3, factor * numbers["rounding_noise"])
    assert torch.get_default_dtype() == torch.float32  # the float64 replay restores it


def test_weights_turned_nan_are_replayed_first(tmp_path: Path) -> None:
    import json

    from runcast.verify._hashing import file_hash

    task = digits_mlp()
    folder = train_with_proof(
        task, tmp_path, steps=120, batch_size=32, checkpoint_every=20, nonce=bytes(32)
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["checkpoints"][4]
    state = load_checkpoint(folder / entry["file"])
    state["model"]["0.weight"][0, 0] = float("nan")
    (folder / entry["file"]).write_bytes(dump_checkpoint(state))
    entry["sha256"] = file_hash([(folder / entry["file"]).read_bytes()])
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = verify(folder, task, config=VerifyConfig(seed=0, replay_share=0.01))
    replay = report.check("replay").numbers
    assert 3 in replay["segments"]  # the segment that ends on the NaN, among 3 of 6
    assert report.failed == ["replay"]


def test_segment_trained_on_the_tail_ranks_first(tmp_path: Path) -> None:
    # one of 8 segments trained on the held-out tail: on the digits MLP, which does not
    # memorise, the tail's losses fall more than the training records' only there
    from runcast.verify.attacks import data_substitution

    task = digits_mlp()
    folder, _ = data_substitution(
        task, tmp_path, steps=400, batch_size=32, checkpoint_every=50, nonce=bytes(32)
    )
    report = verify(folder, task, config=VerifyConfig(seed=0))
    replay = report.check("replay").numbers
    tail = np.array(replay["signals"]["tail"])
    assert int(np.argmax(tail)) == 4 and tail[4] > 2
    assert 4 in replay["segments"] and report.failed == ["replay"]
