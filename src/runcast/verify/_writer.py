"""Checkpoint writes off the training thread.

The training thread only copies the weights and the optimizer state (a memory copy, which it
must make before the next step changes them) and keeps each step's batch indices; hashing the
segment's indices into the chain, serialising, hashing and writing happen in one background
thread, so a step never waits on the disk or a hash. A failed write is raised at the next
checkpoint or at ``close()``, never lost.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from pathlib import Path
from typing import Any

from runcast.errors import RuncastError
from runcast.verify._checkpoint import dump_checkpoint
from runcast.verify._hashing import chain_link, file_hash, segment_link

PROGRESS = "progress.json"
CHECKPOINT_LOG = "checkpoints.jsonl"


def read_checkpoint_log(folder: Path) -> list[dict[str, Any]]:
    """The checkpoints written so far, in order (a line torn by a crash is left out)."""
    path = folder / CHECKPOINT_LOG
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            break
    return entries


def checkpoint_name(step: int) -> str:
    """The file name of the checkpoint taken after ``step`` steps."""
    return f"ckpt-{step:08d}.safetensors"


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


class CheckpointWriter:
    """A background thread that saves, hashes and lists checkpoints in ``folder``."""

    def __init__(
        self, folder: Path, entries: list[dict[str, Any]], chain: bytes, per_segment: bool = True
    ) -> None:
        self.folder = folder
        self.entries = entries  # appended in the writer thread, in step order
        self.chain = chain  # the chain's last link, extended in the writer thread
        # one link per segment (format 3), or per step (a format-2 proof being resumed)
        self.per_segment = per_segment
        self._queue: queue.Queue[tuple[int, dict[str, Any], int, list[Any]] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="runcast-proof", daemon=True)
        self._thread.start()

    def put(self, step: int, payload: dict[str, Any], first: int, batches: list[Any]) -> None:
        """Queue a checkpoint (``payload`` must be a copy the training will not change) after
        the steps ``first, first + 1, ...`` that trained on ``batches`` (index arrays)."""
        self.raise_error()
        self._queue.put((step, payload, first, batches))

    def raise_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuncastError(
                f"writing a proof checkpoint to {self.folder} failed: {err}"
            ) from err

    def close(self) -> None:
        """Wait for every queued checkpoint to be written."""
        self._queue.put(None)
        self._thread.join()
        self.raise_error()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # after a failure, later checkpoints would leave a gap: skip them
            step, payload, first, batches = item
            try:
                if self.per_segment:
                    if batches:  # the first checkpoint (step 0) follows no steps
                        self.chain = segment_link(self.chain, first, batches)
                else:
                    for i, idx in enumerate(batches):
                        self.chain = chain_link(self.chain, first + i, idx)
                chain = self.chain.hex()
                data = dump_checkpoint(payload)
                name = checkpoint_name(step)
                tmp = self.folder / (name + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, self.folder / name)
                self.entries.append(
                    {"step": step, "file": name, "sha256": file_hash([data]), "chain": chain}
                )
                # one line appended per checkpoint (rewriting the whole list each time would
                # cost the writer, and the training thread's share of the GIL, O(checkpoints))
                with (self.folder / CHECKPOINT_LOG).open("a") as log:
                    log.write(json.dumps(self.entries[-1], sort_keys=True) + "\n")
            except BaseException as err:
                self._error = err
