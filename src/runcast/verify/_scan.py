"""One pass over a proof's checkpoints: update sizes, the memorisation test, and suspicion.

For every segment (checkpoint j to j+1) the pass measures

- the size of its weight update, ``|W[j+1] - W[j]|`` (Proof-of-Learning replays the largest);
- the memorisation test (Choi et al. 2023): the losses of the segment's last records (what a
  model overfits most is what it saw last) at the checkpoint right after it against a fresh
  sample of the held-out tail's, by Mann-Whitney's U (see :mod:`runcast.verify._memo`); the
  run's p-value combines the segments (Stouffer);
- signals that choose which segments to replay (none of them fails a proof: only a replay
  does, so a signal that points at an honest segment costs a replay, never a false alarm):

  - ``alignment``: the optimizer's first-moment state m at W[j+1] (SGD's momentum, Adam's
    ``exp_avg``) holds the last step's gradient with a fixed weight (1 for SGD's momentum,
    ``1 - beta1`` for Adam) and older gradients decayed. Two batches' gradients share the
    mean gradient and differ by their own noise, so ``s = m . d / |d|^2``, with ``d`` the
    committed last batch's gradient minus a held-out batch's, is that weight if the last step
    trained on the committed batch and near 0 if it trained on anything else (substituted
    data, weights not trained at all); the signal is ``-s``;
  - ``drop``: each record's loss drop across the segment (before minus after), the segment's
    records against the held-out sample's: a segment trained on other data (the tail, say)
    lowers the held-out losses more than its own (minus the U test's z);
  - ``linear``: consecutive updates of honest minibatch training point in different
    directions; weights interpolated between two points (a fabricated stretch, Fang et al.
    2023) give updates that are parallel to rounding: ``-log10(1 - cos(dW[j-1], dW[j]))``,
    the larger with either neighbour;
  - ``frozen``: the optimizer's state did not change across the segment while the weights did
    (no optimizer step was taken).

  ``suspicion`` ranks the segments: a segment flagged as ``frozen`` or ``linear`` beyond
  ``1 - cos < 1e-4`` first, then by the largest robust z score (median and MAD over the run's
  segments) of ``alignment``, ``drop`` and the memorisation AUC (low): an attack on a few
  segments makes them outliers of their own run, whatever the model. On models that neither
  memorise nor keep the last batch's trace in their optimizer state (the digits MLP in
  bench/README.md), a segment trained on other data of the same distribution stands out in
  none of these; only a replay (the verifier's random share) catches it.

Example:
    >>> round(cosine(np.ones(3), -np.ones(3)), 6)
    -1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runcast.verify._memo import stouffer, u_test

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
    gradient_records: int  # records through a forward-backward pass (the verifier's cost)
    forward_records: int
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


def difference(task: Any, model: Any, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The gradient of the mean loss on records ``first`` minus that on ``second`` (one
    backward pass over both)."""
    import torch

    model.zero_grad(set_to_none=False)
    losses = task.loss(model, task.batch(np.concatenate([first, second])))
    sign = torch.cat(
        [
            torch.full((len(first),), 1.0 / len(first)),
            torch.full((len(second),), -1.0 / len(second)),
        ]
    ).to(losses)
    (losses * sign).sum().backward()
    return np.concatenate(
        [
            (p.grad if p.grad is not None else p.detach() * 0).detach().double().numpy().ravel()
            for p in model.parameters()
        ]
    )


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
    last_batches: int = 1,
) -> ScanResult:
    """Walk the checkpoints once (``load(j)`` gives checkpoint j as (model, optimizer))."""
    import torch

    n_seg = len(steps) - 1
    n_tail = min(memo_tail, len(order.tail))
    # a held-out batch: the alignment signal's control (only the ranking of segments by the
    # signal matters, so a control smaller than the last batches biases nothing)
    probe = order.tail[: order.batch_size]
    norms, aucs, pvals, align, drop, linear, frozen = (np.zeros(n_seg) for _ in range(7))
    samples = []
    for j in range(n_seg):
        # the segment's last records (the model overfits most what it saw last, Choi et al.
        # 2023) and a fresh sample of the tail for each segment (the tests independent)
        recent: list[np.ndarray] = []
        step = steps[j + 1]
        while step > steps[j] and sum(len(b) for b in recent) < memo_records:
            step -= 1
            recent.append(order.batch(step))
        seen = np.concatenate(recent)[:memo_records]
        samples.append((seen, rng.choice(order.tail, size=n_tail, replace=False)))
    grads = forwards = 0
    prev_w: np.ndarray = np.zeros(0)
    prev_update: np.ndarray | None = None
    prev_moment: np.ndarray | None = None
    before: tuple[np.ndarray, np.ndarray] | None = None
    for k in range(n_seg + 1):
        model, optimizer = load(k)
        w = flat_state(model.state_dict())
        # losses at W[k]: after segment k-1 and before segment k, in one forward pass
        sets = ([samples[k - 1][0], samples[k - 1][1]] if k > 0 else []) + (
            [samples[k][0], samples[k][1]] if k < n_seg else []
        )
        model.eval()
        with torch.no_grad():
            out = task.loss(model, task.batch(np.concatenate(sets)))
        losses = np.split(
            out.detach().double().cpu().numpy().ravel(), np.cumsum([len(s) for s in sets])[:-1]
        )
        forwards += sum(len(s) for s in sets)
        moment = first_moment(model, optimizer)
        if k > 0:
            j = k - 1
            with np.errstate(invalid="ignore"):  # inf - inf (an attention mask): no change
                update = np.where(w == prev_w, 0.0, w - prev_w)
            norms[j] = state_distance(w, prev_w)
            seg_after, tail_after = losses[0], losses[1]
            aucs[j], z = u_test(seg_after, tail_after)
            pvals[j] = _sf(z)
            assert before is not None
            _, z_drop = u_test(-(before[0] - seg_after), -(before[1] - tail_after))
            drop[j] = -z_drop
            if prev_update is not None:
                c = 1.0 - abs(cosine(prev_update, update))
                score = -math.log10(max(c, 1e-16))
                linear[j] = max(linear[j], score)
                linear[j - 1] = max(linear[j - 1], score)
            prev_update = update
            frozen[j] = float(
                moment is not None
                and prev_moment is not None
                and norms[j] != 0
                and np.array_equal(moment, prev_moment)
            )
            if moment is not None:
                model.train()
                lo = max(steps[j], steps[k] - last_batches)
                last = np.concatenate([order.batch(s) for s in range(lo, steps[k])])
                d = difference(task, model, last, probe)
                grads += len(last) + len(probe)
                dd = float(d @ d)
                align[j] = -float(moment @ d) / dd if dd > 0 else np.nan
            else:
                align[j] = np.nan
        if k < n_seg:
            before = (losses[-2], losses[-1])
        prev_w, prev_moment = w, moment
    # weights that became NaN or infinite: first in both rankings (an honest run that
    # diverged replays to the same NaN and fails too: there is nothing to verify after it)
    broken = ~np.isfinite(norms)
    norms = np.where(broken, np.inf, norms)
    flagged = (frozen > 0) | (linear >= -math.log10(PARALLEL)) | broken
    z = np.maximum.reduce([robust_z(align), robust_z(drop), -robust_z(aucs)])
    # flagged segments first (ordered among themselves by z), then the rest by z
    suspicion = np.where(flagged, 1e6 + z, z)
    return ScanResult(
        norms,
        aucs,
        pvals,
        suspicion,
        stouffer(pvals.tolist()),
        stouffer((1.0 - pvals).tolist()),
        grads,
        forwards,
        {"alignment": align, "drop": drop, "linear": linear, "frozen": frozen},
    )


def _sf(z: float) -> float:
    """The standard normal's upper tail (scipy's ``norm.sf`` costs 0.3 ms a call)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))
