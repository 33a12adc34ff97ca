"""Proofs written by earlier runcast versions still verify (formats 1 and 2, kept as data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from runcast.verify import Task, VerifyConfig, load_proof, train_with_proof, verify
from runcast.verify._hashing import file_hash

DATA = Path(__file__).parent / "data"


def _legacy_task() -> Task:
    # the task tests/verify/data/proof_v1 and proof_v2 were recorded with (by the recorder of
    # commits 42076b0 and a918b67: 40 steps, batch 8, a checkpoint every 10, nonce 0..31)
    x = ((torch.arange(120 * 3).reshape(120, 3) % 7) - 3.0) / 3.0
    y = x.sum(dim=1, keepdim=True) * 0.5
    return Task(
        model=lambda: torch.nn.Linear(3, 1),
        optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9),
        dataset=torch.utils.data.TensorDataset(x, y),
        loss=lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(dim=1),
    )


@pytest.mark.parametrize("version", [1, 2])
def test_proofs_of_earlier_formats_verify(tmp_path: Path, version: int) -> None:
    folder = shutil.copytree(DATA / f"proof_v{version}", tmp_path / "p")
    assert load_proof(folder).version == version
    report = verify(folder, _legacy_task(), config=VerifyConfig(seed=0))
    assert report.passed, str(report)
    assert report.check("chain").numbers["steps"] == 40


@pytest.mark.parametrize("version", [1, 2])
def test_an_earlier_format_with_a_reordered_step_fails_the_chain(
    tmp_path: Path, version: int
) -> None:
    # the per-step chain is still checked link by link; and a proof relabelled as format 3
    # fails too (its links are per step, not per segment)
    folder = shutil.copytree(DATA / f"proof_v{version}", tmp_path / "p")
    m = json.loads((folder / "manifest.json").read_text())
    m["checkpoints"][2]["chain"], m["checkpoints"][3]["chain"] = (
        m["checkpoints"][3]["chain"],
        m["checkpoints"][2]["chain"],
    )
    (folder / "manifest.json").write_text(json.dumps(m))
    report = verify(folder, _legacy_task(), config=VerifyConfig(seed=0))
    assert not report.check("chain").passed
    assert report.check("chain").numbers["first_bad_step"] == 20
    m["checkpoints"][2]["chain"], m["checkpoints"][3]["chain"] = (
        m["checkpoints"][3]["chain"],
        m["checkpoints"][2]["chain"],
    )
    m["version"] = 3
    (folder / "manifest.json").write_text(json.dumps(m))
    assert not verify(folder, _legacy_task(), config=VerifyConfig(seed=0)).check("chain").passed


def test_a_new_proof_is_format_3_with_one_link_per_segment(tmp_path: Path) -> None:
    task = _legacy_task()
    folder = train_with_proof(
        task, tmp_path, steps=40, batch_size=8, checkpoint_every=10, nonce=bytes(range(32))
    )
    proof = load_proof(folder)
    assert proof.version == 3
    old = load_proof(DATA / "proof_v2")
    # the same run as the format-2 fixture: the same checkpoints, bit for bit (the weights do
    # not depend on the format), and other chain links after the first (the commitment)
    assert [e["sha256"] for e in proof.checkpoints] == [e["sha256"] for e in old.checkpoints]
    assert proof.checkpoints[0]["chain"] == old.checkpoints[0]["chain"]
    pairs = zip(proof.checkpoints[1:], old.checkpoints[1:], strict=True)
    assert all(a["chain"] != b["chain"] for a, b in pairs)
    assert verify(folder, task, config=VerifyConfig(seed=0)).passed


def test_a_format_2_proof_resumes_in_format_2(tmp_path: Path) -> None:
    # an interrupted format-2 proof, continued by this recorder: its chain stays per step
    folder = shutil.copytree(DATA / "proof_v2", tmp_path / "p")
    log = (folder / "checkpoints.jsonl").read_text().splitlines()[:3]  # steps 0, 10, 20
    (folder / "checkpoints.jsonl").write_text("".join(line + "\n" for line in log))
    (folder / "manifest.json").unlink()
    for name in ("ckpt-00000030.safetensors", "ckpt-00000040.safetensors"):
        (folder / name).unlink()
    task = _legacy_task()
    train_with_proof(task, folder, steps=40, batch_size=8, checkpoint_every=10, resume=True)
    again = load_proof(folder)
    want = load_proof(DATA / "proof_v2")
    assert again.version == 2
    assert [e["chain"] for e in again.checkpoints] == [e["chain"] for e in want.checkpoints]
    assert [e["sha256"] for e in again.checkpoints] == [
        file_hash([(DATA / "proof_v2" / e["file"]).read_bytes()]) for e in want.checkpoints
    ]
    assert verify(folder, task, config=VerifyConfig(seed=0)).passed
