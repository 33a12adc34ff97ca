"""Proof of training: record how a model was trained, and verify the record.

:class:`ProofRecorder` commits before the first step (Proof-of-Training-Data, Choi et al.
2023), derives the initial weights and the data order from that commitment, chains every
step's batch, and checkpoints the weights and optimizer state every k steps (off the training
thread). :func:`verify` checks the commitments and the chain, recomputes the initialisation,
replays the segments with the largest updates (Proof-of-Learning, Jia et al. 2021) and runs
the memorisation test, and returns a :class:`VerifyReport`. See bench/README.md, "Proof of
training", for the attack suite it is judged on.

Example:
    >>> from runcast.verify import ProofRecorder, Task, verify
    >>> ProofRecorder.__name__, Task.__name__, verify.__name__
    ('ProofRecorder', 'Task', 'verify')
"""

from runcast.verify._manifest import ProofFormatError, load_proof
from runcast.verify._recorder import ProofRecorder
from runcast.verify._report import Check, VerifyReport
from runcast.verify._task import Task, load_task
from runcast.verify._train import train_with_proof
from runcast.verify._verifier import VerifyConfig, verify

__all__ = [
    "Check",
    "ProofFormatError",
    "ProofRecorder",
    "Task",
    "VerifyConfig",
    "VerifyReport",
    "load_proof",
    "load_task",
    "train_with_proof",
    "verify",
]
