"""Forged proofs of training: the attack suite a verifier must catch.

Each attack trains (or fakes training) the way a dishonest prover would, then writes a proof
whose files are self-consistent (every hash in the manifest matches), claiming an honest run on
the committed data and order. ``ATTACKS`` maps a name to a function
``attack(task, folder, *, steps, batch_size, checkpoint_every) -> (proof folder, task to verify
with)``; the task returned is what the prover would ship as its training script.

- ``data_substitution``: one segment trained on the held-out tail instead of its batches;
- ``reordered_batches``: each segment's batches trained in reverse order;
- ``spliced_checkpoint``: one checkpoint replaced by another run's at the same step;
- ``fabricated_segments``: the second half trained for a quarter of its steps, its checkpoints
  filled in by interpolating the weights;
- ``skipped_steps``: every other step skipped, all claimed as trained;
- ``foreign_init``: training started from weights not derived from the commitment (the first
  checkpoint is the committed one);
- ``data_added``: every batch padded with records the commitment does not cover;
- ``data_added_to_script``: the script ships records the commitment does not cover;
- ``adversarial_spoof``: in the spirit of Zhang et al. (2022): a short trajectory from the
  committed init to another run's final weights, each step's batch chosen from the data by
  gradient alignment with the remaining distance (the data-ordering form of optimising a few
  batches), the checkpoints set on the straight path to the target.

Example:
    >>> sorted(ATTACKS)[:3]
    ['adversarial_spoof', 'data_added', 'data_added_to_script']
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from runcast.verify._checkpoint import load_checkpoint
from runcast.verify._hashing import file_hash
from runcast.verify._recorder import MANIFEST, ProofRecorder
from runcast.verify._task import Task
from runcast.verify._train import train_with_proof
from runcast.verify._writer import write_json

Attack = Callable[..., tuple[Path, Task]]


def _recorder(
    task: Task, folder: Path, steps: int, batch_size: int, every: int, nonce: bytes | None = None
) -> ProofRecorder:
    return ProofRecorder(
        folder,
        task.dataset,
        steps=steps,
        batch_size=batch_size,
        checkpoint_every=every,
        config=task.config,
        nonce=nonce,
    )


def _other(nonce: bytes | None) -> bytes | None:
    """Another run's nonce: reproducible when the attacked run's is."""
    return None if nonce is None else bytes(b ^ 0xFF for b in nonce)


def _start(rec: ProofRecorder, task: Task) -> tuple[Any, Any]:
    rec.seed()
    model = task.model()
    optimizer = task.optimizer(model)
    rec.start(model, optimizer)
    return model, optimizer


def _honest(task: Task, rec: ProofRecorder, model: Any, opt: Any, step: int) -> None:
    idx = rec.order.batch(step)
    task.train_step(model, opt, task.batch(idx), step)
    rec.record(step, idx, model, opt)


def data_substitution(
    task: Task,
    folder: Path,
    *,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    nonce: bytes | None = None,
) -> tuple[Path, Task]:
    rec = _recorder(task, folder, steps, batch_size, checkpoint_every, nonce)
    model, opt = _start(rec, task)
    n_seg = steps // checkpoint_every
    lo, hi = (n_seg // 2) * checkpoint_every, (n_seg // 2 + 1) * checkpoint_every
    rng = np.random.default_rng(1)
    for step, idx in rec.batches():
        if lo <= step < hi:  # trains on held-out records, claims the committed batch
            task.train_step(model, opt, task.batch(rng.choice(rec.tail, batch_size)), step)
            rec.record(step, idx, model, opt)
        else:
            _honest(task, rec, model, opt, step)
    return rec.finish(), task


def reordered_batches(
    task: Task,
    folder: Path,
    *,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    nonce: bytes | None = None,
) -> tuple[Path, Task]:
    rec = _recorder(task, folder, steps, batch_size, checkpoint_every, nonce)
    model, opt = _start(rec, task)
    for s0 in range(0, steps, checkpoint_every):
        seg = list(range(s0, min(s0 + checkpoint_every, steps)))
        for step, real in zip(seg, reversed(seg), strict=True):
            task.train_step(model, opt, task.batch(rec.order.batch(real)), step)
            rec.record(step, rec.order.batch(step), model, opt)
    return rec.finish(), task


def _rewrite(folder: Path, index: int, source: Path) -> None:
    """Put ``source`` in place of checkpoint ``index`` and fix its hash in the manifest."""
    manifest = json.loads((folder / MANIFEST).read_text())
    entry = manifest["checkpoints"][index]
    data = source.read_bytes()
    (folder / entry["file"]).write_bytes(data)
    entry["sha256"] = file_hash([data])
    write_json(folder / MANIFEST, manifest)


def spliced_checkpoint(
    task: Task,
    folder: Path,
    *,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    nonce: bytes | None = None,
) -> tuple[Path, Task]:
    train_with_proof(
        task,
        folder,
        steps=steps,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
        nonce=nonce,
    )
    other = train_with_proof(
        task,
        tempfile.mkdtemp(prefix="runcast-other-"),
        nonce=_other(nonce),
        steps=steps,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
    )
    index = len(json.loads((folder / MANIFEST).read_text())["checkpoints"]) // 2
    name = json.loads((other / MANIFEST).read_text())["checkpoints"][index]["file"]
    _rewrite(folder, index, other / name)
    return folder, task


def fabricated_segments(
    task: Task,
    folder: Path,
    *,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    nonce: bytes | None = None,
) -> tuple[Path, Task]:
    import torch

    rec = _recorder(task, folder, steps, batch_size, checkpoint_every, nonce)
    model, opt = _start(rec, task)
    half = (steps // checkpoint_every // 2) * checkpoint_every
    for step in range(half):
        _honest(task, rec, model, opt, step)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for step in range(half, half + (steps - half) // 4):  # a quarter of the work
        task.train_step(model, opt, task.batch(rec.order.batch(step)), step)
    end = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for step in range(half, steps):  # claimed, with weights on the line from start to end
        nxt = step + 1
        if nxt % checkpoint_every == 0 or nxt == steps:
            w = (nxt - half) / (steps - half)
            with torch.no_grad():
                model.load_state_dict(
                    {
                        # entries equal at both ends (an attention mask's -inf) stay as they
                        # are: lerp(-inf, -inf) is NaN, which no forger would ship
                        k: torch.where(
                            start[k] == end[k],
                            start[k],
                            torch.lerp(start[k].float(), end[k].float(), w).to(start[k].dtype),
                        )
                        if start[k].is_floating_point()
                        else end[k]
                        for k in start
                    }
                )
        rec.record(step, rec.order.batch(step), model, opt)
    return rec.finish(), task


def skipped_steps(
    task: Task,
    folder: Path,
    *,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    nonce: bytes | None = None,
) -> tuple[Path, Task]:
    rec = _recorder(task, folder, steps, batch_size, checkpoint_every, nonce)
    model, opt = _start(rec, task)
    for step, idx in rec.batches():
        if step % 2 == 0:
            task.train_step(model, opt, task.batch(idx), step)
        rec.record(step, idx, model, opt)
    return rec.finish(), task


def foreign_init(
    task: Task,
    folder: Path,
    *,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    nonce: bytes | None = None,
) -> tuple[Path, Task]:
    import torch

    rec = _recorder(task, folder, steps, batch_size, checkpoint_every, nonce)
    model, opt = _start(rec, task)  # checkpoint 0: the committed init
    torch.manual_seed(12345)  # ... but training starts from weights the prover chose
    model.load_state_dict(task.model().state_dict())
    for step, idx in rec.batches():
        task.train_step(model, opt, task.batch(idx), step)
        rec.record(step, idx, model, opt)
    return rec.finish(), task


def _outside_records(task: Task, n: int) -> Any:
    """Records the commitment does not cover: committed ones with their inputs perturbed."""
    import torch

    g = torch.Generator().manual_seed(7)
    fields = task.batch(np.arange(n) % len(task.dataset))
    x = fields[0]
    if x.is_floating_point():
        x = x + 0.5 * torch.randn(x.shape, generator=g)
    else:
        x = torch.randint(0, int(x.max()) + 1, x.shape, generator=g)
    return (x, *fields[1:])


def data_added(
    task: Task,
    folder: Path,
    *,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    nonce: bytes | None = None,
) -> tuple[Path, Task]:
    import torch

    rec = _recorder(task, folder, steps, batch_size, checkpoint_every, nonce)
    model, opt = _start(rec, task)
    extra = _outside_records(task, 256)
    for step, idx in rec.batches():
        rows = torch.arange(step * 8, step * 8 + 8) % 256
        batch = tuple(torch.cat([a, b[rows]]) for a, b in zip(task.batch(idx), extra, strict=True))
        task.train_step(model, opt, batch, step)
        rec.record(step, idx, model, opt)
    return rec.finish(), task


def data_added_to_script(
    task: Task,
    folder: Path,
    *,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    nonce: bytes | None = None,
) -> tuple[Path, Task]:
    import torch

    train_with_proof(
        task,
        folder,
        steps=steps,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
        nonce=nonce,
    )
    extra = _outside_records(task, 64)
    base = task.batch(np.arange(len(task.dataset)))
    bigger = torch.utils.data.TensorDataset(
        *(torch.cat([a, b]) for a, b in zip(base, extra, strict=True))
    )
    return folder, dataclasses.replace(task, dataset=bigger)


def adversarial_spoof(
    task: Task,
    folder: Path,
    *,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    nonce: bytes | None = None,
) -> tuple[Path, Task]:
    import torch

    target_run = train_with_proof(
        task,
        tempfile.mkdtemp(prefix="runcast-target-"),
        nonce=_other(nonce),
        steps=steps,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
    )
    last = json.loads((target_run / MANIFEST).read_text())["checkpoints"][-1]["file"]
    target = load_checkpoint(target_run / last)["model"]
    short = 2 * min(checkpoint_every, 8)  # the short trajectory the spoof claims
    rec = _recorder(task, folder, short, batch_size, short // 2, nonce)
    model, opt = _start(rec, task)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    names = [n for n, _ in model.named_parameters()]
    rng = np.random.default_rng(3)
    for step in range(short):
        goal = {k: torch.lerp(start[k], target[k], (step + 1) / short) for k in names}
        pool = rng.choice(rec.order.train, size=4 * batch_size, replace=False)
        scores = []
        for i in pool:  # each record's gradient against the way to the next point
            model.zero_grad()
            task.loss(model, task.batch([i])).mean().backward()
            scores.append(
                sum(
                    float(((goal[n] - p.detach()) * -p.grad).sum())
                    for n, p in model.named_parameters()
                    if p.grad is not None
                )
            )
        chosen = pool[np.argsort(scores)[-batch_size:]]
        task.train_step(model, opt, task.batch(chosen), step)
        if (step + 1) % (short // 2) == 0:
            model.load_state_dict({**model.state_dict(), **goal})  # on the path, as claimed
        rec.record(step, rec.order.batch(step), model, opt)
    return rec.finish(), task


ATTACKS: dict[str, Attack] = {
    "data_substitution": data_substitution,
    "reordered_batches": reordered_batches,
    "spliced_checkpoint": spliced_checkpoint,
    "fabricated_segments": fabricated_segments,
    "skipped_steps": skipped_steps,
    "foreign_init": foreign_init,
    "data_added": data_added,
    "data_added_to_script": data_added_to_script,
    "adversarial_spoof": adversarial_spoof,
}
