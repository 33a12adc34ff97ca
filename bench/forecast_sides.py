"""Which side of the band do the misses fall on? ``auto``'s final-value interval, held out.

Question: the 80% interval of a final value is judged two-sided (``forecast_lofo.py``); is it
also right on each side? A loss's trend rarely ends above where it is at the cut-off, so a
band symmetric around the median (in the positive warp's sense) may be too wide above and too
narrow below, and still hold 80% of the truths.

Protocol: ``forecast_lofo.py``'s records and its leave-one-family-out calibration and ``auto``
choice (each family judged by a calibration fitted, and a method chosen, without it). Each
(case, cut-off) is forecast again by the method ``auto`` picked for it, at its held-out
``tau``; the table counts the truths (the smoothed final value) above the 90% / 97.5% quantile
and below the 10% / 2.5% one, and how often the forecast's 90% quantile lies above the curve's
level at the cut-off (the mean of its last 5% of points) against how often the truth does.
Per kind of curve, per family, with the schedule (``auto`` known).

    python bench/forecast_lofo.py --per-family 10 --train 5 --score-only  # the records (cached)
    python bench/forecast_sides.py                                         # ~5 min
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import runcast.forecast._eval as ev
from runcast.forecast._eval import CUTOFFS, Case, evaluate_case
from runcast.forecast._lofo import pick, record_kind

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from forecast_lofo import corpus_cases, judge, score_all  # noqa: E402


@dataclass(frozen=True)
class Side:
    """Where one truth fell against one forecast's final-value quantiles."""

    family: str
    kind: str
    fraction: float
    method: str
    truth: float
    level: float  # the curve's level at the cut-off
    q: tuple[float, ...]  # the 2.5, 10, 50, 90, 97.5% quantiles of the final value


QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)


def side_of(case: Case, fraction: float, method: str, tau: float, kind: str) -> Side | None:
    """Forecast ``case`` from ``fraction`` with ``method`` at ``tau``, as the LOFO bench scores
    it, and keep the final value's quantiles (through the harness's own ``_score``)."""
    seen: list[Any] = []
    score = ev._score

    def keep(trend: Any, noisy: Any, truth: float, st: Any, vals: Any) -> Any:
        seen.append(np.quantile(trend.samples[:, -1], QUANTILES))
        return score(trend, noisy, truth, st, vals)

    ev._score = keep
    try:
        rec = evaluate_case(case, fraction, method, taus=np.array([tau]))
    finally:
        ev._score = score
    if rec.failed or not seen:
        return None
    full = case.curve
    cut = int(full.step[0] + fraction * (full.last_step - full.step[0]))
    obs = full.until(cut).value
    level = float(np.mean(obs[-max(3, obs.size // 20) :]))
    return Side(case.family, kind, fraction, method, rec.truth, level, tuple(seen[-1]))


def summary(rows: Sequence[Side]) -> str:
    """One table row's cells: counts of truths past each quantile, and above the level."""
    a = np.array([(s.truth, s.level, *s.q) for s in rows])
    truth, level, q025, q10, _, q90, q975 = a.T
    cells = [
        f"{np.mean(truth > q90):.0%}",
        f"{np.mean(truth < q10):.0%}",
        f"{np.mean(truth > q975):.1%}",
        f"{np.mean(truth < q025):.1%}",
        f"{np.mean(truth > level):.1%}",
        f"{np.mean(q90 > level):.0%}",
    ]
    return f"{len(a)} | " + " | ".join(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-family", type=int, default=10, help="as forecast_lofo.py")
    ap.add_argument("--train", type=int, default=5, help="as forecast_lofo.py")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    cases = corpus_cases(args.per_family, None, args.train)
    by_name = {c.name: c for c in cases}
    judged = judge(score_all(cases, False, lambda m: print(m, file=sys.stderr)))
    known = judged.known
    sides: list[Side] = []
    for r in judged.recs:
        if r.case not in judged.with_sched or r.family not in known or r.failed:
            continue
        kind = record_kind(r)
        if r.method != pick(known, r.family, r.fraction, kind):
            continue
        case = by_name[r.case]
        if r.method in ("pfn", "pfn+ensemble", "ensemble"):  # blind picks forecast blind
            case = Case(case.name, case.family, case.curve, None, case.group)
        method = "pfn" if r.method == "pfn+schedule" else r.method
        s = side_of(case, r.fraction, method, judged.tau_of(r), kind)
        if s is not None:
            sides.append(s)
    head = ("| curves | family | cut-off | n | above q90 | below q10 | above q97.5 | below q2.5 "
            "| truth above the level at the cut | q90 above it |")  # fmt: skip
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for kind in ("train", "eval"):
        for frac in CUTOFFS:
            part = [s for s in sides if s.kind == kind and s.fraction == frac]
            if part:
                print(f"| {kind} | **all** | {frac:.0%} | {summary(part)} |")
        per: dict[str, list[Side]] = defaultdict(list)
        for s in sides:
            if s.kind == kind and s.fraction in (0.2, 0.5):
                per[s.family].append(s)
        for fam, part in sorted(per.items()):
            print(f"| {kind} | {fam} | 20%, 50% | {summary(part)} |")


if __name__ == "__main__":
    main()
