"""Checking what ``run.log`` gets, cheaply, and turning buffered values into float arrays.

``run.log`` runs on the training thread every step, so it only *checks* values: Python numbers
pass at once, numpy scalars and 0-d torch tensors are kept as they are (``run.log`` itself turns
CPU tensors into floats on the spot: no sync there). Accelerator tensors become floats later, in
the writer thread, all of a batch in one copy per device: calling ``.item()`` per value would be
a CPU-GPU sync point on every step.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.errors import InvalidInputError

#: torch tensor classes seen so far: a set lookup on the hot path instead of a module test
TENSOR_TYPES: set[type] = set()
#: real (not complex) torch dtypes, filled the first time a tensor is logged
REAL_DTYPES: set[Any] = set()
#: the largest step the store holds (steps are int64); a larger one would fail the whole batch
MAX_STEP = 2**63 - 1


def is_tensor(value: object) -> bool:
    """True for a torch tensor, without importing torch (which may not be installed)."""
    kind = type(value)
    if kind in TENSOR_TYPES:
        return True
    if kind.__module__.startswith("torch") and hasattr(value, "numel"):
        TENSOR_TYPES.add(kind)
        return True
    return False


def _real_dtypes() -> set[Any]:
    if not REAL_DTYPES:
        import torch

        REAL_DTYPES.update(
            d
            for d in vars(torch).values()
            if isinstance(d, torch.dtype) and not d.is_complex and d != torch.complex32
        )
    return REAL_DTYPES


def check_step(step: object) -> int:
    """``step`` as a non-negative int, or a clear error naming it.

    Example:
        >>> check_step(3)
        3
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInputError(
            f"run.log got step={step!r} ({type(step).__name__}); the step must be a "
            "non-negative integer (the optimizer update count). Pass step=int(...)."
        )
    out = int(step)
    if out < 0:
        raise InvalidInputError(f"run.log got step={out}; steps cannot be negative.")
    if out > MAX_STEP:
        raise InvalidInputError(
            f"run.log got step={out}, beyond the largest step the store holds ({MAX_STEP}). "
            "Pass the optimizer update count, not a token or sample count scaled up."
        )
    return out


def _strided() -> Any:
    import torch

    return torch.strided


def check_value(key: object, value: Any, step: int) -> tuple[Any, bool]:
    """A loggable form of ``value`` and whether it is a torch tensor (the slow path of log).

    Example:
        >>> import numpy as np
        >>> check_value("loss", np.float32(0.5), 3)
        (np.float32(0.5), False)
    """
    if not isinstance(key, str) or not key:
        raise InvalidInputError(
            f"run.log got the key {key!r} at step {step}; metric keys must be non-empty strings."
        )
    if is_tensor(value):
        # ndim, numel, dtype and layout are metadata: no device sync here
        if value.is_meta or value.is_nested or value.layout != _strided():
            # no value to read (meta), or not one number (nested, sparse): converting it in
            # the writer thread would fail there, far from this call
            raise _not_a_number(key, value, step, f"a {value.layout} tensor on {value.device}")
        if value.ndim != 0 and value.numel() != 1:
            raise _not_a_number(key, value, step, f"a tensor of shape {tuple(value.shape)}")
        if value.dtype not in _real_dtypes():
            raise _not_a_number(key, value, step, f"a tensor of dtype {value.dtype}")
        return value, True
    if isinstance(value, numbers.Real | np.bool_):  # bool, numpy scalars, Fraction
        return value, False
    if isinstance(value, numbers.Complex):
        raise _not_a_number(key, value, step, "a complex number")
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "biuf":
        return float(value.reshape(())), False
    raise _not_a_number(key, value, step, f"a {type(value).__name__}")


def _not_a_number(key: str, value: object, step: int, what: str) -> InvalidInputError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return InvalidInputError(
        f"run.log got {key}={shown} at step {step}, which is {what}, not a number. Log Python "
        "numbers, numpy scalars or 0-d tensors; log float('nan') to mark a missing point. "
        "Nothing of this call was recorded; earlier points are safe."
    )


def tensors_to_floats(values: Sequence[Any]) -> list[float]:
    """Scalar tensors to floats: ``.item()`` on the CPU (no sync there), and one stacked
    device-to-host copy per device otherwise (one sync per flush, not one per value).

    Example:
        >>> import torch
        >>> tensors_to_floats([torch.tensor(1.5), torch.tensor([2], dtype=torch.int64)])
        [1.5, 2.0]
    """
    import torch

    out: list[float] = [0.0] * len(values)
    groups: dict[Any, list[int]] = {}
    for i, t in enumerate(values):
        groups.setdefault(t.device, []).append(i)
    for device, idx in groups.items():
        if device.type == "cpu":
            for i in idx:
                out[i] = _tensor_to_float(values[i])
            continue
        parts = [values[i] if values[i].ndim == 0 else values[i].reshape(()) for i in idx]
        try:
            # stack promotes mixed dtypes; detach drops autograd history before leaving the
            # device
            host = torch.stack(parts).detach().to("cpu", torch.float64)  # the one sync
        except Exception:  # one odd tensor must not cost the batch: convert one by one
            for i in idx:
                out[i] = _tensor_to_float(values[i])
            continue
        for i, v in zip(idx, host.tolist(), strict=True):
            out[i] = v
    return out


def _tensor_to_float(t: Any) -> float:
    """One tensor's value, or NaN (recorded as missing, counted) when it has none to give."""
    try:
        return float(t.detach().reshape(()).item())
    except Exception:
        return float("nan")


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return float("nan")


def rows_to_array(rows: Sequence[Sequence[Any]]) -> npt.NDArray[np.float64]:
    """A (n_rows, n_keys) float64 array of numbers (inf stays inf; the store makes it NaN).

    A value numpy cannot convert in bulk (an exotic number type that passed ``log``'s checks)
    is converted on its own, and becomes NaN (missing, counted) if even that fails: the
    writer thread must never die on one odd value and lose the batch.

    Example:
        >>> rows_to_array([(1, 2.5), (3, float("nan"))]).shape
        (2, 2)
    """
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), -1)
    except (TypeError, ValueError, OverflowError):
        return np.array([[_to_float(v) for v in row] for row in rows], dtype=np.float64)
