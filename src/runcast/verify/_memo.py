"""The memorisation test of Proof-of-Training-Data (Choi, Shavit and Duvenaud 2023).

Models overfit what they were trained on, most of all what they saw last: at the checkpoint
right after a segment, the segment's records have a lower loss than records never trained on
(the committed held-out tail). ``segment_auc`` compares the two samples of losses by the
Mann-Whitney U statistic: the AUC is the probability that a segment record's loss is below a
tail record's (0.5: no sign that the segment's data was trained on), with its one-sided p-value.
``stouffer`` combines the segments' p-values into the run's.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> auc, p = segment_auc(rng.normal(-1.0, 1, 64), rng.normal(0, 1, 128))
    >>> auc > 0.7 and p < 1e-6
    True
"""

from __future__ import annotations

import numpy as np


def segment_auc(seg_loss: np.ndarray, tail_loss: np.ndarray) -> tuple[float, float]:
    """AUC that a segment record's loss is below a tail record's, and its one-sided p-value."""
    from scipy.stats import mannwhitneyu

    seg = np.asarray(seg_loss, dtype=float)
    tail = np.asarray(tail_loss, dtype=float)
    seg, tail = seg[np.isfinite(seg)], tail[np.isfinite(tail)]
    if len(seg) == 0 or len(tail) == 0:
        return 0.5, 1.0
    res = mannwhitneyu(seg, tail, alternative="less")
    # scipy's U counts the pairs where the segment's loss is the larger (ties half); the AUC is
    # the share of pairs where it is the smaller
    auc = 1.0 - float(res.statistic) / (len(seg) * len(tail))
    return auc, float(res.pvalue)


def stouffer(pvalues: list[float]) -> float:
    """The combined one-sided p-value of independent tests (Stouffer's z)."""
    from scipy.stats import norm

    if not pvalues:
        return 1.0
    z = norm.isf(np.clip(pvalues, 1e-300, 1 - 1e-16))
    return float(norm.sf(z.sum() / np.sqrt(len(z))))
