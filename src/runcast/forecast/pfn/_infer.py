"""The PFN's forward pass in numpy, from the shipped weights: forecasting never needs torch.

A line-for-line port of :class:`runcast.forecast.pfn._model.PFN` (tests assert both give the same
logits), plus the bar distribution's quantile function.

Example:
    >>> w = load_weights()
    >>> z = np.zeros((1, 10)); m = np.ones((1, 10), bool)
    >>> f = np.zeros((1, 10, 5)); f[..., 0] = np.linspace(0.05, 0.5, 10); f[..., 1:3] = 1
    >>> q = np.zeros((1, 1, 5)); q[..., 0] = 1.0
    >>> logits(w, f, z, m, q).shape
    (1, 1, 128)
"""

from __future__ import annotations

import contextlib
import functools
import json
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.errors import InvalidInputError, MissingDependencyError
from runcast.forecast.pfn._features import FloatArray

WEIGHTS = Path(__file__).with_name("weights.npz")
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Weights:
    """The network's parameters (float32), its config and its bin borders (squashed space)."""

    params: dict[str, F32]
    config: dict[str, Any]
    borders: FloatArray

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks."""
        return int(self.config["n_layers"])


@functools.lru_cache(maxsize=4)
def load_weights(path: Path | str | None = None) -> Weights:
    """Load (once, then cached) weights written by ``python -m runcast.forecast.pfn.train``."""
    if path is not None and not isinstance(path, (str, Path)):
        raise InvalidInputError(f"weights must be a file path, but got {type(path).__name__}.")
    p = Path(path) if path is not None else WEIGHTS
    if not p.exists():
        raise MissingDependencyError(
            f"The PFN weights file {p} is missing. Reinstall runcast, or retrain them with "
            "`python -m runcast.forecast.pfn.train --out <path>` (needs torch)."
        )
    try:
        with np.load(p, allow_pickle=False) as data:
            meta = {"config", "borders"}
            params = {
                k: np.ascontiguousarray(data[k], dtype=np.float32)
                for k in data.files
                if k not in meta
            }
            config = json.loads(str(data["config"]))
            borders = np.asarray(data["borders"], dtype=np.float64)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        # not an .npz, or one without the config and bar borders the trainer writes
        raise InvalidInputError(
            f"{p} is not a PFN weights file ({type(err).__name__}: {err}). Pass a file written "
            "by `python -m runcast.forecast.pfn.train --out <path>`."
        ) from err
    return Weights(params, config, borders)


def use_weights(path: Path | str) -> None:
    """Forecast with the weights file ``path`` from now on, wherever a method is not given
    ``weights=`` (``forecast()``'s own calls): for benchmarks judging other weights."""
    p = Path(path).resolve()
    global WEIGHTS
    if p != WEIGHTS:
        WEIGHTS = p
        load_weights.cache_clear()  # the default's cached entry is keyed by None, not the path


def _linear(x: F32, p: dict[str, F32], name: str) -> F32:
    out: F32 = x @ p[f"{name}.weight"].T + p[f"{name}.bias"]
    return out


def _layer_norm(x: F32, p: dict[str, F32], name: str) -> F32:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    out: F32 = (x - mu) / np.sqrt(var + np.float32(1e-5)) * p[f"{name}.weight"] + p[f"{name}.bias"]
    return out


def _gelu(x: F32) -> F32:
    # the tanh approximation, as torch's gelu(approximate="tanh") used in training
    c = np.float32(np.sqrt(2.0 / np.pi))
    # x * x * x, not x**3: numpy sends float32 cubes to the slow generic pow (8 ms vs 0.01 ms)
    out: F32 = 0.5 * x * (1.0 + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))
    return out


def _softmax(a: F32) -> F32:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    out: F32 = e / e.sum(axis=-1, keepdims=True)
    return out


