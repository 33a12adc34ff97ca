"""TransformerMonitor (max attention logit, output log Z) and z_loss, against direct computation."""

from __future__ import annotations

import math

import pytest
import torch

from runcast.errors import InvalidInputError, RuncastWarning
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


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coef": float("nan")}, "coef must be a finite number >= 0"),  # was a NaN loss
        ({"coef": -1.0}, "coef must be a finite number >= 0"),  # rewarded a large log Z
        ({"coef": "1e-4"}, "coef must be a finite number >= 0"),  # was torch's TypeError
        ({"mask": torch.ones(3, dtype=torch.bool)}, r"\(3, 3\), but got \(3,\)"),  # broadcast
        ({"mask": [[True] * 3] * 3}, "but got list"),  # was AttributeError
    ],
)
def test_z_loss_refuses_bad_coef_and_mask(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        z_loss(torch.randn(3, 3, 5), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("logits", [torch.zeros(2, 0), torch.tensor(1.0), [[0.0, 1.0]]])
def test_z_loss_refuses_what_is_not_logits(logits: object) -> None:
    # no vocab axis was inf or an IndexError; a list an AttributeError
    with pytest.raises(InvalidInputError, match=r"shape \(\.\.\., vocab\)"):
        z_loss(logits)


@pytest.mark.parametrize("mask", [None, torch.zeros(0, 4, dtype=torch.bool)])
def test_z_loss_of_an_empty_batch_is_zero_with_a_gradient(mask: object) -> None:
    logits = torch.zeros(0, 4, 7, requires_grad=True)
    out = z_loss(logits, coef=1.0, mask=mask)
    # the mean over no positions was NaN and turned the whole training loss NaN
    assert out.item() == 0.0
    out.backward()
    assert logits.grad is not None and logits.grad.shape == (0, 4, 7)


def test_monitor_reads_mha_arguments_in_the_modules_order() -> None:
    torch.manual_seed(2)
    e, h, b, t = 8, 2, 2, 4
    mha = torch.nn.MultiheadAttention(e, h, batch_first=True)
    x = torch.randn(b, t, e)
    with TransformerMonitor(mha) as mon:
        mha(x, x, x)
        plain = mon.stats()["max_attn_logit"]
        # the 5th positional argument is need_weights: it was read as the mask (AttributeError)
        mha(x, x, x, None, True)
        assert torch.equal(mon.stats()["max_attn_logit"], plain)
        # a 3-D mask is (batch * heads, T, S): it did not broadcast against (batch, heads, T, S)
        mask3 = torch.zeros(b * h, t, t, dtype=torch.bool)
        mask3[:, :, -1] = True  # hide the last key
        mha(x, x, x, attn_mask=mask3)
        hidden_last = mon.stats()["max_attn_logit"]
        mha(x[:, :-1], x[:, :-1], x[:, :-1])
        assert torch.allclose(hidden_last, mon.stats()["max_attn_logit"])
        # padded keys are masked too: huge padding values were reported as the largest logit
        padded = x.clone()
        padded[:, -1] = 100.0
        pad = torch.zeros(b, t, dtype=torch.bool)
        pad[:, -1] = True
        mha(x, padded, padded, key_padding_mask=pad)
        assert torch.allclose(mon.stats()["max_attn_logit"], hidden_last)


def test_monitor_skips_an_empty_batch() -> None:
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    lin = torch.nn.Linear(8, 5)
    empty = torch.zeros(0, 3, 8)
    with TransformerMonitor(mha) as mon, TransformerMonitor(lin, output_layer=lin) as out:
        # amax over nothing raised inside the model's forward, stopping training
        mha(empty, empty, empty)
        lin(empty)
        assert mon.stats() == {} and out.stats() == {}


class _TupleHead(torch.nn.Module):
    """An output layer that returns (logits, cache), like many language-model heads."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 6)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.proj(x), None


class _DictHead(torch.nn.Module):
    """An output layer whose output holds no tensor the monitor can take for the logits."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"scores": x}


def test_monitor_finds_logits_in_a_tuple_and_warns_when_there_are_none() -> None:
    head = _TupleHead()
    x = torch.randn(3, 4)
    with TransformerMonitor(head, output_layer=head) as mon:
        head(x)  # was AttributeError: 'tuple' object has no attribute 'detach'
        ref = torch.logsumexp(head.proj(x), -1)
        assert torch.allclose(mon.stats()["log_z_mean"], ref.mean())
    named = _DictHead()
    with TransformerMonitor(named, output_layer=named) as mon:
        with pytest.warns(RuncastWarning, match="returned dict, not logits"):
            named(x)
        named(x)  # warned once, not at every forward
        assert mon.stats() == {}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": lambda x: x}, "model must be a torch.nn.Module"),
        ({"model": torch.nn.Identity(), "output_layer": "lm_head"}, "output_layer must be"),
        ({"model": torch.nn.Identity(), "every": 2.5}, "integer >= 1, but got 2.5"),
        ({"model": torch.nn.Identity(), "every": "2"}, "integer >= 1, but got '2'"),
    ],
)
def test_monitor_refuses_what_it_cannot_hook(kwargs: dict[str, object], match: str) -> None:
    model = kwargs.pop("model")
    with pytest.raises(InvalidInputError, match=match):
        TransformerMonitor(model, **kwargs)  # type: ignore[arg-type]


class _FusedAttention(torch.nn.Module):
    """The shape of a GPT-2 attention the monitor hooks: a fused q/k/v projection c_attn."""

    def __init__(self, e: int = 8, h: int = 2) -> None:
        super().__init__()
        self.c_attn = torch.nn.Linear(e, 3 * e)
        self.split_size, self.head_dim = e, e // h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_attn(x)


def test_monitor_skips_an_empty_batch_in_a_fused_attention() -> None:
    attn = _FusedAttention()
    with TransformerMonitor(attn) as mon:
        assert mon.watched == [""]
        attn(torch.zeros(0, 4, 8))  # raised from unflatten inside the forward
        assert mon.stats() == {}
        attn(torch.randn(2, 4, 8))
        assert mon.stats()["max_attn_logit"].dim() == 0  # a real batch is still measured
