"""The commitment made before the first step, and the seed and data order derived from it.

Following Proof-of-Training-Data (Choi, Shavit and Duvenaud 2023), the trainer commits to a
Merkle root over its data records, a random value (through its hash), the config, the code and
the environment. The seed is the hash of that commitment and the random value, so neither the
initial weights nor the order of the data can be chosen after seeing the data: changing any
record changes both. The held-out tail (the last ``holdout`` share of the committed order) is
never trained on; the memorisation test uses it as data the model has not seen.

Example:
    >>> c = Commitment.make(b"r" * 32, data_root=b"d" * 32, n_records=100,
    ...                     config={"lr": 0.1}, code_sha256="", environment={})
    >>> order = DataOrder(c.seed, n_records=100, batch_size=8, holdout=0.2)
    >>> order.n_train, len(order.tail), order.batch(0).shape
    (80, 20, (8,))
"""

from __future__ import annotations

import json
import math
import platform
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from runcast.errors import InvalidInputError
from runcast.verify._hashing import sha256


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes of ``obj`` (sorted keys, no spaces): what the commitment hashes."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"the proof's config must be plain JSON (numbers, strings, lists, dicts) so that a "
            f"verifier can hash it the same way: {err}. Convert the offending value first."
        ) from err


def environment() -> dict[str, str]:
    """The software the run used: recorded in the commitment, compared by the verifier."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": sys.platform,
        "machine": platform.machine(),
        # the CPU kernels' reduction order follows the thread count: a verifier that replays
        # with the same count on the same platform lands on the recorded weights exactly
        "threads": str(torch.get_num_threads()),
    }


@dataclass(frozen=True)
class Commitment:
    """What the trainer commits to before training (all hashes as hex)."""

    data_root: str
    n_records: int
    seed_commitment: str
    config_sha256: str
    code_sha256: str
    environment_sha256: str
    nonce: str  # the random value; revealed in the proof, hidden behind seed_commitment before

    @classmethod
    def make(
        cls,
        nonce: bytes,
        *,
        data_root: bytes,
        n_records: int,
        config: Mapping[str, Any],
        code_sha256: str,
        environment: Mapping[str, str],
    ) -> Commitment:
        return cls(
            data_root=data_root.hex(),
            n_records=n_records,
            seed_commitment=sha256(b"runcast-seed" + nonce).hex(),
            config_sha256=sha256(canonical(dict(config))).hex(),
            code_sha256=code_sha256,
            environment_sha256=sha256(canonical(dict(environment))).hex(),
            nonce=nonce.hex(),
        )

    @property
    def digest(self) -> bytes:
        """The hash of everything committed to except the revealed random value."""
        public = {k: v for k, v in asdict(self).items() if k != "nonce"}
        return sha256(b"runcast-commitment" + canonical(public))

    @property
    def seed(self) -> bytes:
        """The run's seed: the commitment's digest with the random value."""
        return sha256(self.digest + bytes.fromhex(self.nonce))

    @property
    def init_seed(self) -> int:
        """The torch seed the initial weights are drawn with."""
        return derive_int(self.seed, b"init")


def derive_int(seed: bytes, label: bytes) -> int:
    """A 63-bit integer derived from ``seed`` for one purpose (``label``)."""
    return int.from_bytes(sha256(seed + label)[:8], "little") & (2**63 - 1)


class DataOrder:
    """The committed data order: a held-out tail, then one permutation of the rest per epoch.

    Batch ``t`` is the ``t``-th run of ``batch_size`` positions through the epochs' permutations
    (the last partial batch of an epoch is dropped), so any step's batch is computed directly,
    without replaying the ones before it.
    """

    def __init__(self, seed: bytes, *, n_records: int, batch_size: int, holdout: float) -> None:
        if not 0 < holdout < 1:
            raise InvalidInputError(f"holdout must be a share in (0, 1), got {holdout!r}.")
        n_tail = max(1, math.ceil(holdout * n_records))
        if n_records - n_tail < batch_size:
            raise InvalidInputError(
                f"{n_records} records with holdout={holdout} leave {n_records - n_tail} to train "
                f"on, fewer than one batch of {batch_size}: use more data or a smaller batch."
            )
        self.seed = seed
        self.batch_size = batch_size
        perm = np.random.default_rng(derive_int(seed, b"order")).permutation(n_records)
        self.train = perm[: n_records - n_tail]
        self.tail = perm[n_records - n_tail :]
        self.n_train = len(self.train)
        self.batches_per_epoch = self.n_train // batch_size
        self._epoch = -1
        self._perm = self.train

    def owns(self, indices: object) -> bool:
        """Whether ``indices`` is a batch of the current epoch as :meth:`batch` handed it out
        (a view of the epoch's permutation, which is never written to and is replaced, not
        changed, at the next epoch), so a recorder can keep it without a copy."""
        return type(indices) is np.ndarray and indices.base is self._perm

    def _epoch_perm(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            rng = np.random.default_rng(derive_int(self.seed, b"epoch%d" % epoch))
            self._perm = self.train[rng.permutation(self.n_train)]
            self._epoch = epoch
        return self._perm

    def batch(self, step: int) -> np.ndarray:
        """The record indices of the batch trained at ``step`` (0-based): a view of the epoch's
        permutation, which is never written to (do not write into it either)."""
        epoch, k = divmod(step, self.batches_per_epoch)
        b = self.batch_size
        return self._epoch_perm(epoch)[k * b : (k + 1) * b]