@functools.lru_cache(maxsize=1)
def _one_blas_thread() -> Callable[[], AbstractContextManager[Any]]:
    """A context that runs BLAS on one thread, if threadpoolctl is installed (else a no-op).

    The forward pass is a few dozen matmuls of ~100x100: too small to gain from threads, and on
    a busy machine OpenBLAS's spinning threads make it 10x slower (measured: 75 ms vs 900 ms).
    """
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
    except ImportError:
        return contextlib.nullcontext
    ctl = ThreadpoolController()  # built once: inspecting the loaded libraries takes ~1 ms
    return lambda: ctl.limit(limits=1, user_api="blas")


def logits(
    w: Weights,
    obs_feat: FloatArray,
    obs_z: FloatArray,
    obs_mask: npt.NDArray[np.bool_],
    q_feat: FloatArray,
) -> F32:
    """Bar logits ``(B, n_query, n_bins)``; the arguments are those of the torch model."""
    with _one_blas_thread()():
        p = w.params
        f32 = np.float32
        xo = np.concatenate([obs_feat, obs_z[..., None]], axis=-1).astype(f32)
        x = np.concatenate(
            [_linear(xo, p, "embed_obs"), _linear(q_feat.astype(f32), p, "embed_query")], axis=1
        )
        b, t, d = x.shape
        n_obs = obs_feat.shape[1]
        h = int(w.config["n_heads"])
        key_bias = np.where(obs_mask, f32(0.0), f32(-1e9))[:, None, None, :]
        scale = f32(1.0 / np.sqrt(d // h))
        for i in range(w.n_layers):
            pre = f"blocks.{i}"
            qkv = _linear(_layer_norm(x, p, f"{pre}.ln1"), p, f"{pre}.qkv")
            q = qkv[..., :d].reshape(b, t, h, d // h).transpose(0, 2, 1, 3)
            k = qkv[:, :n_obs, d : 2 * d].reshape(b, n_obs, h, d // h).transpose(0, 2, 1, 3)
            v = qkv[:, :n_obs, 2 * d :].reshape(b, n_obs, h, d // h).transpose(0, 2, 1, 3)
            att = _softmax((q @ k.transpose(0, 1, 3, 2)) * scale + key_bias)
            y = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
            x = x + _linear(y, p, f"{pre}.proj")
            ff = _linear(
                _gelu(_linear(_layer_norm(x, p, f"{pre}.ln2"), p, f"{pre}.ff1")), p, f"{pre}.ff2"
            )
            x = x + ff
        return _linear(_layer_norm(x[:, n_obs:], p, "ln_f"), p, "head")


def bar_quantiles(lg: F32, borders: FloatArray, levels: FloatArray) -> FloatArray:
    """Quantiles ``(..., len(levels))`` of bar distributions with logits ``lg`` ``(..., n_bins)``.

    The density is uniform inside each bin, so the CDF is piecewise linear between borders and
    its inverse is exact.

    Example:
        >>> bar_quantiles(np.zeros((1, 4), np.float32), np.array([0.0, 1, 2, 3, 4]),
        ...               np.array([0.25, 0.5, 0.9])).round(6).tolist()
        [[1.0, 2.0, 3.6]]
    """
    p = _softmax(lg.astype(np.float32)).astype(np.float64)
    flat = p.reshape(-1, p.shape[-1])
    cdf = np.concatenate([np.zeros((flat.shape[0], 1)), np.cumsum(flat, axis=1)], axis=1)
    cdf[:, -1] = 1.0
    lv = np.asarray(levels, dtype=np.float64)
    # index of the bin holding each level, per row: count of interior CDF points below it
    j = np.clip((cdf[:, None, 1:-1] < lv[None, :, None]).sum(axis=2), 0, flat.shape[1] - 1)
    rows = np.arange(flat.shape[0])[:, None]
    lo, hi = cdf[rows, j], cdf[rows, j + 1]
    frac = np.clip((lv[None, :] - lo) / np.maximum(hi - lo, 1e-300), 0.0, 1.0)
    out: FloatArray = borders[j] + frac * (borders[j + 1] - borders[j])
    return out.reshape(*p.shape[:-1], lv.size)
