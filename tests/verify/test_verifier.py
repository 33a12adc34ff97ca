from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from runcast.verify import Task, VerifyConfig, train_with_proof, verify
from runcast.verify._hashing import file_hash
from runcast.verify.examples import FAMILIES

CFG = VerifyConfig(seed=0)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_honest_run_passes_every_check(tmp_path: Path, family: str) -> None:
    task = FAMILIES[family](None)
    folder = train_with_proof(
        task, tmp_path, steps=80, batch_size=32, checkpoint_every=20, nonce=bytes(32)
    )
    report = verify(folder, task, config=CFG)
    assert report.passed, str(report)
    assert [c.name for c in report.checks] == [
        "files",
        "commitment",
        "chain",
        "init",
        "replay",
        "memorisation",
    ]
    replay = report.check("replay").numbers
    # same machine, same threads: the replay is exact
    assert replay["largest_distance"] == 0.0
    assert replay["tolerance"] >= CFG.replay_tolerance
    assert 0 <= report.check("memorisation").numbers["combined_p_value"] <= 1
    assert report.work_share > 0 and report.verify_seconds > 0


def test_trained_with_other_thread_count_passes(tmp_path: Path, mlp_task: Task) -> None:
    torch.set_num_threads(2)
    folder = train_with_proof(mlp_task, tmp_path, steps=80, batch_size=32, checkpoint_every=20)
    torch.set_num_threads(1)
    # the replay runs on the recorded 2 threads: the same reduction order, the same bits
    report = verify(folder, mlp_task, config=CFG)
    assert report.passed, str(report)
    assert report.check("replay").numbers["threads"] == 2
    assert report.check("replay").numbers["largest_distance"] == 0
    assert torch.get_num_threads() == 1  # restored after the replays
    # a verifier that cannot match it: other reduction orders, far inside the tolerance
    other = verify(folder, mlp_task, config=dataclasses.replace(CFG, threads=1))
    assert other.passed, str(other)
    assert 0 < other.check("replay").numbers["largest_distance"] < 1e-4


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _garbage_manifest(p: Path) -> None:
    (p / "manifest.json").write_text("{not json")


def _wrong_type(p: Path) -> None:
    m = json.loads((p / "manifest.json").read_text())
    m["protocol"]["steps"] = "many"
    (p / "manifest.json").write_text(json.dumps(m))


def _flip_byte(p: Path) -> None:
    f = p / "ckpt-00000040.safetensors"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))


def _delete_checkpoint(p: Path) -> None:
    (p / "ckpt-00000060.safetensors").unlink()


def _not_a_checkpoint(p: Path) -> None:
    # a file the reader refuses, with its hash fixed so that only loading it can fail
    f = p / "ckpt-00000020.safetensors"
    f.write_bytes(b"this is not a checkpoint")
    m = json.loads((p / "manifest.json").read_text())
    m["checkpoints"][1]["sha256"] = file_hash([f.read_bytes()])
    (p / "manifest.json").write_text(json.dumps(m))


def _path_escape(p: Path) -> None:
    m = json.loads((p / "manifest.json").read_text())
    m["checkpoints"][1]["file"] = "../../etc/passwd"
    (p / "manifest.json").write_text(json.dumps(m))


def _edit_config(p: Path) -> None:
    m = json.loads((p / "manifest.json").read_text())
    m["config"]["lr"] = 0.5
    (p / "manifest.json").write_text(json.dumps(m))


def _edit_nonce(p: Path) -> None:
    m = json.loads((p / "manifest.json").read_text())
    m["commitment"]["nonce"] = "11" * 32
    (p / "manifest.json").write_text(json.dumps(m))


def _claim_more_steps(p: Path) -> None:
    m = json.loads((p / "manifest.json").read_text())
    m["protocol"]["steps"] = 240
    (p / "manifest.json").write_text(json.dumps(m))


def _no_manifest(p: Path) -> None:
    (p / "manifest.json").unlink()


TAMPERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage manifest": (_garbage_manifest, "files"),
    "wrong type": (_wrong_type, "files"),
    "flipped byte": (_flip_byte, "files"),
    "deleted checkpoint": (_delete_checkpoint, "files"),
    "not a checkpoint": (_not_a_checkpoint, "replay"),
    "path escape": (_path_escape, "files"),
    "edited config": (_edit_config, "commitment"),
    "edited nonce": (_edit_nonce, "commitment"),
    "more steps claimed": (_claim_more_steps, "chain"),
    "no manifest": (_no_manifest, "files"),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampered_proof_is_a_failed_check_not_a_traceback(
    tmp_path: Path, honest_proof: Path, mlp_task: Task, name: str
) -> None:
    tamper, check = TAMPERS[name]
    folder = _copy(honest_proof, tmp_path / "p")
    tamper(folder)
    report = verify(folder, mlp_task, config=CFG)  # must not raise
    assert not report.passed
    # the first failing check is the one that sees the tampering, with a message
    first = next(c for c in report.checks if not c.passed)
    assert first.name == check, str(report)
    assert first.summary


def test_the_unaltered_copy_passes(tmp_path: Path, honest_proof: Path, mlp_task: Task) -> None:
    # the tampering tests fail because of the tampering, not the copy
    assert verify(_copy(honest_proof, tmp_path / "p"), mlp_task, config=CFG).passed
