"""Leave-one-family-out judgement of everything the forecast fits or chooses on data.

A calibration fitted on some runs and scored on the same runs says little about a run of another
kind: the bands learn the development curves. Here every family of runs is judged only by what
was fitted and chosen without it:

- :func:`lofo_calibration` fits the calibration model (:func:`~runcast.forecast._eval.
  fit_calibration`) on the other families, and chooses its out-of-distribution coefficient
  (``Calibration.ood``) by an inner cross-validation over those other families only (four
  folds of families): each of them is scored by a model fitted without its fold (and without
  the held-out family), and the coefficient that puts their coverage closest to target is kept;
- :func:`lofo_choice` picks, per kind of curve (training loss or evaluation curve) and
  cut-off, the method ``auto`` uses from the other families' scores, so that the figure
  reported for a family is the method it would have been given.

The records are scored once at every ``tau`` of a grid (:mod:`runcast.forecast._eval`), so none
of this forecasts again: it refits small models on cached scores.

Example:
    >>> from runcast.forecast._eval import Record, TAU_GRID
    >>> def rec(fam, i):  # 80% coverage at tau ~1, the same in every family
    ...     cov = np.clip(TAU_GRID * 0.8, 0, 1)
    ...     return Record(f"{fam}{i}", fam, 0.5, "ensemble", 1.0, 0.01, np.zeros(41),
    ...                   np.zeros(41), cov, np.clip(TAU_GRID, 0, 1), observed=0.5,
    ...                   features={"log_frac": -0.69})
    >>> recs = [rec(f, i) for f in "abc" for i in range(3)]
    >>> taus, oods = lofo_calibration(recs, ood_grid=(0.0,))
    >>> sorted(oods["a"].items())
    [('ensemble', 0.0)]
    >>> round(taus[("a0", "ensemble", 0.5)], 1)
    1.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from runcast.forecast._calibrate import Calibration
from runcast.forecast._eval import CUTOFFS, Record, fit_calibration

#: the out-of-distribution coefficients tried (0: no widening out of the box)
OOD_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
TauKey = tuple[str, str, float]


def _family(r: Record) -> str:
    return r.group or r.family


def _miss(records: Sequence[Record], taus: Sequence[float]) -> float:
    """The squared coverage miss, averaged over families (each family counts once)."""
    by: dict[str, list[tuple[float, float]]] = {}
    for r, t in zip(records, taus, strict=True):
        by.setdefault(_family(r), []).append((r.cov80(t), r.cov95(t)))
    misses = []
    for cov in by.values():
        c80, c95 = np.mean(cov, axis=0)
        misses.append((c80 - 0.8) ** 2 + 4.0 * (c95 - 0.95) ** 2)
    return float(np.mean(misses)) if misses else 0.0


def choose_ood(
    records: Sequence[Record],
    cutoffs: Sequence[float] = CUTOFFS,
    ood_grid: Sequence[float] = OOD_GRID,
    *,
    warm: Calibration | None = None,
    n_folds: int = 4,
) -> dict[str, float]:
    """The OOD coefficient per method, chosen by cross-validation over families in ``records``.

    The families fall into ``n_folds`` folds; each family's records get the ``log tau`` and box
    excess of a model fitted without its fold; per method, the grid value whose resulting
    coverage (averaged per family) is nearest the 80% / 95% targets wins. With one family
    there is nothing held out: 0. ``warm``: the model fitted on all of ``records``, from which
    the refits start.
    """
    fams = sorted({_family(r) for r in records})
    if len(fams) < 2 or len(ood_grid) == 1:
        return {m: float(ood_grid[0]) for m in {r.method for r in records}}
    # families held out in folds (every family in exactly one): each is scored by a model
    # fitted without its fold; folds of one family each is leave-one-family-out
    folds = [fams[i::n_folds] for i in range(min(n_folds, len(fams)))]
    base: dict[int, tuple[float, float]] = {}
    for fold in folds:
        cal = fit_calibration([r for r in records if _family(r) not in fold], cutoffs, warm=warm)
        probe = Calibration(cal.models, cal.ranges, {m: 1.0 for m in cal.models})
        for i, r in enumerate(records):
            if _family(r) in fold and not r.failed:
                lt = cal.log_tau(r.method, r.features)
                base[i] = (lt, probe.log_tau(r.method, r.features) - lt)
    out: dict[str, float] = {}
    for m in sorted({r.method for r in records}):
        idx = [i for i, r in enumerate(records) if r.method == m and i in base]
        rs = [records[i] for i in idx]
        if not rs:
            continue

        def miss(c: float, idx: list[int] = idx, rs: list[Record] = rs) -> float:
            taus = [float(np.clip(np.exp(base[i][0] + c * base[i][1]), 0.02, 20.0)) for i in idx]
            return _miss(rs, taus)

        out[m] = float(min(ood_grid, key=miss))
    return out


def lofo_calibration(
    records: Sequence[Record],
    cutoffs: Sequence[float] = CUTOFFS,
    ood_grid: Sequence[float] = OOD_GRID,
) -> tuple[dict[TauKey, float], dict[str, dict[str, float]]]:
    """Every record's ``tau`` from a calibration fitted and tuned without its family.

    Returns ``(taus, oods)``: ``taus[(case, method, fraction)]``, and per held-out family the
    OOD coefficients its model was given (chosen on the other families, :func:`choose_ood`).
    """
    taus: dict[TauKey, float] = {}
    oods: dict[str, dict[str, float]] = {}
    for g in sorted({_family(r) for r in records}):
        train = [r for r in records if _family(r) != g]
        cal = fit_calibration(train, cutoffs)
        oods[g] = choose_ood(train, cutoffs, ood_grid, warm=cal)
        cal = Calibration(cal.models, cal.ranges, oods[g])
        for r in records:
            if _family(r) == g:
                taus[(r.case, r.method, r.fraction)] = cal.tau(r.method, r.observed, r.features)
    return taus, oods


#: the kinds of curve ``auto`` may choose for separately: a training loss (noisy, often every
#: step) and an evaluation curve (sparse, smooth) are forecast best by different methods
KINDS = ("train", "eval")


def record_kind(r: Record) -> str:
    """The kind of the record's curve (``features["train_curve"]``: 1 for a training loss)."""
    return "train" if r.features.get("train_curve", 0.0) > 0.5 else "eval"


