"""Hashes a proof is built from: data records, their Merkle root, model states, the step chain.

Everything is SHA-256. A record's hash covers each field's dtype, shape and bytes, so two records
that print alike but differ in type do not collide. The Merkle tree tags leaves and inner nodes
differently (0x00 / 0x01) so that a leaf can never pass for an inner node; an odd node is paired
with itself.

Example:
    >>> import numpy as np
    >>> leaves = [record_hash((np.arange(3),)), record_hash((np.arange(4),))]
    >>> len(merkle_root(leaves).hex())
    64
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from runcast.verify._task import Records


def sha256(data: bytes) -> bytes:
    """The SHA-256 digest of ``data``."""
    return hashlib.sha256(data).digest()


def _as_array(field: Any) -> np.ndarray:
    if hasattr(field, "detach") and hasattr(field, "cpu"):  # a torch tensor, without importing
        field = field.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(field))


def record_hash(record: Any) -> bytes:
    """The hash of one data record: a tensor, an array, a number, or a tuple/list of them."""
    fields = record if isinstance(record, tuple | list) else (record,)
    h = hashlib.sha256(b"runcast-record")
    for field in fields:
        arr = _as_array(field)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root of a Merkle tree over ``leaves`` (the empty tree has the hash of no bytes)."""
    if not leaves:
        return sha256(b"")
    level = [sha256(b"\x00" + leaf) for leaf in leaves]
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def dataset_root(dataset: Records) -> tuple[bytes, int]:
    """The Merkle root over every record of ``dataset``, and the number of records."""
    n = len(dataset)
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None:
        # a TensorDataset: hash rows straight from the tensors instead of building tuples
        arrays = [_as_array(t) for t in tensors]
        leaves = [record_hash(tuple(a[i] for a in arrays)) for i in range(n)]
    else:
        leaves = [record_hash(dataset[i]) for i in range(n)]
    return merkle_root(leaves), n


def state_arrays(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The floating-point tensors of a state dict as float64 numpy arrays (for distances)."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if hasattr(value, "is_floating_point") and value.is_floating_point():
            out[key] = value.detach().cpu().double().numpy().ravel()
    return out


def state_hash(state: Mapping[str, Any]) -> bytes:
    """The hash of a model's state dict (names, dtypes, shapes and bytes, in name order)."""
    h = hashlib.sha256(b"runcast-state")
    for key in sorted(state):
        arr = _as_array(state[key])
        h.update(key.encode() + b"\x00" + f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.digest()


def chain_link(prev: bytes, step: int, indices: np.ndarray) -> bytes:
    """The next link of a step chain (proof formats 1 and 2): the previous link, the step and
    its batch's indices."""
    idx = np.ascontiguousarray(indices, dtype="<i8")
    return hashlib.sha256(prev + step.to_bytes(8, "little") + idx.tobytes()).digest()


def segment_link(prev: bytes, first: int, batches: Sequence[np.ndarray]) -> bytes:
    """The next link of a segment chain (proof format 3): the previous link, the segment's
    first step, and the indices of its steps' batches, hashed in one call.

    The batches' lengths are hashed with their indices, so that moving a record from one
    step's batch to the next changes the link. One SHA-256 over a segment's indices (a few
    kilobytes, hashed with the GIL released) replaces a Python call per step: the recorder's
    writer thread then barely competes with the training thread.
    """
    sizes = np.array([len(b) for b in batches], dtype="<i8")
    flat = np.concatenate([np.asarray(b).ravel() for b in batches]) if batches else sizes[:0]
    h = hashlib.sha256(prev + b"runcast-segment" + first.to_bytes(8, "little"))
    h.update(len(batches).to_bytes(8, "little") + sizes.tobytes())
    h.update(np.ascontiguousarray(flat, dtype="<i8").tobytes())
    return h.digest()


def file_hash(chunks: Iterable[bytes]) -> str:
    """The hex SHA-256 of a file given as chunks of bytes."""
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()
