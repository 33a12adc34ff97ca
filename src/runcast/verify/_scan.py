"""One pass over a proof's checkpoints: update sizes, the memorisation test, and suspicion.

For every segment (checkpoint j to j+1) the pass measures

- the size of its weight update, ``|W[j+1] - W[j]|`` (Proof-of-Learning replays the largest);
- the memorisation test (Choi et al. 2023): the losses of a sample of the segment's records at
  the checkpoint right after it against the held-out tail's, by Mann-Whitney's U (see
  :mod:`runcast.verify._memo`); the run's p-value combines the segments (Stouffer);
- a suspicion score, to choose segments to replay: the optimizer's first-moment state at
  W[j+1] (SGD's momentum, Adam's ``exp_avg``) is an average of the last batches' gradients, so
  it points along the gradient of the committed last batch far more than along a held-out
  batch's, unless the segment was not trained as claimed (substituted data, fabricated
  weights). The score is ``cos(state, g_heldout) - cos(state, g_last)``; higher is more
  suspicious. Without such a state it falls back on the memorisation test's z.

Example:
    >>> round(cosine(np.ones(3), -np.ones(3)), 6)
    -1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from runcast.verify._memo import segment_auc, stouffer


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
    gradient_records: int  # records through a forward-backward pass (the verifier's cost)
    forward_records: int


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


def first_moment(model: Any, optimizer: Any) -> np.ndarray | None:
    """The optimizer's first-moment state in parameter order, or None if it keeps none."""
    parts = []
    for p in model.parameters():
        st = optimizer.state.get(p, {})
        m = st.get("momentum_buffer", st.get("exp_avg"))
        if m is None or tuple(m.shape) != tuple(p.shape):
            return None
        parts.append(m.detach().double().cpu().numpy().ravel())
    return np.concatenate(parts) if parts else None


def gradient(task: Any, model: Any, indices: np.ndarray) -> np.ndarray:
    model.zero_grad(set_to_none=False)
    task.loss(model, task.batch(indices)).mean().backward()
    return np.concatenate(
        [
            (p.grad if p.grad is not None else p.detach() * 0).detach().double().numpy().ravel()
            for p in model.parameters()
        ]
    )


def scan(
    task: Any,
    load: Any,
    steps: list[int],
    order: Any,
    rng: np.random.Generator,
    memo_records: int,
    memo_tail: int,
    last_batches: int = 2,
) -> ScanResult:
    """Walk the checkpoints once (``load(j)`` gives checkpoint j as (model, optimizer))."""
    import torch

    n_seg = len(steps) - 1
    n_tail = min(memo_tail, len(order.tail))
    # a held-out batch: the suspicion score's control (only the ranking of segments by the
    # score matters, so a control smaller than the last batches biases nothing)
    probe = order.tail[: order.batch_size]
    norms, aucs, pvals, susp = (np.zeros(n_seg) for _ in range(4))
    grads = forwards = 0
    model, _ = load(0)
    prev = flat_state(model.state_dict())
    for j in range(n_seg):
        model, optimizer = load(j + 1)
        cur = flat_state(model.state_dict())
        norms[j] = state_distance(cur, prev)
        prev = cur
        seen = np.concatenate([order.batch(s) for s in range(steps[j], steps[j + 1])])
        sample = rng.choice(seen, size=min(memo_records, len(seen)), replace=False)
        tail = rng.choice(order.tail, size=n_tail, replace=False)  # fresh: segments independent
        model.eval()
        with torch.no_grad():
            losses = task.loss(model, task.batch(np.concatenate([sample, tail])))
        losses = losses.detach().double().cpu().numpy().ravel()
        forwards += len(sample) + len(tail)
        aucs[j], pvals[j] = segment_auc(losses[: len(sample)], losses[len(sample) :])
        moment = first_moment(model, optimizer)
        if moment is not None:
            model.train()
            lo = max(steps[j], steps[j + 1] - last_batches)
            last = np.concatenate([order.batch(s) for s in range(lo, steps[j + 1])])
            g_last = gradient(task, model, last)
            g_probe = gradient(task, model, probe)
            grads += len(last) + len(probe)
            susp[j] = cosine(moment, g_probe) - cosine(moment, g_last)
        else:
            susp[j] = -_z(pvals[j])
    return ScanResult(
        norms,
        aucs,
        pvals,
        susp,
        stouffer(pvals.tolist()),
        stouffer((1.0 - pvals).tolist()),
        grads,
        forwards,
    )


def _z(p: float) -> float:
    from scipy.stats import norm

    return float(norm.isf(min(max(p, 1e-300), 1 - 1e-16)))
