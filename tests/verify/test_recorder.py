from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import runcast
from runcast.errors import InvalidInputError
from runcast.verify import ProofRecorder, Task, load_proof, train_with_proof, verify
from runcast.verify._checkpoint import load_checkpoint


def test_proof_folder_layout(honest_proof: Path) -> None:
    proof = load_proof(honest_proof)
    # a checkpoint every 20 steps from 0 to 120, each with its hash and chain link
    assert [e["step"] for e in proof.checkpoints] == [0, 20, 40, 60, 80, 100, 120]
    assert all(len(e["sha256"]) == 64 and len(e["chain"]) == 64 for e in proof.checkpoints)
    assert proof.checkpoints[0]["chain"] == proof.commitment_digest
    assert (honest_proof / "commitment.json").exists()
    saved = load_checkpoint(honest_proof / proof.checkpoints[-1]["file"])
    assert set(saved) == {"model", "optimizer", "step"} and saved["step"] == 120
    assert saved["optimizer"]["state"]  # SGD's momentum buffers are in the checkpoint


def test_resumed_run_is_bitwise_the_uninterrupted_one(tmp_path: Path, mlp_task: Task) -> None:
    kw = {"steps": 60, "batch_size": 32, "checkpoint_every": 20, "nonce": bytes(range(32))}
    whole = train_with_proof(mlp_task, tmp_path / "whole", **kw)  # type: ignore[arg-type]
    part = train_with_proof(mlp_task, tmp_path / "part", stop_after=30, **kw)  # type: ignore[arg-type]
    assert not (part / "manifest.json").exists()  # an interrupted run claims nothing
    train_with_proof(mlp_task, part, resume=True, **kw)  # type: ignore[arg-type]
    a = json.loads((whole / "manifest.json").read_text())
    b = json.loads((part / "manifest.json").read_text())
    # steps 20-30 were trained twice (lost at the interruption): the same bytes either way
    assert [e["sha256"] for e in a["checkpoints"]] == [e["sha256"] for e in b["checkpoints"]]
    assert b["resumes"] == 1
    assert verify(part, mlp_task).passed


def test_crashed_run_resumes_from_the_checkpoint_log(tmp_path: Path, mlp_task: Task) -> None:
    kw = {"steps": 60, "batch_size": 32, "checkpoint_every": 20, "nonce": bytes(range(32))}
    part = train_with_proof(mlp_task, tmp_path, stop_after=50, **kw)  # type: ignore[arg-type]
    # a crash leaves no progress.json: the log appended after every checkpoint remains, its
    # last line perhaps torn
    (part / "progress.json").unlink()
    with (part / "checkpoints.jsonl").open("a") as log:
        log.write('{"step": 6')
    rec = ProofRecorder.resume(part, mlp_task.dataset)
    assert [e["step"] for e in rec.entries] == [0, 20, 40] and rec.next_step == 40
    # ... and the torn line is gone, so what is appended after it will be read back
    lines = (part / "checkpoints.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 20, 40]
    with pytest.raises(Exception, match="did not finish"):
        load_proof(part)


def test_run_is_linked_to_the_store(tmp_path: Path, mlp_task: Task) -> None:
    run = runcast.init(project="proof", name="mlp", db=tmp_path / "runs.db")
    folder = train_with_proof(
        mlp_task, tmp_path / "p", steps=40, batch_size=32, checkpoint_every=20, run=run
    )
    run.finish()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["run"]["id"] == run.id and manifest["run"]["project"] == "proof"
    curve = runcast.open_store(tmp_path / "runs.db").curve(run.id, "proof_checkpoint")
    assert list(curve.step) == [0, 20, 40]


def test_recorder_refuses_misuse(tmp_path: Path) -> None:
    data = torch.utils.data.TensorDataset(torch.randn(64, 2), torch.randn(64, 1))
    rec = ProofRecorder(tmp_path, data, steps=4, batch_size=8, checkpoint_every=2)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(InvalidInputError, match="start"):
        rec.record(0, np.arange(8), model, opt)
    rec.start(model, opt)
    with pytest.raises(InvalidInputError, match="expected 0"):
        rec.record(1, np.arange(8), model, opt)
    rec.close()
    with pytest.raises(InvalidInputError, match="already holds a proof"):
        ProofRecorder(tmp_path, data, steps=4, batch_size=8)
    with pytest.raises(InvalidInputError, match="steps"):
        ProofRecorder(tmp_path / "x", data, steps=0, batch_size=8)
    with pytest.raises(InvalidInputError, match="not the one committed"):
        ProofRecorder.resume(tmp_path, torch.utils.data.TensorDataset(torch.zeros(64, 2)))


def test_checkpoints_are_written_off_the_training_thread(tmp_path: Path) -> None:
    import threading

    from runcast.verify import _writer

    seen: list[str] = []
    real = _writer.file_hash

    def spy(chunks: list[bytes]) -> str:
        seen.append(threading.current_thread().name)
        return real(chunks)

    _writer.file_hash = spy  # type: ignore[assignment]
    try:
        data = torch.utils.data.TensorDataset(torch.randn(64, 2), torch.randn(64, 1))
        task = Task(
            model=lambda: torch.nn.Linear(2, 1),
            optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
            dataset=data,
            loss=lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(dim=1),
        )
        train_with_proof(task, tmp_path, steps=4, batch_size=8, checkpoint_every=2)
    finally:
        _writer.file_hash = real  # type: ignore[assignment]
    assert seen == ["runcast-proof"] * 3  # every hash (and write) in the writer thread


def test_checkpoint_bytes_are_safetensors_whatever_the_dtype() -> None:
    import safetensors.torch as st

    from runcast.verify._checkpoint import dump_checkpoint

    for dtype in (torch.float32, torch.bfloat16):  # numpy has no bfloat16: the torch path
        model = torch.nn.Linear(3, 2).to(dtype)
        opt = torch.optim.Adam(model.parameters())
        model(torch.ones(1, 3, dtype=dtype)).sum().backward()
        opt.step()
        payload = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 1}
        data = dump_checkpoint(payload)
        back = load_checkpoint(data)
        assert back["model"]["weight"].dtype == dtype
        assert torch.equal(back["model"]["weight"], model.weight.detach())
        moment = opt.state[model.weight]["exp_avg"]
        assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], moment)
        # the file safetensors itself reads (either path writes the same format)
        assert set(st.load(data)) >= {"model.weight", "optim.0.exp_avg", "optim.0.exp_avg_sq"}


def test_batches_kept_without_a_copy_record_the_same_proof(tmp_path: Path, mlp_task: Task) -> None:
    # the yielded batch is kept as is; a list (or the caller's own array) is copied: the chain
    # and the checkpoints must not tell them apart, across epochs (50 batches each here)
    manifests = []
    for name, as_given in (("view", lambda idx: idx), ("list", lambda idx: idx.tolist())):
        rec = ProofRecorder(
            tmp_path / name, mlp_task.dataset, steps=120, batch_size=32, checkpoint_every=40,
            nonce=bytes(range(32)),
        )  # fmt: skip
        rec.seed()
        model = mlp_task.model()
        opt = mlp_task.optimizer(model)
        rec.start(model, opt)
        for step, idx in rec.batches():
            mlp_task.train_step(model, opt, mlp_task.batch(idx), step)
            rec.record(step, as_given(idx), model, opt)
        manifests.append(json.loads((rec.finish() / "manifest.json").read_text()))
    view, copied = ([(e["chain"], e["sha256"]) for e in m["checkpoints"]] for m in manifests)
    assert view == copied and len(view) == 4
