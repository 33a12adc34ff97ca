"""The demo transformer: shapes, causality, weight tying, and that it can learn."""

from __future__ import annotations

import pytest
import torch

from runcast.demo._model import CharTransformer, ModelConfig
from runcast.errors import InvalidInputError


@pytest.mark.parametrize(("layers", "heads"), [(1, 1), (2, 4)])
def test_logits_shape_and_initial_loss(layers: int, heads: int) -> None:
    torch.manual_seed(0)
    m = CharTransformer(ModelConfig(vocab=50, context=16, width=32, heads=heads, layers=layers))
    idx = torch.randint(0, 50, (3, 16))
    target = torch.randint(0, 50, (3, 16))
    assert tuple(m(idx).shape) == (3, 16, 50)
    # a fresh model is near-uniform: cross-entropy of random targets ~ ln(50) = 3.91
    assert m.loss(idx, target).item() == pytest.approx(3.91, abs=0.1)


def test_attention_is_causal() -> None:
    torch.manual_seed(0)
    m = CharTransformer(ModelConfig(vocab=20, context=8, width=16, heads=2, layers=2)).eval()
    a = torch.randint(0, 20, (1, 8))
    b = a.clone()
    b[0, 5:] = (b[0, 5:] + 1) % 20
    # changing characters 5.. must not change the predictions at positions 0..4
    torch.testing.assert_close(m(a)[0, :5], m(b)[0, :5])
    assert not torch.allclose(m(a)[0, 5:], m(b)[0, 5:])


def test_output_layer_is_tied_to_the_embedding() -> None:
    m = CharTransformer(ModelConfig(vocab=30, context=8, width=16, heads=2, layers=1))
    assert m.head.weight is m.tok.weight
    # counted once: 30*16 embedding + 8*16 positions + block + final norm
    untied = sum(p.numel() for p in m.parameters())
    assert m.n_params() == untied


def test_learns_a_repeating_pattern() -> None:
    torch.manual_seed(0)
    m = CharTransformer(ModelConfig(vocab=4, context=8, width=16, heads=2, layers=1))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    seq = torch.tensor([[0, 1, 2, 3] * 3])
    x, y = seq[:, :8], seq[:, 1:9]
    first = m.loss(x, y).item()
    for _ in range(60):
        loss = m.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # a deterministic pattern is learned almost perfectly
    assert first > 1.2 and loss.item() < 0.1


def test_width_must_split_into_heads() -> None:
    with pytest.raises(InvalidInputError, match="divisible by heads"):
        CharTransformer(ModelConfig(vocab=4, context=8, width=10, heads=3))
