"""Shared fixtures: tiny honest proofs, trained once per session (seconds on one core)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from runcast.verify import Task, train_with_proof
from runcast.verify.examples import digits_mlp

STEPS, BATCH, EVERY = 120, 32, 20


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # the machine is shared; and the replay tolerance is exercised across thread counts
    # explicitly where a test means to
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mlp_task() -> Task:
    return digits_mlp()


@pytest.fixture(scope="session")
def honest_proof(tmp_path_factory: pytest.TempPathFactory, mlp_task: Task) -> Path:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("honest")
    return train_with_proof(
        mlp_task,
        folder,
        steps=STEPS,
        batch_size=BATCH,
        checkpoint_every=EVERY,
        nonce=bytes(32),
    )