ChoiceKey = tuple[str, float]  # (kind, cut-off)


def _crps_table(
    records: Sequence[Record], candidates: Sequence[str], tau_of: Callable[[Record], float]
) -> dict[tuple[str, str, str, float], float]:
    """Mean relative CRPS per (family, method, kind, cut-off); a failed forecast scores 1."""
    cells: dict[tuple[str, str, str, float], list[float]] = {}
    for r in records:
        if r.method in candidates:
            crps = 1.0 if r.failed else min(r.crps(tau_of(r)), 1.0)
            key = (_family(r), r.method, record_kind(r), r.fraction)
            cells.setdefault(key, []).append(crps)
    return {k: float(np.mean(v)) for k, v in cells.items()}


def _best(
    table: Mapping[tuple[str, str, str, float], float],
    candidates: Sequence[str],
    kind: str,
    fraction: float,
    without: str | None,
) -> str:
    """The candidate of lowest mean CRPS over families (each counts once) for this kind and
    cut-off; a candidate missing on some family's records is compared on the families where
    every candidate was scored."""
    cells = [(f, m) for (f, m, k, ff) in table if k == kind and ff == fraction and f != without]
    fams = {f for f, _ in cells}
    common = [f for f in fams if all((f, m) in cells for m in candidates)]

    def score(m: str) -> float:
        vals = [table[(f, m, kind, fraction)] for f in common]
        return float(np.mean(vals)) if vals else np.inf

    return min(candidates, key=score)


def _kinds_and_fractions(records: Sequence[Record]) -> list[ChoiceKey]:
    return sorted({(record_kind(r), r.fraction) for r in records})


def lofo_choice(
    records: Sequence[Record],
    candidates: Sequence[str],
    tau_of: Callable[[Record], float],
) -> dict[str, dict[ChoiceKey, str]]:
    """Per held-out family, kind of curve and cut-off: the candidate with the best CRPS on the
    other families.

    The score is the mean relative CRPS of the final value per family, averaged over families
    (each family counts once, however many runs it has), at each record's own LOFO ``tau``;
    a method that failed on a record scores that record as its CRPS would be 1 (100% off).
    """
    table = _crps_table(records, candidates, tau_of)
    keys = _kinds_and_fractions(records)
    return {
        g: {(k, fr): _best(table, candidates, k, fr, g) for k, fr in keys}
        for g in sorted({_family(r) for r in records})
    }


def best_choice(
    records: Sequence[Record],
    candidates: Sequence[str],
    tau_of: Callable[[Record], float],
) -> dict[ChoiceKey, str]:
    """Per kind and cut-off, the candidate with the best CRPS over every family (what ships)."""
    table = _crps_table(records, candidates, tau_of)
    keys = _kinds_and_fractions(records)
    return {(k, fr): _best(table, candidates, k, fr, None) for k, fr in keys}


def pick(
    choice: Mapping[str, Mapping[ChoiceKey, str]],
    family: str,
    fraction: float,
    kind: str = "sparse",
) -> str:
    """The method chosen for ``family``'s curves of ``kind`` at ``fraction`` (the nearest
    cut-off's choice for that kind, else for any kind)."""
    per = choice[family]
    keys = [k for k in per if k[0] == kind] or list(per)
    return per[min(keys, key=lambda k: abs(k[1] - fraction))]
