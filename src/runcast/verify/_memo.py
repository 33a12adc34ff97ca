"""The memorisation test of Proof-of-Training-Data (Choi, Shavit and Duvenaud 2023).

Models overfit what they were trained on, most of all what they saw last: at the checkpoint
right after a segment, the segment's records have a lower loss than records never trained on
(the committed held-out tail). ``segment_auc`` compares the two samples of losses by the
Mann-Whitney U statistic: the AUC is the probability that a segment record's loss is below a
tail record's (0.5: no sign that the segment's data was trained on), with its one-sided p-value.
The same test on each record's loss *drop* across the segment (loss at the checkpoint before
minus after) isolates what the segment itself did from how hard a record is. ``stouffer``
combines the segments' p-values into the run's; ``average_p`` does so without assuming them
independent (they are not: every segment is compared with samples of the same fixed tail).

The U statistic uses the normal approximation with the tie correction (the samples are tens of
records; scipy's exact small-sample path adds nothing here and costs a millisecond a call, which
a verifier pays at every checkpoint).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> auc, p = segment_auc(rng.normal(-1.0, 1, 64), rng.normal(0, 1, 128))
    >>> auc > 0.7 and p < 1e-6
    True
"""

from __future__ import annotations

import math

import numpy as np


def u_test(smaller: np.ndarray, larger: np.ndarray) -> tuple[float, float]:
    """AUC that a value of ``smaller`` is below one of ``larger`` (ties half), and the z score
    of that against 0.5 (positive: ``smaller`` is the smaller, as claimed)."""
    a = np.asarray(smaller, dtype=float)
    b = np.asarray(larger, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return 0.5, 0.0
    ranks, counts = _ranks(np.concatenate([a, b]))
    # U counts the pairs where b's value is below a's: the AUC is the share of the others
    u_b_below = float(ranks[:n].sum()) - n * (n + 1) / 2
    auc = 1.0 - u_b_below / (n * m)
    ties = float((counts**3 - counts).sum())
    var = n * m / 12 * ((n + m + 1) - ties / ((n + m) * (n + m - 1)))
    if var <= 0:
        return auc, 0.0
    return auc, (n * m / 2 - u_b_below) / math.sqrt(var)


def _ranks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks of ``x``, ties given their mean rank, and the size of each group of equal
    values (scipy's ``rankdata`` and ``np.unique`` in one sort: a verifier ranks at every
    checkpoint)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    counts = np.diff(np.r_[starts, len(x)])
    mean_rank = starts + (counts + 1) / 2.0
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(mean_rank, counts)
    return ranks, counts


def segment_auc(seg_loss: np.ndarray, tail_loss: np.ndarray) -> tuple[float, float]:
    """AUC that a segment record's loss is below a tail record's, and its one-sided p-value."""
    from scipy.stats import norm

    auc, z = u_test(seg_loss, tail_loss)
    return auc, float(norm.sf(z))


def stouffer(pvalues: list[float]) -> float:
    """The combined one-sided p-value of independent tests (Stouffer's z)."""
    from scipy.stats import norm

    if not pvalues:
        return 1.0
    z = norm.isf(np.clip(pvalues, 1e-300, 1 - 1e-16))
    return float(norm.sf(z.sum() / np.sqrt(len(z))))


def average_p(pvalues: list[float]) -> float:
    """Twice the mean of ``pvalues``: a p-value for "at least one null is false" that stays
    valid however the tests depend on each other (Ruschendorf 1982; Vovk and Wang 2020).

    The segments of one run share its held-out tail, so a tail that happens to be easier (or
    harder) than the training records tilts every segment's test the same way, and Stouffer's
    sum, which assumes independence, turns that one draw into a tiny p-value.

    Example:
        >>> round(average_p([0.02] * 15), 3), stouffer([0.02] * 15) < 1e-12
        (0.04, True)
    """
    if not pvalues:
        return 1.0
    return float(min(1.0, 2.0 * np.mean(pvalues)))
