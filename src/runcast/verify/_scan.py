"""One pass over a proof's checkpoints: update sizes, the memorisation test, and suspicion.

For every segment (checkpoint j to j+1): its update size ``|W[j+1] - W[j]|``; the
memorisation test (Choi et al. 2023: the segment's last records against a fresh tail sample at
the checkpoint after it, :mod:`runcast.verify._memo`; over segments Stouffer's sum for the
evidence of memorisation, twice the mean p-value for the alarm); and signals that
choose which segments to replay (a signal never fails a proof, so pointing at an honest segment
costs a replay, not a false alarm):

- ``tail``: loss drops across the segment of a fixed sample of the held-out tail against a
  fixed sample of training records (the verifier draws both): a segment that trained on the
  tail lowers its losses more. Robust z of the U test's z plus that of Welch's t;
- ``linear``: interpolated weights give consecutive updates parallel to rounding;
- ``frozen``: the optimizer's state did not change while the weights did.

``suspicion``: ``frozen``, ``linear`` (``1 - |cos| < 1e-4``) and non-finite segments first,
then by ``tail`` (robust z over the run's segments). Why: bench/README.md, "Proof of training".

Example:
    >>> round(cosine(np.ones(3), -np.ones(3)), 6)
    -1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runcast.verify._memo import average_p, stouffer, u_test

# consecutive updates this close to parallel are flagged (honest minibatch updates are far
# from it; an interpolation is at rounding, 1e-7)
PARALLEL = 1e-4


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0


@dataclass
class ScanResult:
    """Per-segment numbers from the pass over the checkpoints."""

    norms: np.ndarray
    aucs: np.ndarray
    pvalues: np.ndarray
    suspicion: np.ndarray
    combined_p: float  # evidence that the segments' data was trained on
    reverse_p: float  # evidence that the held-out tail was (it should not have been)
    forward_records: int  # records through a forward pass (the verifier's cost)
    signals: dict[str, np.ndarray] = field(default_factory=dict)


def flat_state(state: dict[str, Any]) -> np.ndarray:
    """A model state's floating-point tensors as one float64 vector (name order)."""
    parts = [
        v.detach().cpu().double().numpy().ravel()
        for k, v in sorted(state.items())
        if hasattr(v, "is_floating_point") and v.is_floating_point()
    ]
    return np.concatenate(parts) if parts else np.zeros(0)


def state_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b|``, with equal entries (an inf in both, as in an attention mask) counting 0."""
    if a.shape != b.shape:
        return math.inf
    with np.errstate(invalid="ignore"):
        d = np.where(a == b, 0.0, a - b)
    return float(np.linalg.norm(d))


def optimizer_state(state: dict[str, Any]) -> np.ndarray | None:
    """An optimizer state dict's floating-point state tensors (not step counts) as one vector,
    or None if it keeps none."""
    per_param = state.get("state", {})
    parts = [
        v.detach().double().cpu().numpy().ravel()
        for key in sorted(per_param)
        for _, v in sorted(per_param[key].items())
        if hasattr(v, "is_floating_point") and v.is_floating_point() and v.dim() > 0
    ]
    return np.concatenate(parts) if parts else None


def robust_z(x: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 MAD)``; 0 where the run's values do not vary."""
    x = np.where(np.isfinite(x), x, np.nan)
    if np.all(np.isnan(x)):
        return np.zeros(len(x))
    med = float(np.nanmedian(x))
    mad = 1.4826 * float(np.nanmedian(np.abs(x - med)))
    if not mad > 0:
        mad = float(np.nanstd(x))
    z = (x - med) / mad if mad > 0 else np.zeros(len(x))
    return np.nan_to_num(z, nan=0.0)


