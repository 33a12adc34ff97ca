from __future__ import annotations

import numpy as np
import torch

from runcast.verify._hashing import (
    chain_link,
    dataset_root,
    merkle_root,
    record_hash,
    segment_link,
)


def test_record_hash_sees_dtype_shape_and_bytes() -> None:
    base = record_hash((np.arange(4, dtype=np.int64),))
    # the same numbers as another dtype or shape are another record
    assert record_hash((np.arange(4, dtype=np.int32),)) != base
    assert record_hash((np.arange(4, dtype=np.int64).reshape(2, 2),)) != base
    assert record_hash((torch.arange(4),)) == base  # a tensor hashes as its array


def test_merkle_root_changes_with_any_record_and_its_position() -> None:
    leaves = [record_hash((np.array([i]),)) for i in range(5)]  # odd: the last is paired
    root = merkle_root(leaves)
    for i in range(5):
        changed = list(leaves)
        changed[i] = record_hash((np.array([100 + i]),))
        assert merkle_root(changed) != root
    assert merkle_root(leaves[::-1]) != root
    # one leaf cannot pass for the tree of two (leaves and inner nodes are tagged apart)
    assert merkle_root([root]) != root


def test_dataset_root_same_for_tensor_dataset_and_list() -> None:
    x, y = torch.randn(7, 3), torch.arange(7)
    as_tensors = torch.utils.data.TensorDataset(x, y)
    as_list = [(x[i], y[i]) for i in range(7)]
    assert dataset_root(as_tensors) == dataset_root(as_list)
    assert dataset_root(as_tensors)[1] == 7


def test_chain_depends_on_step_and_indices() -> None:
    start = b"\x00" * 32
    link = chain_link(start, 0, np.array([1, 2, 3]))
    assert chain_link(start, 1, np.array([1, 2, 3])) != link
    assert chain_link(start, 0, np.array([1, 3, 2])) != link
    assert chain_link(start, 0, np.array([1, 2, 3], dtype=np.int32)) == link  # int width free


def test_segment_link_depends_on_first_step_order_and_batch_boundaries() -> None:
    start = b"\x00" * 32
    batches = [np.array([1, 2, 3]), np.array([4, 5, 6])]
    link = segment_link(start, 0, batches)
    assert segment_link(start, 3, batches) != link
    assert segment_link(start, 0, batches[::-1]) != link
    assert segment_link(start, 0, [np.array([1, 3, 2]), np.array([4, 5, 6])]) != link
    # the same indices cut into other batches are another segment
    assert segment_link(start, 0, [np.array([1, 2]), np.array([3, 4, 5, 6])]) != link
    assert segment_link(b"\x01" * 32, 0, batches) != link
    assert segment_link(start, 0, [b.astype(np.int32) for b in batches]) == link
