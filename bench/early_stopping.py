"""Early stopping on the corpus of real runs, judged leave-one-family-out.

Every run of the corpus (bench/corpus: generated families, the sweeps' trials with a
``val_loss`` objective and at least 20 reports, each sweep its own family, and the public ``mpl``
validation curves) is replayed evaluation by evaluation through each rule:

- ``runcast``: :class:`runcast.steer.EarlyStopper` (the smoothed turn test, plus a
  :class:`runcast.steer.StopRule` on the validation curve when its tolerance is not ``off``);
- ``patience``: Keras/Lightning ``EarlyStopping`` (``restore_best_weights``): stop after
  ``patience`` evaluations without a new best;
- ``train-only``: :class:`runcast.steer.TrainingPlateau` on the training loss (blocks of 5% of
  the budget), keeping the latest weights (no validation set);
- ``StopRule`` alone, as the issue measured it (tolerance 1% relative, confidence 0.9).

Every setting of a rule is chosen on the other families (leave one family out): among the
settings whose runs meet the goals there (improving runs: mean regret against training to the
end <= 0.3%, max <= 1%; overfitting runs: kept within 0.5% of the best on average; for
``runcast``, also pooled at least as much compute saved and a kept value at least as close to
the best as the patience rule chosen on the same families) the one with
the largest share of the oracle's compute saving on overfitting runs; if none meets them, the
smallest total shortfall. A run overfits by the manifest's definition (best validation before
70% of the run and the last evaluation >= 2% above it).

Numbers per run: compute saved ``1 - (stop_step + 1) / total``; the kept weights are those of the
best evaluation up to the stop (the latest for ``train-only``); "vs end" is the kept value
against the last evaluation of the full run (what training to the end gives), "vs best" against
the best evaluation of the full run (the oracle that stops at the best and keeps it).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/early_stopping.py > /tmp/early.md
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/early_stopping.py --wide > /tmp/wide.md
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import load
from runcast.curve import Curve
from runcast.errors import RuncastError
from runcast.steer import EarlyStopper, PlateauDetector, StopRule, TrainingPlateau
from runcast.steer._prune import default_forecaster

CACHE = Path(__file__).resolve().parent / "_cache" / "early_forecasts.pkl"
FORECASTS_PER_RUN = 20  # the StopRule is asked about every n_evals/20 evaluations
# window, z, train_z, min_rise, tol. The floors (z >= 2.5: a test at every one of a run's ~40
# evaluations; train_z >= 2; min_rise 2%: the rise the corpus counts as overfitting) are design
# choices; --wide adds z 2, train_z 1 and min_rise 0 / 1% to see what they change.
TURN_GRID = list(
    itertools.product((3, 4, 5, 6), (2.5, 3.0, 4.0), (2.0, 3.0), (0.02,), ("off", 0.01))
)
WIDE_GRID = list(
    itertools.product(
        (3, 4, 5, 6), (2.0, 2.5, 3.0, 4.0), (1.0, 2.0, 3.0), (0.0, 0.01, 0.02), ("off",)
    )
)
PATIENCE_GRID = [1, 2, 3, 5, 8, 10, 15, 20, 30, 50]
PLATEAU_GRID = list(itertools.product((0.002, 0.005, 0.01, 0.02, 0.05), (1, 2, 3)))
GOAL_END_MEAN, GOAL_END_MAX, GOAL_BEST_MEAN, GOAL_SHARE = 0.003, 0.01, 0.005, 0.6


@dataclass
class Run:
    id: str
    family: str
    steps: np.ndarray  # evaluation steps
    val: np.ndarray
    train_iv: np.ndarray  # median training loss since the previous evaluation (NaN: none)
    train: np.ndarray | None  # per-step training loss
    total: int
    schedule: Any
    overfits: bool

    @property
    def best_index(self) -> int:
        return int(np.nanargmin(self.val))


def _overfits(steps: np.ndarray, val: np.ndarray) -> bool:
    i = int(np.nanargmin(val))
    return bool(steps[i] < 0.7 * steps[-1] and val[-1] > val[i] + 0.02 * abs(val[i]))


def _make(rid: str, family: str, r: Any, metric: str = "val_loss") -> Run | None:
    steps, val = r.arrays(metric)
    total = r.total_steps
    if total is None or len(val) < 20 or not np.isfinite(val).all():
        return None  # too short, or diverged (a guard's job, not early stopping's)
    if np.min(np.abs(val)) < 1e-6:
        return None  # a validation loss of 0 (float32): a relative regret means nothing
    train = None
    iv = np.full(len(val), np.nan)
    if "train_loss" in r.metrics:
        train = r.arrays("train_loss")[1]
        edges = np.concatenate([[-1], steps])
        for k in range(len(steps)):
            seg = train[edges[k] + 1 : edges[k + 1] + 1]
            seg = seg[np.isfinite(seg)]
            iv[k] = np.median(seg) if seg.size else np.nan
        if not np.isfinite(train).all():
            return None
    return Run(rid, family, steps, val, iv, train, int(total), r.schedule, _overfits(steps, val))


def corpus_runs() -> list[Run]:
    out = []
    for r in load.runs(public=False):
        if "val_loss" in r.metrics and "train_loss" in r.metrics:
            out.append(_make(r.id, r.family, r))
    for sw in load.sweeps():
        if sw.metric != "val_loss" or sw.n_reports < 20:
            continue
        out.extend(_make(t.id, f"sweep:{sw.name}", t) for t in sw.trials)
    with contextlib.suppress(FileNotFoundError):  # no shared data on this machine
        out.extend(_make(r.id, "mpl", r) for r in load.runs("mpl"))
    return [r for r in out if r is not None]


# --- the forecasts, made once and cached (they do not depend on the rules' settings) ----------
def forecasts(runs: list[Run]) -> dict[tuple[str, int], Any]:
    cache: dict[tuple[str, int], Any] = {}
    if CACHE.exists():
        cache = pickle.loads(CACHE.read_bytes())
    todo = [r for r in runs if (r.id, -1) not in cache]
    failures: list[str] = []
    t0 = time.time()
    for n, r in enumerate(todo):
        every = max(1, round(len(r.val) / FORECASTS_PER_RUN))
        fn = default_forecaster(r.schedule, "min")
        for k in range(every - 1, len(r.val) - 1, every):
            if k + 1 < 10:
                continue
            c = Curve(r.steps[: k + 1], r.val[: k + 1])
            try:
                cache[(r.id, k + 1)] = fn(c, r.total - 1)
            except (RuncastError, ValueError, ArithmeticError) as err:
                # a forecast that fails (numerically) is no evidence: the rule keeps training
                cache[(r.id, k + 1)] = None
                failures.append(f"{r.id}@{k + 1}: {type(err).__name__}: {err}")
        cache[(r.id, -1)] = every
        if n % 20 == 19:
            print(f"forecasts: {n + 1}/{len(todo)} runs, {time.time() - t0:.0f}s", file=sys.stderr)
            CACHE.parent.mkdir(exist_ok=True)
            CACHE.write_bytes(pickle.dumps(cache))
    CACHE.parent.mkdir(exist_ok=True)
    CACHE.write_bytes(pickle.dumps(cache))
    if failures:
        print(f"{len(failures)} forecast(s) failed, e.g. {failures[0]}", file=sys.stderr)
    return cache


# --- replays: each returns (stop evaluation index or None, kept value) ------------------------
def replay_runcast(
    r: Run, cfg: tuple[Any, ...], fc: dict[tuple[str, int], Any], why: list[str] | None = None
) -> int | None:
    """The evaluation the stopper stops at (None: ran to the end); ``why`` gets its reason."""
    window, z, train_z, min_rise, tol = cfg
    rule = None
    if tol != "off":

        def cached(curve: Curve, until: int) -> Any:
            f = fc.get((r.id, len(curve)))
            if f is None:
                raise RuncastError("no cached forecast")
            return f

        rule = StopRule(tolerance=float(tol), relative=True, confidence=0.9, forecaster=cached)
    es = EarlyStopper(
        window=window,
        z=z,
        train_z=train_z,
        min_rise=min_rise,
        stop_rule=rule,
        until=r.total - 1,
        forecast_every=int(fc.get((r.id, -1), 1)),
    )
    for k in range(len(r.val) - 1):  # the last evaluation ends the run anyway
        if d := es.evaluate(int(r.steps[k]), float(r.val[k]), train_loss=float(r.train_iv[k])):
            if why is not None:
                why.append(d.reason)
            return k
    return None


def replay_patience(r: Run, patience: int) -> int | None:
    p = PlateauDetector(patience=patience)
    for k in range(len(r.val) - 1):
        if p.update(int(r.steps[k]), float(r.val[k])):
            return k
    return None


def block_medians(r: Run) -> np.ndarray:
    """Block medians of the training loss, through the real class (block = 5% of the budget)."""
    tp = TrainingPlateau(block=max(1, r.total // 20), tol=0.0, patience=10**9)
    assert r.train is not None
    for s, v in enumerate(r.train):
        tp.update(s, float(v))
    return np.asarray(tp.medians)


def replay_plateau(r: Run, meds: np.ndarray, cfg: tuple[float, int]) -> int | None:
    """Stop step of :class:`TrainingPlateau` (fed its block medians: the same decisions)."""
    tol, patience = cfg
    tp = TrainingPlateau(block=1, tol=tol, patience=patience)
    block = max(1, r.total // 20)
    for k, m in enumerate(meds):
        if tp.update(k, float(m)):
            return min((k + 1) * block - 1, r.total - 1)
    return None


def outcome(r: Run, stop_eval: int | None, *, stop_step: int | None = None) -> dict[str, float]:
    """Compute saved and the kept value's regrets for one run (stop at evaluation index)."""
    end, best = float(r.val[-1]), float(np.min(r.val))
    if stop_step is not None:  # train-only: keep the latest weights
        k = int(np.searchsorted(r.steps, stop_step, side="right")) - 1
        kept, used = float(r.val[max(k, 0)]), stop_step + 1
    elif stop_eval is None:
        kept, used = float(np.min(r.val)), r.total  # ran to the end; best weights restored
    else:
        kept, used = float(np.min(r.val[: stop_eval + 1])), int(r.steps[stop_eval]) + 1
    oracle_used = int(r.steps[r.best_index]) + 1
    return {
        "stopped": float(used < r.total),
        "saved": 1.0 - used / r.total,
        "oracle_saved": 1.0 - oracle_used / r.total,
        "vs_end": (kept - end) / abs(end),
        "vs_best": (kept - best) / abs(best),
    }