def scan(
    task: Any,
    load: Any,
    steps: list[int],
    order: Any,
    rng: np.random.Generator,
    memo_records: int,
    memo_tail: int,
    drop_records: int,
) -> ScanResult:
    """Walk the checkpoints once (``load(j)`` gives checkpoint j as (a model holding its
    weights, its optimizer state dict))."""
    import torch

    n_seg = len(steps) - 1
    n_tail = min(memo_tail, len(order.tail))
    # the memorisation test: each segment's last records (what a model overfits most is what
    # it saw last, Choi et al. 2023) against a fresh sample of the tail (independent tests)
    samples = []
    for j in range(n_seg):
        recent: list[np.ndarray] = []
        step = steps[j + 1]
        while step > steps[j] and sum(len(b) for b in recent) < memo_records:
            step -= 1
            recent.append(order.batch(step))
        seen = np.concatenate(recent)[:memo_records]
        samples.append((seen, rng.choice(order.tail, size=n_tail, replace=False)))
    # the tail signal: the same records at every checkpoint, so each one's drop is paired
    fixed_tail = rng.choice(order.tail, size=min(drop_records, len(order.tail)), replace=False)
    fixed_train = rng.choice(order.train, size=min(drop_records, len(order.train)), replace=False)
    norms, aucs, pvals, rank_z, mean_z, linear, frozen = (np.zeros(n_seg) for _ in range(7))
    forwards = 0
    prev_w: np.ndarray = np.zeros(0)
    prev_update: np.ndarray | None = None
    prev_opt: np.ndarray | None = None
    prev_fixed: tuple[np.ndarray, np.ndarray] | None = None
    for k in range(n_seg + 1):
        model, opt_dict = load(k)
        w = flat_state(model.state_dict())
        sets = [fixed_tail, fixed_train] + (list(samples[k - 1]) if k > 0 else [])
        model.eval()
        with torch.no_grad():
            out = task.loss(model, task.batch(np.concatenate(sets)))
        losses = np.split(
            out.detach().double().cpu().numpy().ravel(), np.cumsum([len(s) for s in sets])[:-1]
        )
        forwards += sum(len(s) for s in sets)
        opt_state = optimizer_state(opt_dict)
        if k > 0:
            j = k - 1
            with np.errstate(invalid="ignore"):  # inf - inf (an attention mask): no change
                update = np.where(w == prev_w, 0.0, w - prev_w)
            norms[j] = state_distance(w, prev_w)
            aucs[j], z = u_test(losses[2], losses[3])
            pvals[j] = _sf(z)
            assert prev_fixed is not None
            # the tail's loss drops against the training records': z > 0 when the tail's fell
            # more, by ranks (the bulk of the records) and by means (the few with high losses,
            # which training on them lowers most); each z is made robust over the run below
            d_tail, d_train = prev_fixed[0] - losses[0], prev_fixed[1] - losses[1]
            rank_z[j] = u_test(-d_tail, -d_train)[1]
            mean_z[j] = _welch(d_tail, d_train)
            if prev_update is not None:
                c = 1.0 - abs(cosine(prev_update, update))
                score = -math.log10(max(c, 1e-16))
                linear[j] = max(linear[j], score)
                linear[j - 1] = max(linear[j - 1], score)
            prev_update = update
            frozen[j] = float(
                opt_state is not None
                and prev_opt is not None
                and norms[j] != 0
                and np.array_equal(opt_state, prev_opt)
            )
        prev_fixed = (losses[0], losses[1])
        prev_w, prev_opt = w, opt_state
    # weights that became NaN or infinite: first in both rankings (an honest run that
    # diverged replays to the same NaN and fails too: there is nothing to verify after it)
    broken = ~np.isfinite(norms)
    norms = np.where(broken, np.inf, norms)
    flagged = (frozen > 0) | (linear >= -math.log10(PARALLEL)) | broken
    # the tail signal alone ranks: on models that do not memorise (the digits families) the
    # memorisation AUC is noise that outranks a substituted segment (bench/README.md)
    tail = robust_z(rank_z) + robust_z(mean_z)
    z = tail
    # flagged segments first (ordered among themselves by z), then the rest by z
    suspicion = np.where(flagged, 1e6 + z, z)
    return ScanResult(
        norms,
        aucs,
        pvals,
        suspicion,
        stouffer(pvals.tolist()),
        # the alarm (the tail trained on) must hold its false-alarm rate: a combination valid
        # under the dependence the shared tail creates (Stouffer's read 1e-3 to 2e-2 on
        # honest digits runs; bench/README.md)
        average_p((1.0 - pvals).tolist()),
        forwards,
        {"tail": tail, "linear": linear, "frozen": frozen},
    )


def _welch(a: np.ndarray, b: np.ndarray) -> float:
    """Welch's t of ``mean(a) - mean(b)`` (0 when neither sample varies)."""
    se = math.sqrt(float(a.var()) / len(a) + float(b.var()) / len(b))
    return float(a.mean() - b.mean()) / se if se > 0 else 0.0


def _sf(z: float) -> float:
    """The standard normal's upper tail (scipy's ``norm.sf`` costs 0.3 ms a call)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))
