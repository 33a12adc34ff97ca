"""The PFN transformer (torch; used for training only, inference runs in numpy).

Observed points and query points are tokens. Observed tokens carry their schedule features and
their value; query tokens carry only features. Every token attends to the observed tokens only
(padding masked), never to queries, so a query's answer does not depend on which other queries
were asked (Müller et al. 2022). No positional encoding: time is a feature, and the set of
observations is permutation-invariant. The head outputs logits of a bar ("Riemann") distribution
over the squashed normalised value, on fixed bins whose borders are stored with the weights.

Example:
    >>> import torch
    >>> m = PFN(ModelConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, n_bins=16))
    >>> logits = m(torch.zeros(2, 5, 5), torch.zeros(2, 5), torch.ones(2, 5, dtype=torch.bool),
    ...            torch.zeros(2, 3, 5))
    >>> tuple(logits.shape)
    (2, 3, 16)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from runcast.forecast.pfn._features import N_FEATURES


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the PFN; stored with the weights so inference rebuilds the same network."""

    d_model: int = 96
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 192
    n_bins: int = 128

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (for the weights file)."""
        return asdict(self)


class Block(nn.Module):
    """Pre-norm transformer block whose keys and values come from the observed tokens only."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ff1 = nn.Linear(cfg.d_model, cfg.d_ff)
        self.ff2 = nn.Linear(cfg.d_ff, cfg.d_model)

    def forward(self, x: torch.Tensor, n_obs: int, key_bias: torch.Tensor) -> torch.Tensor:
        """``x``: (B, n_obs + n_query, d); ``key_bias``: (B, 1, 1, n_obs), 0 or -1e9 for padding."""
        b, t, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q = q.view(b, t, h, d // h).transpose(1, 2)
        k = k[:, :n_obs].reshape(b, n_obs, h, d // h).transpose(1, 2)
        v = v[:, :n_obs].reshape(b, n_obs, h, d // h).transpose(1, 2)
        # written out (not F.scaled_dot_product_attention) so the numpy port mirrors it exactly
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // h) + key_bias
        y = torch.softmax(att, dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        ff = self.ff2(nn.functional.gelu(self.ff1(self.ln2(x)), approximate="tanh"))
        out: torch.Tensor = x + ff
        return out


class PFN(nn.Module):
    """The prior-data fitted network: (observed points, query features) -> bar logits."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_obs = nn.Linear(N_FEATURES + 1, cfg.d_model)
        self.embed_query = nn.Linear(N_FEATURES, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.n_bins)

    def forward(
        self,
        obs_feat: torch.Tensor,
        obs_z: torch.Tensor,
        obs_mask: torch.Tensor,
        q_feat: torch.Tensor,
    ) -> torch.Tensor:
        """Bar-distribution logits ``(B, n_query, n_bins)`` for each query point."""
        n_obs = obs_feat.shape[1]
        x = torch.cat(
            [
                self.embed_obs(torch.cat([obs_feat, obs_z.unsqueeze(-1)], dim=-1)),
                self.embed_query(q_feat),
            ],
            dim=1,
        )
        key_bias = torch.where(obs_mask, 0.0, -1e9)[:, None, None, :].to(x.dtype)
        for blk in self.blocks:
            x = blk(x, n_obs, key_bias)
        out: torch.Tensor = self.head(self.ln_f(x[:, n_obs:]))
        return out


def bar_nll(logits: torch.Tensor, target: torch.Tensor, borders: torch.Tensor) -> torch.Tensor:
    """Mean negative log density of ``target`` under the bar distribution (Müller et al. 2022).

    The density in bin ``i`` is ``p_i / width_i``; the width term makes the loss comparable
    across bin layouts (and a proper density NLL in the squashed space).

    Example:
        >>> b = torch.tensor([0.0, 1.0, 3.0])
        >>> round(float(bar_nll(torch.zeros(1, 1, 2), torch.tensor([[2.0]]), b)), 4)  # 0.5 / 2
        1.3863
    """
    n_bins = borders.numel() - 1
    idx = torch.clamp(torch.bucketize(target, borders, right=True) - 1, 0, n_bins - 1)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    width = (borders[1:] - borders[:-1])[idx]
    return -(logp - torch.log(width)).mean()
