"""A small character-level transformer (decoder only), sized to train on a laptop CPU.

The model is deliberately plain (pre-norm blocks, learned positions, weight-tied output): the
demo is about watching a real loss curve fall under a WSD schedule and forecasting where it
ends, not about the model.

Example:
    >>> import torch
    >>> from runcast.demo._model import CharTransformer, ModelConfig
    >>> m = CharTransformer(ModelConfig(vocab=10, context=8, width=16, heads=2, layers=1))
    >>> logits = m(torch.zeros(2, 8, dtype=torch.long))
    >>> tuple(logits.shape)
    (2, 8, 10)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812  (the torch convention)

from runcast.errors import InvalidInputError


@dataclass(frozen=True)
class ModelConfig:
    """The transformer's size.

    Args:
        vocab: number of distinct characters.
        context: characters the model sees at once.
        width: embedding width (``heads`` must divide it).
        heads: attention heads per layer.
        layers: transformer blocks.
    """

    vocab: int
    context: int = 64
    width: int = 96
    heads: int = 4
    layers: int = 2


class _Block(nn.Module):
    """One pre-norm transformer block: causal self-attention, then an MLP."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(cfg.width)
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width)
        self.proj = nn.Linear(cfg.width, cfg.width)
        self.norm2 = nn.LayerNorm(cfg.width)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.width, 4 * cfg.width), nn.GELU(), nn.Linear(4 * cfg.width, cfg.width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(c, dim=2)
        # (b, heads, t, c/heads): one attention per head, computed by the fused kernel
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


class CharTransformer(nn.Module):
    """Predicts the next character at every position of a context window."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.width % cfg.heads:
            raise InvalidInputError(
                f"width ({cfg.width}) must be divisible by heads ({cfg.heads})."
            )
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab, cfg.width)
        self.pos = nn.Embedding(cfg.context, cfg.width)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.vocab, bias=False)
        # weight tying: fewer parameters, and the loss falls faster on tiny models
        self.head.weight = self.tok.weight
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits: torch.Tensor = self.head(self.norm(x))
        return logits

    def loss(self, idx: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats per character) of next-character prediction."""
        logits = self(idx)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))

    def n_params(self) -> int:
        """Number of trainable parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
