from __future__ import annotations

import numpy as np
import pytest

from runcast.errors import InvalidInputError
from runcast.verify._commit import Commitment, DataOrder, canonical


def _commit(root: bytes = b"d" * 32, nonce: bytes = b"r" * 32) -> Commitment:
    return Commitment.make(
        nonce,
        data_root=root,
        n_records=100,
        config={"lr": 0.1},
        code_sha256="",
        environment={"torch": "x"},
    )


def test_seed_follows_from_data_and_nonce() -> None:
    c = _commit()
    assert c.seed == _commit().seed  # reproducible
    # another dataset or another random value: another init and order
    assert _commit(root=b"e" * 32).init_seed != c.init_seed
    assert _commit(nonce=b"s" * 32).init_seed != c.init_seed


def test_order_holds_out_a_tail_and_permutes_each_epoch() -> None:
    order = DataOrder(_commit().seed, n_records=100, batch_size=8, holdout=0.2)
    assert len(order.tail) == 20 and not set(order.tail) & set(order.train)
    epoch0 = np.concatenate([order.batch(s) for s in range(order.batches_per_epoch)])
    epoch1 = np.concatenate(
        [order.batch(s) for s in range(order.batches_per_epoch, 2 * order.batches_per_epoch)]
    )
    assert len(set(epoch0)) == len(epoch0) == 80  # each record once per epoch (80 = 10 x 8)
    assert not np.array_equal(epoch0, epoch1)
    assert set(epoch0) <= set(order.train)
    # a batch is computed directly, not by walking the ones before it
    again = DataOrder(_commit().seed, n_records=100, batch_size=8, holdout=0.2)
    assert np.array_equal(again.batch(123), order.batch(123))


def test_bad_arguments_say_what_is_wrong() -> None:
    with pytest.raises(InvalidInputError, match="holdout"):
        DataOrder(b"x" * 32, n_records=10, batch_size=2, holdout=1.5)
    with pytest.raises(InvalidInputError, match="fewer than one batch"):
        DataOrder(b"x" * 32, n_records=10, batch_size=20, holdout=0.1)
    with pytest.raises(InvalidInputError, match="plain JSON"):
        canonical({"f": object()})


def test_order_owns_only_the_batches_it_handed_out_this_epoch() -> None:
    order = DataOrder(b"\x02" * 32, n_records=100, batch_size=10, holdout=0.1)
    first = order.batch(0)
    assert order.owns(first)
    assert not order.owns(first.copy()) and not order.owns(first.tolist())
    order.batch(9)  # the next epoch: its own permutation, the last one's batches left intact
    assert not order.owns(first) and order.owns(order.batch(10))
    assert first.tolist() == order.batch(0).tolist()  # recomputed, the same batch
