"""Three small reference tasks (an MLP and a CNN on scikit-learn's digits, a character
transformer on the bundled Python help text): what the tests and ``bench/verify.py`` judge the
verifier on, and models of the training-script interface. Each is a function of a config,
as a training script's ``task`` may be. They run in seconds on one CPU core.

Example:
    >>> from runcast.verify.examples import FAMILIES
    >>> sorted(FAMILIES)
    ['char_transformer', 'digits_cnn', 'digits_mlp']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from runcast._optional import require
from runcast.verify._task import Task


@lru_cache(maxsize=1)
def _digits() -> tuple[Any, Any]:
    import torch

    datasets = require("sklearn.datasets", extra="dev", purpose="for the digits example tasks")
    d = datasets.load_digits()  # bundled with scikit-learn: nothing is downloaded
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.int64)
    return x, y


def _ce(model: Any, batch: Any) -> Any:
    import torch

    x, y = batch
    return torch.nn.functional.cross_entropy(model(x), y, reduction="none")


def digits_mlp(config: Mapping[str, Any] | None = None) -> Task:
    """A 64-64-10 MLP on the 1,797 digits, SGD with momentum."""
    import torch

    cfg = {"lr": 0.05, "momentum": 0.9, "hidden": 64, **dict(config or {})}
    x, y = _digits()
    return Task(
        model=lambda: torch.nn.Sequential(
            torch.nn.Linear(64, cfg["hidden"]), torch.nn.ReLU(), torch.nn.Linear(cfg["hidden"], 10)
        ),
        optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=cfg["lr"], momentum=cfg["momentum"]),
        dataset=torch.utils.data.TensorDataset(x, y),
        loss=_ce,
        config=cfg,
    )


def digits_cnn(config: Mapping[str, Any] | None = None) -> Task:
    """A two-layer CNN on the digits as 8x8 images, Adam."""
    import torch

    cfg = {"lr": 3e-3, "channels": 8, **dict(config or {})}
    x, y = _digits()
    c = cfg["channels"]
    return Task(
        model=lambda: torch.nn.Sequential(
            torch.nn.Unflatten(1, (1, 8, 8)),
            torch.nn.Conv2d(1, c, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(c, 2 * c, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(2 * c * 16, 10),
        ),
        optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=cfg["lr"]),
        dataset=torch.utils.data.TensorDataset(x, y),
        loss=_ce,
        config=cfg,
    )


@lru_cache(maxsize=1)
def _text(chars: int, context: int) -> tuple[Any, Any, int]:
    from importlib import resources

    import torch

    text = resources.files("runcast.demo").joinpath("data/python_help.txt").read_text()[:chars]
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(ch) for ch in text], dtype=torch.int64)
    n = (len(ids) - 1) // context
    xs = ids[: n * context].view(n, context)
    ys = ids[1 : n * context + 1].view(n, context)
    return xs, ys, len(vocab)


class _CharTransformer:
    """Builds a one-block causal transformer over characters (a factory, so tasks pickle)."""

    def __init__(self, vocab: int, context: int, width: int) -> None:
        self.vocab, self.context, self.width = vocab, context, width

    def __call__(self) -> Any:
        import torch

        vocab, context, width = self.vocab, self.context, self.width

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.tok = torch.nn.Embedding(vocab, width)
                self.pos = torch.nn.Parameter(torch.randn(context, width) * 0.02)
                self.block = torch.nn.TransformerEncoderLayer(
                    width, nhead=2, dim_feedforward=2 * width, dropout=0.0, batch_first=True
                )
                self.head = torch.nn.Linear(width, vocab)
                self.register_buffer(
                    "mask", torch.nn.Transformer.generate_square_subsequent_mask(context)
                )

            def forward(self, x: Any) -> Any:
                h = self.tok(x) + self.pos[: x.shape[1]]
                return self.head(self.block(h, src_mask=self.mask, is_causal=True))

        return Net()


def char_transformer(config: Mapping[str, Any] | None = None) -> Task:
    """A one-block character transformer on 48 KB of the bundled Python help text, AdamW."""
    import torch

    cfg = {"lr": 3e-3, "width": 32, "context": 32, "chars": 48_000, **dict(config or {})}
    xs, ys, vocab = _text(cfg["chars"], cfg["context"])

    def loss(model: Any, batch: Any) -> Any:
        x, y = batch
        logits = model(x)
        per_token = torch.nn.functional.cross_entropy(
            logits.reshape(-1, vocab), y.reshape(-1), reduction="none"
        )
        return per_token.view(y.shape).mean(dim=1)

    return Task(
        model=_CharTransformer(vocab, cfg["context"], cfg["width"]),
        optimizer=lambda m: torch.optim.AdamW(m.parameters(), lr=cfg["lr"]),
        dataset=torch.utils.data.TensorDataset(xs, ys),
        loss=loss,
        config=cfg,
    )


FAMILIES: dict[str, Callable[[Mapping[str, Any] | None], Task]] = {
    "digits_mlp": digits_mlp,
    "digits_cnn": digits_cnn,
    "char_transformer": char_transformer,
}
