"""The checkpoint file: a model's and an optimizer's state in one safetensors file.

A verifier reads every checkpoint of a proof, and a proof is untrusted input: pickles cannot
be loaded safely, and torch's safe (``weights_only``) unpickler costs milliseconds a file in
pure Python, more than a small model's training step. safetensors holds only named tensors
and a string-to-string header, parsed without executing anything; the optimizer's state
tensors are stored as ``optim.<param>.<name>`` and everything else it holds (``param_groups``,
non-tensor state) as JSON in the header. Proofs written before this format (torch pickles)
are still read, with ``weights_only=True``.

Example:
    >>> import torch
    >>> m = torch.nn.Linear(2, 1); opt = torch.optim.Adam(m.parameters())
    >>> m(torch.ones(1, 2)).sum().backward(); opt.step()
    >>> back = load_checkpoint(dump_checkpoint(
    ...     {"model": m.state_dict(), "optimizer": opt.state_dict(), "step": 1}))
    >>> back["step"], sorted(back["optimizer"]["state"][0])
    (1, ['exp_avg', 'exp_avg_sq', 'step'])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runcast._optional import require

FORMAT = "runcast-checkpoint-1"


def _is_tensor(v: Any) -> bool:
    return hasattr(v, "detach") and hasattr(v, "contiguous")


def dump_checkpoint(payload: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file for ``{"model": ..., "optimizer": ..., "step": n}``."""
    st = require("safetensors.torch", extra="torch", purpose="to write proof checkpoints")
    tensors: dict[str, Any] = {}
    for k, v in payload["model"].items():
        if not _is_tensor(v):
            raise TypeError(f"the model state's {k!r} is a {type(v).__name__}, not a tensor")
        tensors["model." + k] = v.detach().contiguous()
    optimizer = payload["optimizer"]
    other: dict[str, dict[str, Any]] = {}
    for pid, state in optimizer.get("state", {}).items():
        for name, v in state.items():
            if _is_tensor(v):
                tensors[f"optim.{pid}.{name}"] = v.detach().contiguous()
            else:
                other.setdefault(str(pid), {})[name] = v
    header = {
        "format": FORMAT,
        "step": str(int(payload["step"])),
        "param_groups": json.dumps(optimizer.get("param_groups", [])),
        "state_other": json.dumps(other),
        "state_ids": json.dumps([str(pid) for pid in optimizer.get("state", {})]),
    }
    # one metadata entry: safetensors writes several in an order that varies between
    # processes, and a checkpoint's bytes must not (a resumed run's match the uninterrupted)
    metadata = {"runcast": json.dumps(header, sort_keys=True)}
    arrays = _numpy_views(tensors)
    if arrays is not None:
        # the same bytes as safetensors.torch.save, in 40% of its time: the writer thread
        # holds the GIL for less, and the training thread waits on it less
        sn = require("safetensors.numpy", extra="torch", purpose="to write proof checkpoints")
        data: bytes = sn.save(arrays, metadata=metadata)
        return data
    data = st.save(tensors, metadata=metadata)
    return data


def _numpy_views(tensors: dict[str, Any]) -> dict[str, Any] | None:
    """The tensors as numpy arrays sharing their memory, or None when one cannot be (a dtype
    numpy lacks, as bfloat16, or a tensor off the CPU): those take safetensors' torch path."""
    out = {}
    for k, v in tensors.items():
        try:
            out[k] = v.numpy()
        except (TypeError, RuntimeError):
            return None
    return out


def load_checkpoint(source: bytes | str | Path) -> dict[str, Any]:
    """A checkpoint as ``{"model": state dict, "optimizer": state dict, "step": n}``.

    Raises ValueError (or the reader's own error) for a file that is not a checkpoint.
    """
    st = require("safetensors.torch", extra="torch", purpose="to read proof checkpoints")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        tensors = st.load(data)
    except Exception:
        return _legacy(data)
    header = _header(data)
    if header.get("format") != FORMAT:
        raise ValueError(f"not a runcast checkpoint (format {header.get('format')!r})")
    model = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    ids = json.loads(header["state_ids"])
    other = json.loads(header["state_other"])
    state: dict[int, dict[str, Any]] = {int(pid): dict(other.get(pid, {})) for pid in ids}
    for k, v in tensors.items():
        if k.startswith("optim."):
            pid, name = k[len("optim.") :].split(".", 1)
            state.setdefault(int(pid), {})[name] = v
    groups = json.loads(header["param_groups"])
    return {
        "model": model,
        "optimizer": {"state": state, "param_groups": groups},
        "step": int(header["step"]),
    }


def _header(data: bytes) -> dict[str, str]:
    """The safetensors header's ``__metadata__`` (8 bytes of length, then JSON)."""
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    header = json.loads(meta.get("runcast", "{}")) if isinstance(meta, dict) else None
    if not isinstance(header, dict):
        raise ValueError("the checkpoint's header holds no runcast metadata")
    return header


def _legacy(data: bytes) -> dict[str, Any]:
    """A checkpoint written as a torch pickle (proof format 1), loaded without executing it."""
    import io

    import torch

    state = torch.load(io.BytesIO(data), weights_only=True)
    if not isinstance(state, dict):
        raise ValueError("the checkpoint holds no state dict")
    return state
