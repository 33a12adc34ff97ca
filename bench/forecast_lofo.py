"""Leave-one-family-out forecast evaluation on the corpus (``forecast_cutoff.py --corpus``).

Question: does ``runcast.forecast`` keep its promise (an 80% band that holds the truth about 80%
of the time) on families of runs it was never calibrated or tuned on?

Protocol. Every run of every corpus family is cut at 10/20/30/50/70% of its steps, and each
method forecasts the rest (the validation loss for generated runs, the recorded loss for the
public curves). Each family is then scored only by what was fitted and chosen without it:
the calibration model (refitted on the other families), its out-of-distribution coefficient
(chosen by an inner leave-one-family-out over the other families), and the method ``auto``
picks at each cut-off (the best CRPS on the other families). Reported per family and pooled:
median final-value error, CRPS, coverage of the 80%/95% bands over the rest of the curve and of
the final value, ms per forecast, and the ratio of ``auto``'s error to the best baseline's
(last value, least-squares power law).

    python bench/forecast_lofo.py                    # every family, cached in bench/_cache
    python bench/forecast_lofo.py --per-family 8     # at most 8 runs per family
    python bench/forecast_lofo.py --write-calibration  # ship the model fitted on every family
    python bench/forecast_lofo.py --pfn-weights W.npz  # judge retrained PFN weights (own cache)
    python bench/forecast_lofo.py --pfn-folds DIR      # PFN fine-tuned without each family

With ``--pfn-weights`` every method that uses the PFN is scored again with those weights, into a
cache of its own (``_cache/forecast_lofo-<weights' name>.pkl``, started from the main cache's
records of the other methods); the shipped calibration is not written from it. To ship the
weights, copy them to ``src/runcast/forecast/pfn/weights.npz`` and run with ``--cache`` that file
and ``--write-calibration``.
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import runcast
from runcast.forecast._calibrate import TABLE_PATH, Calibration, default_calibration, turned
from runcast.forecast._eval import CUTOFFS, Case, Record, evaluate_case, fit_calibration
from runcast.forecast._lofo import (
    KINDS,
    best_choice,
    choose_ood,
    lofo_calibration,
    lofo_choice,
    pick,
    record_kind,
)
from runcast.forecast._prep import curve_kind, prepare
from runcast.forecast.pfn._infer import use_weights

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CACHE = HERE / "_cache" / "forecast_lofo.pkl"
WITH_SCHEDULE = ("law", "law+pfn", "pfn+schedule")
BLIND = ("pfn+ensemble", "ensemble", "pfn")
#: with the schedule known, auto may still choose a blind method (it then ignores the schedule)
KNOWN = WITH_SCHEDULE + BLIND
BASELINES = ("powerlaw", "last")
#: a forecast on a sparse validation curve needs a few points before the cut-off
MIN_OBSERVED = 6


def corpus_cases(
    per_family: int | None, families: Sequence[str] | None = None, train: int = 0
) -> list[Case]:
    """One case per corpus run: its validation loss (or its loss), with the run's schedule.

    ``train``: also up to that many runs per generated family as per-step training-loss cases
    (what the demo, the HF Trainer and most users forecast: a dense, noisy curve), in the same
    family, so a held-out family is held out with both kinds of its curves.
    """
    from corpus import load

    out: list[Case] = []
    for fam in load.families():
        if families and fam not in families:
            continue
        runs = [r for r in load.runs(family=fam) if not r.facts.get("diverged")]
        runs.sort(key=lambda r: r.id)
        if per_family and len(runs) > per_family:
            idx = np.unique(np.linspace(0, len(runs) - 1, per_family).round().astype(int))
            runs = [runs[i] for i in idx]
        for r in runs:
            metric = next((m for m in ("val_loss", "loss", "train_loss") if m in r.metrics), None)
            if metric is None:
                continue
            try:
                # the schedule travels in the case, not in the curve: a blind method given a
                # curve that carries its schedule would see it (forecast() reads curve.schedule)
                curve = r.curve(metric, schedule=False)
                sched = r.schedule
            except runcast.RuncastError:
                continue
            curve = curve.finite()
            if len(curve) < 3 * MIN_OBSERVED or not np.all(curve.value > 0):
                continue
            out.append(Case(f"{fam}/{r.id}", fam, curve, sched, group=fam))
        dense = [r for r in runs if r.source == "generated" and "val_loss" in r.metrics]
        if train and dense:
            idx = np.unique(np.linspace(0, len(dense) - 1, min(train, len(dense))).round())
            for r in (dense[int(i)] for i in idx):
                curve = r.curve("train_loss", schedule=False).finite()
                if len(curve) >= 3 * MIN_OBSERVED and np.all(curve.value > 0):
                    out.append(Case(f"{fam}/{r.id}:train", fam, curve, r.schedule, group=fam))
    return out


#: the methods whose records depend on the PFN's weights
USES_PFN = ("law+pfn", "pfn+schedule", "pfn+ensemble", "pfn")


def fold_weights(folds_dir: Path) -> Callable[[str], Path]:
    """The weights that never saw a family: ``folds_dir`` as ``bench/pfn_finetune.py`` wrote it."""
    folds = json.loads((folds_dir / "folds.json").read_text())

    def of(family: str) -> Path:
        if family not in folds:
            raise SystemExit(f"{folds_dir}/folds.json has no fold for family {family!r}")
        path = (folds_dir / f"fold{folds[family]}.npz").resolve()
        if not path.exists():
            raise SystemExit(f"{path} is missing: run bench/pfn_finetune.py --out {folds_dir}")
        return path

    return of


def score_all(cases: list[Case], fresh: bool, log: Callable[[str], None],
              cache_path: Path = CACHE,
              weights_of: Callable[[str], Path] | None = None) -> list[Record]:  # fmt: skip
    cache: dict[tuple[str, float, str], Record] = {}
    if cache_path.exists() and not fresh:
        cache = pickle.loads(cache_path.read_bytes())
    elif cache_path != CACHE and CACHE.exists() and not fresh:
        # another PFN's cache starts from the main one's records of the methods without it
        cache = {k: r for k, r in pickle.loads(CACHE.read_bytes()).items()
                 if k[2] not in USES_PFN}  # fmt: skip
    recs: list[Record] = []
    t0 = time.time()
    for i, case in enumerate(cases):
        if weights_of is not None:
            use_weights(weights_of(case.family))
        blind = Case(case.name, case.family, case.curve, None, case.group)
        todo = [(case, m, m if m != "pfn" else "pfn+schedule") for m in ("law", "law+pfn", "pfn")]
        todo += [(blind, m, m) for m in (*BLIND, *BASELINES)]
        if case.schedule is None:
            todo = [t for t in todo if t[0] is blind]
        for frac in CUTOFFS:
            for c, m, label in todo:
                key = (case.name, frac, label)
                if key not in cache:
                    cache[key] = evaluate_case(c, frac, m)
                    cache[key].method = label
                recs.append(cache[key])
        _add_turned(case, [r for r in recs[-len(CUTOFFS) * len(todo):]])
        if (i + 1) % 10 == 0 or i + 1 == len(cases):
            cache_path.parent.mkdir(exist_ok=True)
            cache_path.write_bytes(pickle.dumps(cache))
            log(f"[{i + 1}/{len(cases)}] {case.name} {time.time() - t0:.0f}s")
    return recs


def _add_turned(case: Case, recs: list[Record]) -> None:
    """Give records scored before the ``turned`` feature existed the value forecast() computes,
    and every record its kind (``train_curve``: what ``auto``'s choice is keyed by).

    Both are functions of the observed part only (``_calibrate.turned`` of the prepared curve,
    ``_prep.curve_kind`` of the curve), so adding them afterwards is what the forecast would have
    seen; no forecast is rerun.
    """
    full = case.curve
    until, first = full.last_step, int(full.step[0])
    for r in recs:
        if r.failed:
            continue
        cut = int(first + r.fraction * (until - first))
        seen = full.until(cut)
        # what auto's choice is keyed by (a feature the calibration model does not use)
        r.features["train_curve"] = float(curve_kind(seen) == "train")
        r.features.pop("dense", None)
        if "turned" in r.features:
            continue
        try:
            r.features["turned"] = turned(prepare(seen, until).y)
        except runcast.RuncastError as err:
            # scored before forecast() required 6 points: today it is refused
            r.failed = f"{type(err).__name__}: {err}"


def with_fallback(recs: list[Record]) -> list[Record]:
    """Score ``law`` as ``forecast()`` runs it: where the law refuses (a fit that takes a
    positive loss below 0), auto answers with the PFN given the schedule, so that case's
    ``law`` record is the ``pfn+schedule`` one (relabelled). Other failures stay failures."""
    by = {(r.case, r.fraction, r.method): r for r in recs}
    out = []
    for r in recs:
        alt = by.get((r.case, r.fraction, "pfn+schedule"))
        if r.method == "law" and r.failed.startswith("FitError") and alt and not alt.failed:
            r = copy.copy(alt)
            r.method = "law"
            r.calibrated_as = "pfn+schedule"
        out.append(r)
    return out


@dataclass
class Judged:
    """The records as ``forecast()`` answers them, each family's calibration and ``auto``'s
    choice made without it (:func:`judge`)."""

    recs: list[Record]
    taus: dict[tuple[str, str, float], float]
    oods: dict[str, dict[str, float]]
    with_sched: set[str]  # the runs with a schedule: judged with it
    known: dict[str, dict[tuple[str, float], str]]  # auto's choice with the schedule, per family
    blind: dict[str, dict[tuple[str, float], str]]  # and without it

    def tau_of(self, r: Record) -> float:
        # a law record answered by the PFN fallback is calibrated as the PFN
        return self.taus.get((r.case, r.calibration_key, r.fraction), 1.0)


def judge(scored: list[Record]) -> Judged:
    """Leave-one-family-out: every record's calibration, and ``auto``'s choice per family."""
    taus, oods = lofo_calibration([r for r in scored if r.method not in BASELINES])
    recs = with_fallback(scored)
    # a run with a schedule is judged with it: the blind methods compete on the same runs
    with_sched = {r.case for r in recs if r.method in WITH_SCHEDULE}
    j = Judged(recs, taus, oods, with_sched, {}, {})
    j.known = lofo_choice([r for r in recs if r.method in KNOWN and r.case in with_sched],
                          KNOWN, j.tau_of)  # fmt: skip
    j.blind = lofo_choice([r for r in recs if r.method in BLIND], BLIND, j.tau_of)
    return j


def _fmt(xs: Sequence[float], pct: int = 0) -> str:
    return "/".join(f"{100 * x:.{pct}f}" for x in xs)


def family_table(recs: list[Record], tau_of: Callable[[Record], float], label: str,
                 auto_of: Callable[[Record], bool]) -> str:
    """Per family: auto's error, coverage (curve and final) by cut-off, ratio to best baseline."""
    fams = sorted({r.family for r in recs})
    lines = [
        f"\n#### `auto` {label}, per family (each judged by models fitted and chosen without it)\n",
        "| family | runs | median err % (10/20/30/50/70) | 80% cov | 95% cov | 80% cov final "
        "| 95% cov final | err / best baseline (20%, 50%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fam in fams:
        fr = [r for r in recs if r.family == fam]
        auto = [r for r in fr if auto_of(r) and not r.failed]
        if not auto:
            continue
        cells = defaultdict(list)
        for frac in CUTOFFS:
            a = [r for r in auto if r.fraction == frac]
            cells["err"].append(np.median([r.err(tau_of(r)) for r in a]) if a else np.nan)
            for k in ("cov80", "cov95", "cov80_final", "cov95_final"):
                cells[k].append(np.mean([getattr(r, k)(tau_of(r)) for r in a]) if a else np.nan)
        ratios = []
        for frac in (0.2, 0.5):
            a = [r.err(tau_of(r)) for r in auto if r.fraction == frac]
            base = {b: [r.err(1.0) for r in fr
                        if r.method == b and r.fraction == frac and not r.failed]
                    for b in BASELINES}
            best = min(float(np.median(v)) if v else np.inf for v in base.values())
            ratios.append(np.median(a) / best if a and best > 0 else np.nan)
        n = len({r.case for r in auto})
        lines.append(
            f"| {fam} | {n} | {_fmt(cells['err'], 2)} | {_fmt(cells['cov80'])} | "
            f"{_fmt(cells['cov95'])} | {_fmt(cells['cov80_final'])} | "
            f"{_fmt(cells['cov95_final'])} | {ratios[0]:.2f}, {ratios[1]:.2f} |"
        )
    return "\n".join(lines)


def pooled_table(recs: list[Record], tau_of: Callable[[Record], float],
                 rows: list[tuple[str, Callable[[Record], bool]]]) -> str:
    """Pooled over families (each family weighs the same), by cut-off, one row per method."""
    lines = [
        "| method | median err % (10/20/30/50/70) | CRPS/|y| | 80% cov | 95% cov | "
        "80% cov final | 95% cov final | worst family 80% / 95% | ms (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, sel in rows:
        rs = [r for r in recs if sel(r) and not r.failed]
        if not rs:
            continue
        err, crps, c80, c95, f80, f95 = [], [], [], [], [], []
        for frac in CUTOFFS:
            a = [r for r in rs if r.fraction == frac]
            err.append(float(np.median([r.err(tau_of(r)) for r in a])) if a else np.nan)
            by = defaultdict(list)
            for r in a:
                t = tau_of(r)
                by[r.family].append((min(r.crps(t), 1.0), r.cov80(t), r.cov95(t),
                                     r.cov80_final(t), r.cov95_final(t)))
            fam_means = np.array([np.mean(v, axis=0) for v in by.values()])
            crps.append(float(np.mean(fam_means[:, 0])))
            c80.append(float(np.mean(fam_means[:, 1])))
            c95.append(float(np.mean(fam_means[:, 2])))
            f80.append(float(np.mean(fam_means[:, 3])))
            f95.append(float(np.mean(fam_means[:, 4])))
        by_fam = defaultdict(list)
        for r in rs:
            by_fam[r.family].append((r.cov80(tau_of(r)), r.cov95(tau_of(r))))
        fm = {f: np.mean(v, axis=0) for f, v in by_fam.items()}
        worst80 = min(fm.values(), key=lambda c: -abs(c[0] - 0.8))[0]
        worst95 = min(fm.values(), key=lambda c: -abs(c[1] - 0.95))[1]
        ms = 1e3 * float(np.median([r.seconds for r in rs]))
        lines.append(
            f"| {label} | {_fmt(err, 2)} | {'/'.join(f'{c:.3f}' for c in crps)} | {_fmt(c80)} | "
            f"{_fmt(c95)} | {_fmt(f80)} | {_fmt(f95)} | {100 * worst80:.0f} / {100 * worst95:.0f}"
            f" | {ms:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-family", type=int, default=None)
    ap.add_argument("--family", action="append", default=None)
    ap.add_argument("--train", type=int, default=0,
                    help="also this many per-step training-loss cases per generated family")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--write-calibration", action="store_true")
    ap.add_argument("--pfn-weights", type=Path, default=None,
                    help="score the PFN's methods with these weights (a cache of their own)")
    ap.add_argument("--cache", type=Path, default=None, help="the records' cache file")
    ap.add_argument("--pfn-folds", type=Path, default=None,
                    help="score each family's PFN methods with the fold model that never saw it "
                    "(a directory from bench/pfn_finetune.py; a cache of its own)")
    ap.add_argument("--score-only", action="store_true", help="score and cache, print nothing")
    args = ap.parse_args()
    cache_path = args.cache or CACHE
    weights_of = None
    if args.pfn_folds is not None:
        if args.write_calibration or args.pfn_weights is not None:
            ap.error("--pfn-folds judges fold models: it takes neither --write-calibration nor "
                     "--pfn-weights")
        weights_of = fold_weights(args.pfn_folds)
        cache_path = args.cache or CACHE.with_name(f"forecast_lofo-{args.pfn_folds.name}.pkl")
    if args.pfn_weights is not None:
        if args.write_calibration:
            ap.error("--write-calibration ships a calibration for the package's own PFN weights: "
                     "copy the weights into the package and run with --cache instead")
        use_weights(args.pfn_weights)
        cache_path = args.cache or CACHE.with_name(f"forecast_lofo-{args.pfn_weights.stem}.pkl")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.time()
    cases = corpus_cases(args.per_family, args.family, args.train)
    fams = sorted({c.family for c in cases})
    log(f"{len(cases)} cases in {len(fams)} families")
    scored = score_all(cases, args.fresh, log, cache_path, weights_of)
    if args.score_only:
        return
    calibrated = [r for r in scored if r.method not in BASELINES]
    judged = judge(scored)
    recs, tau_of, oods = judged.recs, judged.tau_of, judged.oods
    with_sched, known, blind = judged.with_sched, judged.known, judged.blind

    def auto_known(r: Record) -> bool:
        return (r.family in known and r.case in with_sched
                and r.method == pick(known, r.family, r.fraction, record_kind(r)))  # fmt: skip

    def auto_blind(r: Record) -> bool:
        return r.family in blind and r.method == pick(blind, r.family, r.fraction, record_kind(r))

    print(f"# forecast_lofo: {len(cases)} runs in {len(fams)} families x cut-offs {CUTOFFS}\n")
    print("Families: " + ", ".join(f"{f} ({sum(c.family == f for c in cases)})" for f in fams))
    rows: list[tuple[str, Callable[[Record], bool]]] = [
        ("`auto`, schedule known (LOFO choice)", auto_known),
        ("`auto`, blind (LOFO choice)", auto_blind),
    ]
    rows += [(f"`{m}`", lambda r, m=m: r.method == m) for m in (*WITH_SCHEDULE, *BLIND)]
    rows += [(f"`{m}` (baseline)", lambda r, m=m: r.method == m) for m in BASELINES]
    print("\n### Pooled (each family weighs the same)\n")
    print(pooled_table(recs, tau_of, rows))
    for kind, label in (("train", "training-loss curves (per step)"),
                        ("eval", "evaluation curves")):
        part = [r for r in recs if record_kind(r) == kind]
        print(f"\n#### Only the {label} (each family weighs the same)\n")
        print(pooled_table(part, tau_of, rows[:2] + rows[2:5] + rows[-2:]))
    # the calibration shipped before this run (read before --write-calibration replaces it),
    # on the same records: fitted on the development curves, it is judged here on the corpus
    old = default_calibration()

    def old_tau(r: Record) -> float:
        return old.tau(r.calibration_key, r.observed, r.features)

    print("\nThe same methods under the calibration in place when this run started "
          "(`_calibration.json` before `--write-calibration`; every family it was fitted on is "
          "in-sample for it):\n")
    print(pooled_table(recs, old_tau, [(label, sel) for label, sel in rows
                                       if label.startswith("`law`") or label.startswith("`pfn")]))
    print(family_table(recs, tau_of, "with the schedule", auto_known))
    print(family_table(recs, tau_of, "without the schedule", auto_blind))
    print("\n#### What `auto` picked per cut-off, chosen without each family (counts over families)\n")
    for name, ch in (("schedule known", known), ("blind", blind)):
        for kind in KINDS:
            for frac in CUTOFFS:
                picks = defaultdict(int)
                for g in ch:
                    picks[pick(ch, g, frac, kind)] += 1
                print(f"- {name}, {kind} @ {frac:.0%}: "
                      + ", ".join(f"{m} x{n}" for m, n in picks.items()))
    ood_used = defaultdict(list)
    for per in oods.values():
        for m, c in per.items():
            ood_used[m].append(c)
    print("\nOOD coefficient chosen per held-out family (median, range): " + "; ".join(
        f"{m} {np.median(v):g} ({min(v):g}-{max(v):g})" for m, v in sorted(ood_used.items())))
    fails = [r for r in recs if r.failed]
    print(f"\n{len(fails)} of {len(recs)} forecasts failed"
          + (f", e.g. {fails[0].case} {fails[0].method}: {fails[0].failed[:160]}" if fails else ""))
    print(f"\ntotal {time.time() - t0:.0f}s")
    if args.write_calibration:
        # what ships: fitted and chosen on every family (the tables above judged each family
        # by the same procedure run without it)
        fitted = fit_calibration(calibrated)
        ood = choose_ood(calibrated, warm=fitted)
        keep = [k for k, v in fitted.models.items() if v]
        shipped = Calibration({k: fitted.models[k] for k in keep},
                              {k: fitted.ranges[k] for k in keep},
                              {k: ood.get(k, 0.0) for k in keep})

        def shipped_tau(r: Record) -> float:
            return shipped.tau(r.calibration_key, r.observed, r.features)

        choice: dict[str, dict[float, str]] = {}
        for label, cands, rs in (
            ("known", KNOWN, [r for r in recs if r.case in with_sched]), ("blind", BLIND, recs)
        ):
            for (kind, frac), m in best_choice(rs, cands, shipped_tau).items():
                choice.setdefault(f"{label}:{kind}", {})[frac] = m
        cal = Calibration(shipped.models, shipped.ranges, shipped.ood, choice)
        TABLE_PATH.write_text(cal.to_json() + "\n")
        log(f"wrote {TABLE_PATH}; ood {ood}; auto {json.dumps(choice)}")


if __name__ == "__main__":
    main()
