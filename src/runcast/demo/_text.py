"""The demo's training text (shipped in the package) as character ids and random batches.

The text is CPython's own interactive help (PSF licence; see ``data/NOTICE.txt``), so the demo
needs no download. The last 10% is held out for the validation loss.

Example:
    >>> from runcast.demo._text import CharData
    >>> data = CharData.from_text("hello world, hello runcast")
    >>> data.decode(data.encode("hello"))
    'hello'
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt
import torch

from runcast.errors import InvalidInputError

TEXT_FILE = "python_help.txt"


def load_text() -> str:
    """The demo text shipped in ``runcast/demo/data`` (about 330 KB of ASCII).

    Example:
        >>> load_text().startswith('The "assert" statement')
        True
    """
    return resources.files("runcast.demo").joinpath("data").joinpath(TEXT_FILE).read_text("ascii")


@dataclass(frozen=True)
class CharData:
    """A text as character ids, split 90/10 into train and validation."""

    chars: str
    train: npt.NDArray[np.int64]
    val: npt.NDArray[np.int64]

    @classmethod
    def from_text(cls, text: str, val_fraction: float = 0.1) -> CharData:
        """Encode ``text``; the last ``val_fraction`` of it becomes the validation split."""
        if len(text) < 16:
            raise InvalidInputError(
                f"The training text needs at least 16 characters, but got {len(text)}."
            )
        chars = "".join(sorted(set(text)))
        lookup = {c: i for i, c in enumerate(chars)}
        ids = np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
        cut = int(len(ids) * (1.0 - val_fraction))
        return cls(chars=chars, train=ids[:cut], val=ids[cut:])

    @property
    def vocab(self) -> int:
        """Number of distinct characters."""
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Character ids of ``text`` (every character must be in the vocabulary)."""
        return [self.chars.index(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        """The text of character ids."""
        return "".join(self.chars[i] for i in ids)

    def batch(
        self, split: str, batch: int, context: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` random windows of ``context`` characters and their next characters."""
        ids = self.train if split == "train" else self.val
        block = torch.from_numpy(windows(ids, batch, context, rng, f"The {split} split"))
        return block[:, :-1], block[:, 1:]


def windows(
    ids: npt.NDArray[np.int64], n: int, context: int, rng: np.random.Generator, what: str
) -> npt.NDArray[np.int64]:
    """``n`` random windows of ``context + 1`` ids (a context and the character after it);
    ``what`` names the text in the error when it is too short.

    Example:
        >>> windows(np.arange(10), 2, 3, np.random.default_rng(0), "The text").shape
        (2, 4)
    """
    if len(ids) <= context + 1:
        raise InvalidInputError(
            f"{what} has {len(ids)} characters, fewer than context+2 = {context + 2}; use a "
            "longer text or a shorter context."
        )
    start = rng.integers(0, len(ids) - context - 1, size=n)
    # one fancy-indexing gather instead of a Python loop over windows
    out: npt.NDArray[np.int64] = ids[start[:, None] + np.arange(context + 1)[None, :]]
    return out


class CharWindows(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """``n`` random windows of ``context`` character ids, as a causal LM's dataset.

    What a Hugging Face Trainer takes for a character-level GPT-2 (``labels`` are the inputs;
    the model shifts them): the benches and tests that train one on the demo text share it.

    Example:
        >>> data = CharData.from_text("hello world, hello runcast " * 4)
        >>> ds = CharWindows(data.train, n=3, context=8, seed=0)
        >>> len(ds), tuple(ds[0]["input_ids"].shape)
        (3, (8,))
    """

    def __init__(self, ids: npt.NDArray[np.int64], n: int, context: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.x = torch.from_numpy(windows(ids, n, context, rng, "The text")[:, :-1].copy())

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.x[i], "labels": self.x[i]}