def summary(outs: list[dict[str, float]]) -> dict[str, float]:
    if not outs:
        return {}
    a = {k: np.array([o[k] for o in outs]) for k in outs[0]}
    osv = float(a["oracle_saved"].mean())
    return {
        "n": len(outs),
        "stopped": float(a["stopped"].sum()),
        "saved": float(a["saved"].mean()),
        "oracle_saved": osv,
        "share": float(a["saved"].mean() / osv) if osv > 0 else float("nan"),
        "vs_end": float(a["vs_end"].mean()),
        "vs_end_max": float(a["vs_end"].max()),
        "vs_best": float(a["vs_best"].mean()),
    }


def score(
    outs: list[tuple[Run, dict[str, float]]], baseline: dict[str, float] | None = None
) -> tuple[float, float]:
    """(shortfall against the goals, -share of the oracle's saving): smaller is better.

    ``baseline``: the pooled summary of the patience rule chosen on the same runs; the goal
    "better than patience on compute saved and on the kept value, pooled" then counts too.
    """
    imp = summary([o for r, o in outs if not r.overfits])
    ovf = summary([o for r, o in outs if r.overfits])
    short = 0.0
    if imp:
        short += max(0.0, imp["vs_end"] - GOAL_END_MEAN) + max(
            0.0, imp["vs_end_max"] - GOAL_END_MAX
        )
    if ovf:
        short += max(0.0, ovf["vs_best"] - GOAL_BEST_MEAN)
    if baseline:
        pooled = summary([o for _, o in outs])
        short += max(0.0, pooled["vs_best"] - baseline["vs_best"])
        short += max(0.0, baseline["saved"] - pooled["saved"])
    share = ovf.get("share", 0.0) if ovf else summary([o for _, o in outs])["saved"]
    return (round(short, 6), -share)


