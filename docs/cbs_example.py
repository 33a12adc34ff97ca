"""An example training script for ``runcast cbs``: the runcast demo's character transformer.

``runcast cbs`` imports this file and calls ``build()`` and ``train(...)`` (and ``evaluate`` if
present). Make a checkpoint from any point of a run, then measure the CBS there::

    import torch
    from cbs_example import build, train
    model, opt = build()
    train(model, opt, batch_size=BATCH_SIZE, steps=200)   # the run so far
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 200},
               "ckpt.pt")

    $ runcast cbs docs/cbs_example.py ckpt.pt --window 512
"""

from __future__ import annotations

import numpy as np
import torch

from runcast.demo._model import CharTransformer, ModelConfig
from runcast.demo._text import CharData, load_text

BATCH_SIZE = 4  # sequences per step in the run being measured
RUN_EXAMPLES = 8000  # the run's sequences in all (for the default window and the cost line)
CONTEXT = 16
DATA = CharData.from_text(load_text())
_HELD_OUT = DATA.batch("val", 256, CONTEXT, np.random.default_rng(1))


def build() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A fresh model and optimizer (runcast cbs loads the checkpoint's states into them)."""
    torch.manual_seed(0)
    model = CharTransformer(ModelConfig(DATA.vocab, context=CONTEXT, width=32, heads=4, layers=1))
    return model, torch.optim.Adam(model.parameters(), lr=3e-3)


def train(
    model: torch.nn.Module, opt: torch.optim.Optimizer, batch_size: int, steps: int
) -> list[float]:
    """``steps`` steps at ``batch_size``; the same data stream in every branch (seed 0)."""
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        x, y = DATA.batch("train", batch_size, CONTEXT, rng)
        loss = model.loss(x, y)  # type: ignore[operator]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def evaluate(model: torch.nn.Module) -> float:
    """The loss on a fixed held-out set: what the branches are compared on."""
    with torch.no_grad():
        return float(model.loss(*_HELD_OUT))  # type: ignore[operator]
