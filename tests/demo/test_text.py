"""The demo's shipped text: present, licensed, encoded both ways, batched correctly."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from runcast.demo._text import CharData, load_text
from runcast.errors import InvalidInputError


def test_text_ships_with_its_licence_notice() -> None:
    text = load_text()
    # ~330 KB of ASCII: enough for ~1500 steps without repeating a window too often
    assert 200_000 < len(text) < 500_000 and text.isascii()
    notice = resources.files("runcast.demo").joinpath("data").joinpath("NOTICE.txt").read_text()
    assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in notice
    assert "Copyright (c) 2001-2023 Python Software Foundation" in notice


def test_encode_decode_round_trip_and_split() -> None:
    data = CharData.from_text(load_text())
    assert data.vocab <= 100
    sample = load_text()[:500]
    assert data.decode(data.encode(sample)) == sample
    # 90/10 split, the validation text is the end of the file
    n = len(load_text())
    assert len(data.train) == int(n * 0.9) and len(data.train) + len(data.val) == n


def test_batch_targets_are_the_next_characters() -> None:
    data = CharData.from_text("abcdefghijklmnopqrstuvwxyz" * 4)
    x, y = data.batch("train", batch=8, context=5, rng=np.random.default_rng(0))
    assert tuple(x.shape) == (8, 5) and tuple(y.shape) == (8, 5)
    # y is x shifted by one character, in every window
    assert (x[:, 1:] == y[:, :-1]).all()
    assert ((y - x) % 26 == 1).all()


def test_bad_inputs_say_what_to_do() -> None:
    with pytest.raises(InvalidInputError, match="at least 16 characters"):
        CharData.from_text("short")
    data = CharData.from_text("x" * 40)
    with pytest.raises(InvalidInputError, match="shorter context"):
        data.batch("val", 2, 10, np.random.default_rng(0))