def lofo(
    runs: list[Run],
    table: dict[Any, list[dict[str, float]]],
    baseline: dict[Any, list[dict[str, float]]] | None = None,
) -> dict[str, Any]:
    """For each family, the setting chosen on the others (family -> setting); with
    ``baseline`` (patience's table), judged against the patience chosen on the same others."""
    fams = sorted({r.family for r in runs})
    chosen = {}
    for fam in fams:
        train_idx = [i for i, r in enumerate(runs) if r.family != fam]
        base = None
        if baseline is not None:
            p = min(baseline, key=lambda c: score([(runs[i], baseline[c][i]) for i in train_idx]))
            base = summary([baseline[p][i] for i in train_idx])
        chosen[fam] = min(
            table, key=lambda c: score([(runs[i], table[c][i]) for i in train_idx], base)
        )
    return chosen


def fmt(x: float, pct: bool = True) -> str:
    return f"{100 * x:.1f}%" if pct else f"{x:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="*", help="only these families (a quick look)")
    ap.add_argument("--wide", action="store_true", help="the turn test's wider grid (no floors)")
    args = ap.parse_args()
    grid = WIDE_GRID if args.wide else TURN_GRID
    t0 = time.time()
    runs = corpus_runs()
    if args.families:
        runs = [r for r in runs if r.family in args.families]
    fc = forecasts(runs)
    t_fc = time.time() - t0
    print(f"replaying {len(runs)} runs", file=sys.stderr)
    methods: dict[str, dict[Any, list[dict[str, float]]]] = {
        "runcast": {c: [outcome(r, replay_runcast(r, c, fc)) for r in runs] for c in grid},
        "patience": {p: [outcome(r, replay_patience(r, p)) for r in runs] for p in PATIENCE_GRID},
    }
    meds = {r.id: block_medians(r) for r in runs if r.train is not None}
    methods["train-only"] = {
        c: [
            outcome(r, None, stop_step=replay_plateau(r, meds[r.id], c) if r.id in meds else None)
            for r in runs
        ]
        for c in PLATEAU_GRID
    }
    issue_cfg = ("issue", 0.01)
    methods["StopRule"] = {
        issue_cfg: [outcome(r, replay_runcast(r, (10**6, 0, 0, 0, 0.01), fc)) for r in runs]
    }
    fams = sorted({r.family for r in runs})
    result: dict[str, dict[str, Any]] = {}
    for name, table in methods.items():
        base = methods["patience"] if name == "runcast" else None
        chosen = lofo(runs, table, base) if len(table) > 1 else {f: issue_cfg for f in fams}
        outs = [table[chosen[r.family]][i] for i, r in enumerate(runs)]
        result[name] = {"chosen": chosen, "outs": outs}
    report(runs, result, time.time() - t0, t_fc)
    losers(runs, result["runcast"], fc)


