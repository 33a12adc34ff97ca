"""ProofRecorder: record a proof of training from a plain PyTorch loop.

Before the first step it commits (see :mod:`runcast.verify._commit`) and writes
``commitment.json``; the model is then built under the committed seed and trained on the
committed order. Every ``checkpoint_every`` steps the weights and the optimizer state are
copied, and a background thread extends a hash chain with the segment's batch indices and
writes the checkpoint with its hash. ``finish()`` writes
``manifest.json``, which ``runcast verify`` reads.

Example:
    >>> import tempfile, torch
    >>> from runcast.verify import ProofRecorder
    >>> data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    >>> rec = ProofRecorder(tempfile.mkdtemp(), data, steps=6, batch_size=8, checkpoint_every=3)
    >>> rec.seed()                       # the initial weights follow from the commitment
    >>> model = torch.nn.Linear(4, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> first = rec.start(model, opt)    # 0, or the step to resume at
    >>> for step, idx in rec.batches():
    ...     x, y = data[idx]
    ...     opt.zero_grad(); ((model(x) - y) ** 2).mean().backward(); opt.step()
    ...     rec.record(step, idx, model, opt)
    >>> sorted(p.name for p in rec.finish().iterdir())[:3]
    ['checkpoints.jsonl', 'ckpt-00000000.safetensors', 'ckpt-00000003.safetensors']
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from runcast.errors import InvalidInputError
from runcast.verify._checkpoint import load_checkpoint
from runcast.verify._commit import Commitment, DataOrder, derive_int, environment
from runcast.verify._hashing import dataset_root
from runcast.verify._task import Records, code_hash
from runcast.verify._writer import (
    CHECKPOINT_LOG,
    PROGRESS,
    CheckpointWriter,
    read_checkpoint_log,
    write_json,
)

FORMAT = "runcast-proof"
# 3: one chain link per segment; 2: one per step, safetensors checkpoints; 1: one per step,
# torch pickles. All three are read; a resumed proof keeps the version it was started in.
VERSION = 3
COMMITMENT = "commitment.json"
MANIFEST = "manifest.json"


def _positive(name: str, value: Any) -> int:
    if type(value) is not int or value < 1:
        raise InvalidInputError(f"{name} must be a whole number >= 1, got {value!r}.")
    return value


class ProofRecorder:
    """Record a proof of training into the folder ``path``.

    Args:
        path: the proof folder (created; must not hold another proof unless resuming).
        dataset: the records trained on (``dataset[i]``); all of them are committed to.
        steps: the number of optimizer steps the run will take.
        batch_size: records per step.
        checkpoint_every: steps between checkpoints (the segments a verifier replays).
        holdout: the share of records held out as the committed tail, never trained on.
        config: the run's config (plain JSON), committed to and handed back to the script.
        code: the training script's path; its bytes are committed to.
        run: a :class:`runcast.Run` to link the proof to (its id goes into the manifest, and
            the run gets a ``proof_checkpoint`` point at every checkpoint).
        seed_each_step: reseed torch before every step (from the commitment), so that a step
            that draws random numbers (dropout) replays exactly.
        nonce: the committed random value (32 bytes); leave it None (fresh randomness) except
            to reproduce a run in a test: a prover who picks it can grind for an order.
    """

    def __init__(
        self,
        path: str | Path,
        dataset: Records,
        *,
        steps: int,
        batch_size: int,
        checkpoint_every: int = 100,
        holdout: float = 0.1,
        config: Mapping[str, Any] | None = None,
        code: str | Path | None = None,
        run: Any = None,
        seed_each_step: bool = False,
        nonce: bytes | None = None,
        _resume: dict[str, Any] | None = None,
    ) -> None:
        self.steps = _positive("steps", steps)
        self.batch_size = _positive("batch_size", batch_size)
        self.checkpoint_every = _positive("checkpoint_every", checkpoint_every)
        self.path = Path(path)
        self.run = run
        self.seed_each_step = bool(seed_each_step)
        self.config = dict(config or {})
        self._dataset = dataset
        self._seconds = float(_resume.get("training_seconds", 0.0)) if _resume else 0.0
        self._resumed = int(_resume.get("resumes", 0)) + 1 if _resume else 0
        if _resume is None:
            if (self.path / COMMITMENT).exists():
                raise InvalidInputError(
                    f"{str(self.path)!r} already holds a proof; resume it with "
                    "ProofRecorder.resume(path, dataset), or record into a new folder."
                )
            self.path.mkdir(parents=True, exist_ok=True)
            root, n = dataset_root(dataset)
            if nonce is not None and (not isinstance(nonce, bytes) or len(nonce) != 32):
                raise InvalidInputError(f"nonce must be 32 bytes, got {nonce!r}.")
            self.commitment = Commitment.make(
                nonce if nonce is not None else secrets.token_bytes(32),
                data_root=root,
                n_records=n,
                config=self.config,
                code_sha256=code_hash(code),
                environment=environment(),
            )
            self.environment = environment()
            self.entries: list[dict[str, Any]] = []
            self._chain = self.commitment.digest
            self.holdout = float(holdout)
            self.version = VERSION
            write_json(self.path / COMMITMENT, self._public())
        else:
            self.commitment = Commitment(**_resume["commitment"])
            self.environment = _resume["environment"]
            self.entries = list(_resume["checkpoints"])
            self._chain = (
                bytes.fromhex(self.entries[-1]["chain"])
                if self.entries
                else (self.commitment.digest)
            )
            self.holdout = float(_resume["protocol"]["holdout"])
            self.version = int(_resume.get("version", VERSION))
        self.order = DataOrder(
            self.commitment.seed,
            n_records=self.commitment.n_records,
            batch_size=self.batch_size,
            holdout=self.holdout,
        )
        self._writer: CheckpointWriter | None = None
        self._pending: list[np.ndarray] = []  # indices of the steps since the last checkpoint
        self._next = self.entries[-1]["step"] if self.entries else 0
        self._t0 = 0.0

    @classmethod
    def resume(cls, path: str | Path, dataset: Records, *, run: Any = None) -> ProofRecorder:
        """Continue an interrupted proof from its last checkpoint (see :meth:`start`)."""
        folder = Path(path)
        try:
            saved = json.loads((folder / COMMITMENT).read_text())
            # progress.json is written when a run stops cleanly; the log after every checkpoint
            progress = (
                json.loads((folder / PROGRESS).read_text()) if (folder / PROGRESS).exists() else {}
            )
            logged = read_checkpoint_log(folder)
        except (OSError, ValueError) as err:
            raise InvalidInputError(f"cannot resume the proof in {str(folder)!r}: {err}") from err
        clean = progress.get("checkpoints", [])
        saved["checkpoints"] = clean if len(clean) >= len(logged) else logged
        saved["training_seconds"] = progress.get("training_seconds", 0.0)
        p = saved["protocol"]
        rec = cls(
            folder,
            dataset,
            steps=p["steps"],
            batch_size=p["batch_size"],
            checkpoint_every=p["checkpoint_every"],
            config=saved["config"],
            run=run,
            seed_each_step=p["seed_each_step"],
            _resume=saved,
        )
        root, _ = dataset_root(dataset)
        if root.hex() != rec.commitment.data_root:
            raise InvalidInputError(
                f"the dataset given to resume {str(folder)!r} is not the one committed to "
                f"(Merkle root {root.hex()[:12]}... vs {rec.commitment.data_root[:12]}...)."
            )
        # the log again without a line a crash tore, so the lines appended next are read
        tmp = folder / (CHECKPOINT_LOG + ".tmp")
        tmp.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in rec.entries))
        os.replace(tmp, folder / CHECKPOINT_LOG)
        return rec

    # -- what the training loop uses ------------------------------------------------------

    @property
    def init_seed(self) -> int:
        """The torch seed the initial weights must be drawn with."""
        return self.commitment.init_seed

    def seed(self) -> None:
        """Seed torch with the committed seed: call it right before building the model."""
        import torch

        torch.manual_seed(self.init_seed)

    @property
    def next_step(self) -> int:
        """The next step to record (the number of steps recorded so far)."""
        return self._next

    @property
    def tail(self) -> np.ndarray:
        """The held-out records (never to be trained on)."""
        return self.order.tail

    def start(self, model: Any, optimizer: Any) -> int:
        """Begin recording: checkpoint the initial state, or load the last one to resume.

        Returns the first step to train (0 for a new run).
        """

        if self.entries:
            last = self.entries[-1]
            state = load_checkpoint(self.path / last["file"])
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        self._writer = CheckpointWriter(
            self.path, self.entries, self._chain, per_segment=self.version >= 3
        )
        if not self.entries:
            self._checkpoint(0, model, optimizer)
        self._t0 = time.perf_counter()
        return self._next

    def batches(self) -> Iterator[tuple[int, np.ndarray]]:
        """The committed ``(step, indices)`` from the current step to the last."""
        import torch

        for step in range(self._next, self.steps):
            if self.seed_each_step:
                torch.manual_seed(derive_int(self.commitment.seed, b"step%d" % step))
            yield step, self.order.batch(step)

    def batch_sampler(self) -> _CommittedSampler:
        """A ``batch_sampler`` for a ``DataLoader`` that yields the committed batches.

        For trainers that own the loop (Lightning, Hugging Face): the proof callbacks in
        :mod:`runcast.integrations` read back which indices each step trained on.
        """
        return _CommittedSampler(self)

    def record(self, step: int, indices: Any, model: Any, optimizer: Any) -> None:
        """Record that ``step`` trained on ``indices`` (call it after ``optimizer.step()``)."""
        if self._writer is None:
            raise InvalidInputError(
                "call ProofRecorder.start(model, optimizer) before recording steps."
            )
        if step != self._next:
            raise InvalidInputError(
                f"ProofRecorder.record got step {step}, expected {self._next}: every step is "
                "recorded once, in order (resume with ProofRecorder.resume after a restart)."
            )
        # the hot path. A batch the committed order handed out is kept as is (nothing writes
        # into it); anything else is copied, since the caller may reuse its array (right after
        # a training step that copy costs ~4 us, 1.3% of a 0.3 ms step). The writer thread
        # hashes the segment's indices into the chain, so the step pays no SHA-256
        own = self.order.owns(indices)
        self._pending.append(indices if own else np.array(indices, dtype=np.int64))
        self._next = step + 1
        if self._next % self.checkpoint_every == 0 or self._next == self.steps:
            self._checkpoint(self._next, model, optimizer)

    def _checkpoint(self, step: int, model: Any, optimizer: Any) -> None:
        if self._writer is None:
            raise InvalidInputError("call ProofRecorder.start(model, optimizer) before training.")
        # copies are taken here because the next step changes the tensors; the write is not
        payload = {
            "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "optimizer": _copy_state(optimizer.state_dict()),
            "step": step,
        }
        first = step - len(self._pending)
        self._writer.put(step, payload, first, self._pending)
        self._pending = []
        if self.run is not None:
            self.run.log({"proof_checkpoint": float(len(self.entries))}, step=step)

    def finish(self) -> Path:
        """Wait for the checkpoints and write the manifest; returns the proof folder."""
        if self._writer is None:
            raise InvalidInputError("ProofRecorder.finish() before start(): nothing recorded.")
        self._seconds += time.perf_counter() - self._t0
        self._writer.close()
        self._writer = None
        if self._next != self.steps:
            # an interrupted run: progress.json is enough to resume; no manifest claims more
            return self.path
        write_json(self.path / MANIFEST, {**self._public(), "checkpoints": self.entries})
        return self.path

    def close(self) -> None:
        """Stop recording without a manifest (the run stopped early; it can be resumed)."""
        if self._writer is not None:
            self._seconds += time.perf_counter() - self._t0
            self._writer.close()
            self._writer = None
            write_json(
                self.path / PROGRESS,
                {"checkpoints": self.entries, "training_seconds": self._seconds},
            )

    def _public(self) -> dict[str, Any]:
        from dataclasses import asdict

        run = None
        if self.run is not None:
            run = {
                "id": str(self.run.id),
                "project": str(getattr(self.run, "project", "")),
                "name": str(getattr(self.run, "name", "")),
                "db": str(getattr(self.run, "db", "")),
            }
        return {
            "format": FORMAT,
            "version": self.version,
            "commitment": asdict(self.commitment),
            "commitment_digest": self.commitment.digest.hex(),
            "environment": self.environment,
            "config": self.config,
            "protocol": {
                "steps": self.steps,
                "batch_size": self.batch_size,
                "checkpoint_every": self.checkpoint_every,
                "holdout": self.holdout,
                "seed_each_step": self.seed_each_step,
            },
            "run": run,
            "training_seconds": self._seconds,
            "resumes": self._resumed,
        }


def _copy_state(obj: Any) -> Any:
    """A copy of an optimizer's state dict: tensors cloned, containers rebuilt, the rest
    shared (numbers, strings); several times faster than ``copy.deepcopy``."""
    if hasattr(obj, "detach") and hasattr(obj, "clone"):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _copy_state(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_copy_state(v) for v in obj)
    return copy.copy(obj)


class _CommittedSampler:
    """Yields the committed batches from the recorder's next step; remembers what it gave out
    (a DataLoader may fetch ahead), for the proof callbacks to pop in order."""

    def __init__(self, recorder: ProofRecorder) -> None:
        self.recorder = recorder
        self.given: deque[tuple[int, np.ndarray]] = deque()

    def __iter__(self) -> Iterator[list[int]]:
        for step, idx in self.recorder.batches():
            self.given.append((step, idx))
            yield idx.tolist()

    def __len__(self) -> int:
        return self.recorder.steps - self.recorder.next_step

    def pop(self) -> tuple[int, np.ndarray]:
        """The oldest batch given out and not yet recorded."""
        return self.given.popleft()
