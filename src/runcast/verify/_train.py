"""Train a :class:`Task` with a proof: the recorder's loop, written once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runcast.verify._recorder import ProofRecorder
from runcast.verify._task import Task


def train_with_proof(
    task: Task,
    path: str | Path,
    *,
    steps: int,
    batch_size: int,
    checkpoint_every: int = 100,
    holdout: float = 0.1,
    code: str | Path | None = None,
    run: Any = None,
    seed_each_step: bool = False,
    resume: bool = False,
    stop_after: int | None = None,
    nonce: bytes | None = None,
) -> Path:
    """Train ``task`` for ``steps`` steps on the committed order, recording a proof in ``path``.

    Args:
        resume: continue the interrupted proof in ``path`` from its last checkpoint.
        stop_after: stop (as if interrupted) once this many steps are done; resume later.
        nonce: the committed random value (see :class:`ProofRecorder`); None: fresh.

    Example:
        >>> import tempfile, torch
        >>> from runcast.verify import Task, train_with_proof
        >>> data = torch.utils.data.TensorDataset(torch.randn(40, 3), torch.randn(40, 1))
        >>> task = Task(model=lambda: torch.nn.Linear(3, 1),
        ...             optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
        ...             dataset=data, loss=lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(dim=1))
        >>> proof = train_with_proof(task, tempfile.mkdtemp(), steps=4, batch_size=8,
        ...                          checkpoint_every=2)
        >>> (proof / "manifest.json").exists()
        True
    """
    if resume:
        rec = ProofRecorder.resume(path, task.dataset, run=run)
    else:
        rec = ProofRecorder(
            path,
            task.dataset,
            steps=steps,
            batch_size=batch_size,
            checkpoint_every=checkpoint_every,
            holdout=holdout,
            config=task.config,
            code=code,
            run=run,
            seed_each_step=seed_each_step,
            nonce=nonce,
        )
    rec.seed()
    model = task.model()
    optimizer = task.optimizer(model)
    rec.start(model, optimizer)
    for step, idx in rec.batches():
        task.train_step(model, optimizer, task.batch(idx), step)
        rec.record(step, idx, model, optimizer)
        if stop_after is not None and step + 1 >= stop_after:
            rec.close()
            return rec.path
    return rec.finish()