def report(runs: list[Run], result: dict[str, dict[str, Any]], secs: float, t_fc: float) -> None:
    fams = sorted({r.family for r in runs})
    n_ovf = sum(r.overfits for r in runs)
    print(
        f"{len(runs)} runs in {len(fams)} families ({n_ovf} overfit); every setting chosen "
        f"leave-one-family-out; {secs:.0f}s ({t_fc:.0f}s forecasting)\n"
    )
    print("### Pooled\n")
    print(
        "| rule | kind of run | runs | stopped | compute saved | oracle saved | share of "
        "oracle | kept vs end (mean / max) | kept vs best |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, res in result.items():
        for kind, sel in (("overfitting", True), ("improving", False), ("all", None)):
            o = [
                x
                for r, x in zip(runs, res["outs"], strict=True)
                if sel is None or r.overfits == sel
            ]
            s = summary(o)
            if not s:
                continue
            print(
                f"| {name} | {kind} | {s['n']} | {s['stopped']:.0f} | {fmt(s['saved'])} | "
                f"{fmt(s['oracle_saved'])} | {fmt(s['share'])} | {100 * s['vs_end']:+.2f}% / "
                f"{100 * s['vs_end_max']:+.2f}% | {100 * s['vs_best']:+.2f}% |"
            )
    print("\n### Per family (runcast's EarlyStopper; patience baseline beside it)\n")
    print(
        "| family | kind | runs | setting (chosen on the others) | stopped | saved "
        "(oracle) | kept vs end mean / max | kept vs best | patience: p, saved, vs end, "
        "vs best |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rc, pt = result["runcast"], result["patience"]
    for fam in fams:
        for kind, sel in (("overfitting", True), ("improving", False)):
            idx = [i for i, r in enumerate(runs) if r.family == fam and r.overfits == sel]
            if not idx:
                continue
            s = summary([rc["outs"][i] for i in idx])
            p = summary([pt["outs"][i] for i in idx])
            w, z, trz, mr, tol = rc["chosen"][fam]
            print(
                f"| {fam} | {kind} | {s['n']} | window {w}, z {z:g}, "
                f"train {trz:g}, rise {mr:g}, tol {tol} | {s['stopped']:.0f} | {fmt(s['saved'])} "
                f"({fmt(s['oracle_saved'])}) | {100 * s['vs_end']:+.2f}% / "
                f"{100 * s['vs_end_max']:+.2f}% | {100 * s['vs_best']:+.2f}% | "
                f"{pt['chosen'][fam]}, {fmt(p['saved'])}, {100 * p['vs_end']:+.2f}%, "
                f"{100 * p['vs_best']:+.2f}% |"
            )
    goals(runs, result)
    chosen = {
        k: {f: list(map(str, v)) if isinstance(v, tuple) else v for f, v in res["chosen"].items()}
        for k, res in result.items()
    }
    print("\n<!-- chosen settings: " + json.dumps(chosen) + " -->")


def losers(runs: list[Run], res: dict[str, Any], fc: dict[tuple[str, int], Any]) -> None:
    """The improving runs whose kept weights are worse than training to the end, and why the
    stopper stopped them (the turn test or the forecast rule)."""
    rows = [(o["vs_end"], r) for r, o in zip(runs, res["outs"], strict=True) if not r.overfits]
    rows = sorted((x for x in rows if x[0] > 0), key=lambda x: -x[0])
    print("\n### Improving runs kept worse than the end (runcast)\n")
    print("| run | family | setting | kept vs end | stopped at | why |")
    print("|---|---|---|---|---|---|")
    for loss, r in rows:
        why: list[str] = []
        k = replay_runcast(r, res["chosen"][r.family], fc, why)
        at = f"eval {k} of {len(r.val)} (step {r.steps[k]})" if k is not None else "-"
        print(
            f"| {r.id} | {r.family} | {res['chosen'][r.family]} | {100 * loss:+.2f}% | {at} | "
            f"{why[0][:160] if why else '-'} |"
        )


def goals(runs: list[Run], result: dict[str, dict[str, Any]]) -> None:
    print("\n### Goals (pooled over held-out families)\n")
    ovf = summary([x for r, x in zip(runs, result["runcast"]["outs"], strict=True) if r.overfits])
    imp = summary(
        [x for r, x in zip(runs, result["runcast"]["outs"], strict=True) if not r.overfits]
    )
    rows = []
    if ovf:
        rows += [
            (
                "overfitting: share of the oracle's saving >= 60%",
                ovf["share"] >= GOAL_SHARE,
                fmt(ovf["share"]),
            ),
            (
                "overfitting: kept within 0.5% of the best (mean)",
                ovf["vs_best"] <= GOAL_BEST_MEAN,
                f"{100 * ovf['vs_best']:+.2f}%",
            ),
        ]
    if imp:
        rows += [
            (
                "improving: <= 0.3% worse than the end (mean)",
                imp["vs_end"] <= GOAL_END_MEAN,
                f"{100 * imp['vs_end']:+.2f}%",
            ),
            (
                "improving: never > 1% worse (max)",
                imp["vs_end_max"] <= GOAL_END_MAX,
                f"{100 * imp['vs_end_max']:+.2f}%",
            ),
        ]
    mine = summary(result["runcast"]["outs"])
    base = summary(result["patience"]["outs"])
    rows += [
        (
            "pooled: more compute saved than patience",
            mine["saved"] > base["saved"],
            f"{fmt(mine['saved'])} vs {fmt(base['saved'])}",
        ),
        (
            "pooled: kept weights closer to the best than patience",
            mine["vs_best"] < base["vs_best"],
            f"{100 * mine['vs_best']:+.4f}% vs {100 * base['vs_best']:+.4f}%",
        ),
    ]
    print("| goal | met | measured |")
    print("|---|---|---|")
    for what, ok, val in rows:
        print(f"| {what} | {'yes' if ok else 'NO'} | {val} |")


if __name__ == "__main__":
    main()
