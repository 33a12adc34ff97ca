"""TransformerMonitor (max attention logit, output log Z) and z_loss, against direct computation."""

from __future__ import annotations

import math

import pytest
import torch

from runcast.errors import InvalidInputError
from runcast.steer import TransformerMonitor, z_loss


def test_z_loss_matches_definition() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, 7, 11) * 3
    ref = 1e-4 * torch.logsumexp(logits, -1).pow(2).mean()
    assert torch.allclose(z_loss(logits), ref, rtol=1e-6)
    mask = torch.zeros(4, 7, dtype=torch.bool)
    mask[:, :3] = True
    ref_m = torch.logsumexp(logits[:, :3], -1).pow(2).mean()
    assert torch.allclose(z_loss(logits, coef=1.0, mask=mask), ref_m, rtol=1e-6)
    logits.requires_grad_(True)
    z_loss(logits).backward()  # it is a loss: it must have a gradient
    assert logits.grad is not None and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_monitor_mha_max_logit_exact(batch_first: bool, causal: bool) -> None:
    torch.manual_seed(1)
    e, h, t = 8, 2, 5
    mha = torch.nn.MultiheadAttention(e, h, batch_first=batch_first)
    x = torch.randn(3, t, e)
    xin = x if batch_first else x.transpose(0, 1)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(t) if causal else None
    with TransformerMonitor(mha) as mon:
        mha(xin, xin, xin, attn_mask=mask)
        got = mon.stats()["max_attn_logit"]
    wq, wk = mha.in_proj_weight[:e], mha.in_proj_weight[e : 2 * e]
    bq, bk = mha.in_proj_bias[:e], mha.in_proj_bias[e : 2 * e]
    q = (x @ wq.T + bq).view(3, t, h, e // h).transpose(1, 2)
    k = (x @ wk.T + bk).view(3, t, h, e // h).transpose(1, 2)
    ref = (q @ k.transpose(-1, -2)) / math.sqrt(e // h)
    if causal:
        ref = ref + mask
    assert got.dim() == 0  # a 0-d tensor: nothing was synced to the host
    assert torch.allclose(got, ref.max(), rtol=1e-5)


def test_monitor_gpt2_attention_and_log_z() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32)
    model = GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, 50, (2, 6))
    captured: dict[str, torch.Tensor] = {}
    attn = model.transformer.h[0].attn
    hook = attn.c_attn.register_forward_hook(lambda m, a, o: captured.setdefault("qkv", o))
    with TransformerMonitor(model) as mon:
        out = model(ids)
        stats = mon.stats()
    hook.remove()
    assert mon.watched == ["transformer.h.0.attn"]
    q, k, _ = captured["qkv"].split(16, dim=-1)
    q = q.view(2, 6, 2, 8).transpose(1, 2)
    k = k.view(2, 6, 2, 8).transpose(1, 2)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(8)
    s = s.masked_fill(~torch.ones(6, 6, dtype=torch.bool).tril(), -math.inf)  # causal
    assert torch.allclose(stats["max_attn_logit"], s.max(), rtol=1e-5)
    lz = torch.logsumexp(out.logits, -1)
    assert torch.allclose(stats["log_z_mean"], lz.mean(), rtol=1e-5)
    assert torch.allclose(stats["log_z_max_abs"], lz.abs().max(), rtol=1e-5)
    assert mon.stats() == {}  # a new period starts empty


def test_monitor_every_n_and_remove() -> None:
    mha = torch.nn.MultiheadAttention(4, 1, batch_first=True)
    x = torch.randn(1, 3, 4)
    mon = TransformerMonitor(mha, every=2)
    mha(x, x, x)
    assert "max_attn_logit" in mon.stats()  # forward 1: computed
    mha(x, x, x)
    assert mon.stats() == {}  # forward 2: skipped (every=2)
    mon.remove()
    mha(x, x, x)
    assert mon.stats() == {}  # hooks gone


def test_monitor_observe_qk_for_custom_attention() -> None:
    mon = TransformerMonitor(torch.nn.Identity(), attention=False)
    q = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    mon.observe_qk(q, q, scale=1.0, causal=True)
    # q.kT = [[1, 0], [0, 4]]; causal keeps the lower triangle -> max 4
    assert mon.stats()["max_attn_logit"].item() == 4.0


def test_monitor_rejects_bad_every() -> None:
    with pytest.raises(InvalidInputError, match="every"):
        TransformerMonitor(torch.nn.Identity(), every=0)
