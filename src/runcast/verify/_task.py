"""The training-script interface: what a verifier needs to retrain any stretch of a run.

A training script defines ``task``: a :class:`Task`, or a function of the run's config that
returns one. The task says how to build the model (``model()``, called right after the
committed seed is set, so the initial weights follow from the commitment), the optimizer, the
dataset (a sequence of records), the loss of each record, and optionally one training step.
``runcast verify PROOF --train SCRIPT`` imports the script and calls the same functions the
training did.

A script::

    import torch
    from runcast.verify import Task

    X, Y = torch.randn(512, 8), torch.randint(0, 2, (512,))

    def loss(model, batch):                 # one loss per record, shape (batch,)
        x, y = batch
        return torch.nn.functional.cross_entropy(model(x), y, reduction="none")

    task = Task(
        model=lambda: torch.nn.Linear(8, 2),
        optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
        dataset=torch.utils.data.TensorDataset(X, Y),
        loss=loss,
    )

Example:
    >>> import torch
    >>> t = Task(model=lambda: torch.nn.Linear(2, 1),
    ...          optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
    ...          dataset=[(torch.ones(2), torch.zeros(1))] * 4,
    ...          loss=lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(dim=1))
    >>> [tuple(x.shape) for x in t.batch([0, 1, 2])]
    [(3, 2), (3, 1)]
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runcast.errors import InvalidInputError

StepFn = Callable[[Any, Any, Any, int], Any]


class Records(Protocol):
    """What a dataset must offer: a length and the record at an index (a torch Dataset with
    ``__len__``, a list, a TensorDataset)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Any: ...


@dataclass(frozen=True)
class Task:
    """A model, its optimizer, its dataset, a per-record loss and (optionally) one step.

    Args:
        model: builds the model; called with the committed seed already set.
        optimizer: builds the optimizer for a model.
        dataset: the records, ``dataset[i]`` a tensor or a tuple of tensors.
        loss: ``loss(model, batch)``, the loss of each record of the batch (shape ``(n,)``).
        step: ``step(model, optimizer, batch, step)``, one training step; by default
            ``zero_grad``, the mean loss's ``backward`` and ``optimizer.step()``. The step
            number is passed so that a schedule is a function of it, not a hidden counter.
        collate: turns a list of records into a batch; by default stacks each field (and, for
            a ``TensorDataset``, indexes its tensors directly).
        config: the run's config, recorded and hashed in the commitment.
    """

    model: Callable[[], Any]
    optimizer: Callable[[Any], Any]
    dataset: Records
    loss: Callable[[Any, Any], Any]
    step: StepFn | None = None
    collate: Callable[[list[Any]], Any] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    def batch(self, indices: Sequence[int] | np.ndarray) -> Any:
        """The batch made of the records at ``indices``."""
        import torch

        if self.collate is not None:
            return self.collate([self.dataset[int(i)] for i in indices])
        tensors = getattr(self.dataset, "tensors", None)
        if tensors is not None:
            idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
            return tuple(t[idx] for t in tensors)
        records = [self.dataset[int(i)] for i in indices]
        if isinstance(records[0], tuple | list):
            return tuple(
                torch.stack([torch.as_tensor(r[j]) for r in records])
                for j in range(len(records[0]))
            )
        return torch.stack([torch.as_tensor(r) for r in records])

    def train_step(self, model: Any, optimizer: Any, batch: Any, step: int) -> Any:
        """One training step (the task's own, or the default)."""
        if self.step is not None:
            return self.step(model, optimizer, batch, step)
        optimizer.zero_grad(set_to_none=True)
        loss = self.loss(model, batch).mean()
        loss.backward()
        optimizer.step()
        return loss


def code_hash(path: str | Path | None) -> str:
    """The hex SHA-256 of a training script's bytes ('' when there is no script)."""
    if path is None:
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_task(script: str | Path, config: Mapping[str, Any] | None = None) -> Task:
    """Import a training script and return its :class:`Task` (see the module doc).

    Args:
        script: the path of a Python file that defines ``task``.
        config: passed to ``task`` when it is a function.
    """
    path = Path(script)
    if not path.is_file():
        raise InvalidInputError(
            f"training script {str(path)!r} does not exist; give the path "
            "of the Python file that defines `task`."
        )
    name = f"_runcast_task_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"cannot import {str(path)!r} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's script: say where it failed, not only that it did
        del sys.modules[name]
        raise InvalidInputError(
            f"importing the training script {str(path)!r} failed: {type(err).__name__}: {err}"
        ) from err
    found = getattr(module, "task", None)
    if found is None:
        raise InvalidInputError(
            f"{str(path)!r} defines no `task`: add `task = runcast.verify.Task(model=..., "
            "optimizer=..., dataset=..., loss=...)` (or a function of the config returning one)."
        )
    if callable(found) and not isinstance(found, Task):
        found = found(dict(config or {}))
    if not isinstance(found, Task):
        raise InvalidInputError(
            f"`task` in {str(path)!r} is a {type(found).__name__}, not a runcast.verify.Task."
        )
    return found
