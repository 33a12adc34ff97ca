"""Early-warning signals of transformer instabilities, and the z-loss (Wortsman et al. 2023).

Two instabilities of large transformers show up early at small scale: attention-logit growth
(the largest ``q·k/sqrt(d)`` keeps rising until the attention softmax collapses to one-hot) and
output-logit divergence (the log-partition ``log Z = logsumexp(logits)`` drifts far from 0).
:class:`TransformerMonitor` tracks both with forward hooks; :func:`z_loss` is the auxiliary loss
``coef * mean(log Z ** 2)`` that keeps ``log Z`` near 0.

Which attention modules are watched:

- ``torch.nn.MultiheadAttention``: a pre-hook recomputes ``q`` and ``k`` from its inputs and
  weights (respecting ``attn_mask``/``is_causal``);
- GPT-2-style modules with a fused ``c_attn`` projection (Hugging Face ``GPT2Attention``): a hook
  on ``c_attn`` splits its output into ``q`` and ``k`` (causal mask, the module's ``scaling``);
- anything else: call :meth:`TransformerMonitor.observe_qk` from your attention's forward.

Recomputing ``q kᵀ`` costs about one more attention-score matmul per layer; ``every=N`` does it
on every N-th forward only. Everything stays on the device as 0-d tensors (no sync per step).

Example:
    >>> import torch
    >>> logits = torch.zeros(2, 3, 5)
    >>> round(float(z_loss(logits, coef=1.0)), 4)  # log Z = log 5 everywhere
    2.5903
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from runcast._optional import require
from runcast.errors import InvalidInputError, RuncastWarning

# torch.nn.MultiheadAttention.forward's positional arguments, in order
_MHA_ARGS = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask")


def z_loss(logits: Any, coef: float = 1e-4, mask: Any = None) -> Any:
    """``coef * mean(logsumexp(logits, -1) ** 2)``: the output-logit z-loss of PaLM/Wortsman.

    Args:
        logits: ``(..., vocab)`` output logits.
        coef: the weight (1e-4 in Wortsman et al. 2023).
        mask: optional boolean ``(...)`` tensor, True where a position counts (e.g. not padding).

    Example:
        >>> import torch
        >>> z_loss(torch.zeros(4, 10), coef=0.0).item()
        0.0
    """
    torch = require("torch", extra="torch", purpose="for z_loss")
    _check_coef(coef)
    if not torch.is_tensor(logits) or logits.dim() == 0 or logits.shape[-1] == 0:
        got = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
        raise InvalidInputError(
            f"z_loss needs logits as a torch tensor of shape (..., vocab) with vocab >= 1, but "
            f"got {got}; pass the model's output logits."
        )
    log_z = torch.logsumexp(logits.float(), dim=-1)
    sq = log_z.pow(2)
    if sq.numel() == 0:
        # an empty batch adds nothing (the mean of nothing was NaN and poisoned the loss);
        # the sum keeps the result attached to the graph
        return coef * sq.sum()
    if mask is not None:
        if not torch.is_tensor(mask) or tuple(mask.shape) != tuple(sq.shape):
            got = tuple(mask.shape) if torch.is_tensor(mask) else type(mask).__name__
            # a mask that merely broadcasts, e.g. (T,) against (B, T) with B == T, would weigh
            # the wrong positions without an error
            raise InvalidInputError(
                f"z_loss's mask must be a tensor of the logits' shape without the vocab axis, "
                f"{tuple(sq.shape)}, but got {got}."
            )
        m = mask.to(sq.dtype)
        return coef * (sq * m).sum() / m.sum().clamp_min(1.0)
    return coef * sq.mean()


def _check_coef(coef: Any) -> None:
    """A z-loss weight must be a finite number >= 0: a negative one rewards a large log Z (the
    divergence the loss is there to prevent), NaN makes the whole training loss NaN."""
    try:
        value = float(coef)
    except (TypeError, ValueError, RuntimeError):
        value = math.nan
    if isinstance(coef, (bool, str)) or not math.isfinite(value) or value < 0:
        raise InvalidInputError(
            f"z_loss's coef must be a finite number >= 0 (1e-4 is usual), but got {coef!r}."
        )


class TransformerMonitor:
    """Track the largest attention logit and the output log Z of a torch transformer.

    Args:
        model: the ``torch.nn.Module``.
        output_layer: the module whose output is the logits; default
            ``model.get_output_embeddings()`` (Hugging Face models).
        attention: watch the supported attention modules (see the module doc).
        every: compute on every ``every``-th forward pass only.

    Use as a context manager, or call :meth:`remove` when done. :meth:`stats` returns 0-d
    tensors (``max_attn_logit``, ``log_z_mean``, ``log_z_max_abs``) and starts a new period.

    Example:
        >>> import torch
        >>> mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        >>> with TransformerMonitor(mha) as mon:
        ...     x = torch.randn(1, 4, 8)
        ...     _ = mha(x, x, x)
        ...     sorted(mon.stats())
        ['max_attn_logit']
    """

    def __init__(
        self, model: Any, *, output_layer: Any = None, attention: bool = True, every: int = 1
    ) -> None:
        self._torch = require("torch", extra="torch", purpose="for TransformerMonitor")
        nn = self._torch.nn
        # every=2.5 counted forwards in fractions and every='2' was a TypeError
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise InvalidInputError(f"every must be an integer >= 1, but got {every!r}.")
        for arg, mod in (("model", model), ("output_layer", output_layer)):
            if mod is not None and not isinstance(mod, nn.Module):
                raise InvalidInputError(
                    f"TransformerMonitor's {arg} must be a torch.nn.Module (it hooks into its "
                    f"forward), but got {type(mod).__name__}."
                )
        self.every = every
        self._handles: list[Any] = []
        self._calls = 0
        self._max_logit: Any = None
        self._log_z_sum: Any = None
        self._log_z_n = 0
        self._log_z_max: Any = None
        self.watched: list[str] = []
        self._warned_output = False
        if attention:
            for name, mod in model.named_modules():
                if isinstance(mod, nn.MultiheadAttention):
                    h = mod.register_forward_pre_hook(self._mha_hook, with_kwargs=True)
                    self._handles.append(h)
                    self.watched.append(name or "<root>")
                elif _is_gpt2_attention(mod):
                    self._handles.append(mod.c_attn.register_forward_hook(self._fused_hook(mod)))
                    self.watched.append(name)
        if output_layer is None and hasattr(model, "get_output_embeddings"):
            output_layer = model.get_output_embeddings()
        if output_layer is not None:
            self._handles.append(output_layer.register_forward_hook(self._logits_hook))
        self._has_output = output_layer is not None
        # the model's forward drives the every-N counter (one tick per forward pass); prepended
        # so it runs before any hook on the same module
        self._handles.append(model.register_forward_pre_hook(self._tick, prepend=True))

    # --- hooks ---------------------------------------------------------------------------------
    def _active(self) -> bool:
        return (self._calls - 1) % self.every == 0

    def _tick(self, module: Any, args: Any) -> None:
        self._calls += 1

    def observe_qk(self, q: Any, k: Any, scale: float | None = None, causal: bool = False) -> None:
        """Record the largest logit of ``q kᵀ * scale`` (``q, k``: ``(..., T, d)``).

        Call it from a custom attention forward; ``scale`` defaults to ``d ** -0.5``.
        """
        torch = self._torch
        with torch.no_grad():
            s = scale if scale is not None else q.shape[-1] ** -0.5
            logits = torch.matmul(q.detach().float(), k.detach().float().transpose(-2, -1)) * s
            if causal:
                t, u = logits.shape[-2], logits.shape[-1]
                keep = torch.ones(t, u, dtype=torch.bool, device=logits.device).tril(u - t)
                logits = logits.masked_fill(~keep, -math.inf)
            self._record_max(logits)

    def _record_max(self, logits: Any) -> None:
        if logits.numel() == 0:
            return  # an empty batch has no logits (amax of nothing raised inside the forward)
        m = logits.amax()
        self._max_logit = m if self._max_logit is None else self._torch.maximum(self._max_logit, m)

    def _mha_hook(self, mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not self._active():
            return
        torch = self._torch
        F = torch.nn.functional
        # MultiheadAttention's own order: the 5th positional argument is need_weights, not the
        # mask (read as one, mha(x, x, x, None, True) raised AttributeError)
        arg = dict(zip(_MHA_ARGS, args, strict=False)) | kwargs
        query, key = arg["query"], arg["key"]
        batched = query.dim() == 3
        if not mod.batch_first and batched:
            query, key = query.transpose(0, 1), key.transpose(0, 1)
        e, h = mod.embed_dim, mod.num_heads
        with torch.no_grad():
            if mod._qkv_same_embed_dim:
                wq, wk = mod.in_proj_weight[:e], mod.in_proj_weight[e : 2 * e]
            else:
                wq, wk = mod.q_proj_weight, mod.k_proj_weight
            bq = bk = None
            if mod.in_proj_bias is not None:
                bq, bk = mod.in_proj_bias[:e], mod.in_proj_bias[e : 2 * e]
            q = F.linear(query, wq, bq)
            k = F.linear(key, wk, bk)
            q = q.unflatten(-1, (h, e // h)).transpose(-3, -2)
            k = k.unflatten(-1, (h, e // h)).transpose(-3, -2)
            logits = torch.matmul(q.float(), k.float().transpose(-2, -1)) * (e // h) ** -0.5
            mask = arg.get("attn_mask")
            if mask is not None:
                if batched and mask.dim() == 3:  # (batch * heads, T, S), as the module takes it
                    mask = mask.unflatten(0, (-1, h))
                logits = _apply_mask(logits, mask, torch)
            elif arg.get("is_causal", False):
                t, u = logits.shape[-2], logits.shape[-1]
                keep = torch.ones(t, u, dtype=torch.bool, device=logits.device).tril(u - t)
                logits = logits.masked_fill(~keep, -math.inf)
            pad = arg.get("key_padding_mask")
            if pad is not None:
                # padded keys are no logits the softmax sees: left in, padding's values were
                # reported as the largest attention logit
                logits = _apply_mask(logits, pad[:, None, None, :] if batched else pad, torch)
            self._record_max(logits)

    def _fused_hook(self, attn: Any) -> Any:
        def hook(mod: Any, args: Any, out: Any) -> None:
            if not self._active():
                return
            q, k, _ = out.split(attn.split_size, dim=-1)
            d = attn.head_dim
            q = q.unflatten(-1, (-1, d)).transpose(-3, -2)
            k = k.unflatten(-1, (-1, d)).transpose(-3, -2)
            scale = float(getattr(attn, "scaling", d**-0.5))
            self.observe_qk(q, k, scale=scale, causal=True)

        return hook

    def _logits_hook(self, mod: Any, args: Any, out: Any) -> None:
        if not self._active():
            return
        torch = self._torch
        logits = _logits_of(out, torch)
        if logits is None:
            if not self._warned_output:
                self._warned_output = True
                warnings.warn(
                    f"TransformerMonitor: the output layer returned {type(out).__name__}, not "
                    "logits, so log Z is not tracked; pass output_layer= the module whose "
                    "output is the logits tensor.",
                    RuncastWarning,
                    stacklevel=2,
                )
            return
        if logits.numel() == 0 or logits.shape[-1] == 0:
            return  # an empty batch: nothing to add (amax of nothing raised inside the forward)
        with torch.no_grad():
            log_z = torch.logsumexp(logits.detach().float(), dim=-1)
            s, mx = log_z.sum(), log_z.abs().amax()
            self._log_z_sum = s if self._log_z_sum is None else self._log_z_sum + s
            self._log_z_max = mx if self._log_z_max is None else torch.maximum(self._log_z_max, mx)
            self._log_z_n += log_z.numel()

    # --- results -------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """The period's 0-d tensors: ``max_attn_logit``, ``log_z_mean``, ``log_z_max_abs``.

        Only the signals seen since the last call are present; the period then restarts.
        """
        out: dict[str, Any] = {}
        if self._max_logit is not None:
            out["max_attn_logit"] = self._max_logit
        if self._log_z_sum is not None and self._log_z_n:
            out["log_z_mean"] = self._log_z_sum / self._log_z_n
            out["log_z_max_abs"] = self._log_z_max
        self._max_logit = self._log_z_sum = self._log_z_max = None
        self._log_z_n = 0
        return out

    def remove(self) -> None:
        """Remove every hook."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> TransformerMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _apply_mask(logits: Any, mask: Any, torch: Any) -> Any:
    """A boolean mask (True = masked out) or an additive float mask, as attention applies it."""
    if mask.dtype == torch.bool:
        return logits.masked_fill(mask, -math.inf)
    return logits + mask


def _logits_of(out: Any, torch: Any) -> Any:
    """The logits tensor in a module's output: itself, a model output's ``.logits``, or the first
    item of a tuple (e.g. ``(logits, cache)``); None when there is none."""
    if torch.is_tensor(out):
        return out
    logits = getattr(out, "logits", None)
    if torch.is_tensor(logits):
        return logits
    if isinstance(out, (tuple, list)) and out and torch.is_tensor(out[0]):
        return out[0]
    return None


def _is_gpt2_attention(mod: Any) -> bool:
    return (
        hasattr(mod, "c_attn")
        and hasattr(mod, "split_size")
        and hasattr(mod, "head_dim")
        and not getattr(mod, "is_cross_attention", False)
    )
