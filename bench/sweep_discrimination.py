"""Could another score tell the pruner's losers from its winners better than ``p_beat``?

Every corpus sweep is replayed through Optuna with ``ForecastPruner(threshold=0)`` (it never
prunes on a forecast) in ``--orders`` trial orders; each decision it would have made is cached
with the trial's state, the completed trials' state and the trial's final value. A score is
then judged offline: a trial stops at its first decision scored below a threshold, and the
study keeps its best completed trial (compute; pairs within 1% of the sweep's best). Learned
scores are fitted leave one sweep out. The completed set is the never-pruning one's, so the
cells rank scores; they are not the pruner's own figures. ``--hybrid`` and ``--oracle-bar``
replay two candidate rules for real (8 orders through Optuna); a last table picks the
threshold per sweep online (:func:`adaptive`).

    OMP_NUM_THREADS=1 .venv/bin/python bench/sweep_discrimination.py [--orders 4] [--specs]
        [--own] [--hybrid BELOW,SHARE ...] [--oracle-bar]
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sweep_pruning as sp

HERE = Path(__file__).resolve().parent
COLD = 10  # a sweep's first trials: fewer completed trials than this to compare with
THRESHOLDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
FEATURES = (
    "logit p_beat",
    "median to bar / band",
    "gap to leaders / IQR",
    "rank",
    "progress",
    "log completed",
)


def tag(specs: bool, orders: int) -> str:
    """The cache files' name for one mode and order count."""
    return f"{'specs' if specs else 'none'}_{orders}"


def record(sw: sp.CSweep, order: list[int], specs: bool) -> list[dict[str, Any]]:
    """Every forecast decision of a never-pruning replay of one order (min-oriented values)."""
    from runcast.integrations.optuna import ForecastPruner

    sign = -1.0 if sw.maximize else 1.0
    fin = sign * sw.values[:, -1]
    pos = {i: p for p, i in enumerate(order)}
    seen: dict[int, Any] = {}
    out: list[dict[str, Any]] = []

    def observe(i: int, trial: Any, pruner: Any) -> None:
        d = pruner.decisions.get(trial.number)
        if d is None or seen.get(trial.number) is d or "p_beat" not in d.numbers:
            return
        seen[trial.number] = d
        n = d.numbers
        lo, hi = sorted((sign * n["final_lo80"], sign * n["final_hi80"]))
        out.append(
            {
                "i": i,
                "j": int(np.searchsorted(sw.steps, d.step)),
                "p": float(n["p_beat"]),
                "bar": sign * n["bar"],
                "med": sign * n["final_median"],
                "lo": lo,
                "hi": hi,
                "done": [c for c in order[: pos[i]] if np.isfinite(fin[c])],
            }
        )

    sp.optuna_trained(lambda sw: ForecastPruner(threshold=0.0), sw, order, specs, observe)
    return out


def decisions(
    every: list[sp.CSweep], orders: dict[str, list[list[int]]], n: int, specs: bool
) -> dict[str, list[list[dict[str, Any]]]]:
    """Per sweep, per order, the decisions (:func:`record`); cached by sweep and order count."""
    path = HERE / "_cache" / f"sweep_decisions_{tag(specs, n)}.pkl"
    if path.exists():
        with path.open("rb") as f:
            cached: dict[str, list[list[dict[str, Any]]]] = pickle.load(f)
        if set(cached) == {sw.name for sw in every}:
            return cached
    out = {}
    for sw in every:
        out[sw.name] = [record(sw, o, specs) for o in orders[sw.name][:n]]
        print(f"  {sw.name}: {sum(map(len, out[sw.name]))} decisions", file=sys.stderr, flush=True)
    path.parent.mkdir(exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(out, f)
    return out


def own_p(
    every: list[sp.CSweep], data: dict[str, list[list[dict[str, Any]]]], name: str
) -> dict[str, np.ndarray]:
    """Per decision, P(beats the bar) by :func:`runcast.forecast` of the trial's own curve
    alone; NaN where it fails, and where ``p_beat`` >= 0.3 once COLD trials have completed
    (such a decision stops no trial, and the scores ignore NaN); cached beside the decisions."""
    import runcast
    from runcast.curve import Curve

    path = HERE / "_cache" / f"sweep_decisions_own_{name}.pkl"
    if path.exists():
        with path.open("rb") as f:
            cached: dict[str, np.ndarray] = pickle.load(f)
        return cached
    out = {}
    for sw in every:
        ps = []
        for r in (r for rs in data[sw.name] for r in rs):
            v, s = sw.values[r["i"], : r["j"] + 1], sw.steps[: r["j"] + 1]
            ok = np.isfinite(v)
            if (r["p"] >= 0.3 and len(r["done"]) >= COLD) or ok.sum() < 5:
                ps.append(np.nan)
                continue
            try:
                fc = runcast.forecast(Curve(s[ok], v[ok]), until=int(sw.total)).final
            except runcast.RuncastError:
                ps.append(np.nan)
                continue
            bar = -r["bar"] if sw.maximize else r["bar"]
            ps.append(fc.prob_above(bar) if sw.maximize else fc.prob_below(bar))
        out[sw.name] = np.array(ps)
        print(f"  {sw.name}: own-curve forecasts done", file=sys.stderr, flush=True)
    with path.open("wb") as f:
        pickle.dump(out, f)
    return out


def features(sw: sp.CSweep, r: dict[str, Any]) -> list[float]:
    """What a learned score sees at a decision (see FEATURES), all free of the metric's units."""
    v = (-1.0 if sw.maximize else 1.0) * sw.values
    so_far = np.fmin.accumulate(np.where(np.isfinite(v), v, np.inf), axis=1)
    done = np.asarray(r["done"], dtype=np.int64)
    peers = so_far[done, r["j"]]
    mine = so_far[r["i"], r["j"]]
    leaders = v[done, -1] <= r["bar"] + 1e-15  # the completed trials at or beyond the bar
    lead = peers[leaders].min() if leaders.any() else peers.min()
    iqr = float(np.subtract(*np.percentile(peers, [75, 25]))) + 1e-12
    p = float(np.clip(r["p"], 1e-4, 1 - 1e-4))
    return [
        float(np.log(p / (1 - p))),
        (r["med"] - r["bar"]) / (r["hi"] - r["lo"] + 1e-12),
        float(np.clip((mine - lead) / iqr, -5, 20)),
        float(np.mean(peers < mine)),
        float((sw.steps[r["j"]] + 1) / sw.total),
        float(np.log(len(done))),
    ]


def replay(
    sw: sp.CSweep,
    orders: list[list[int]],
    rows: list[list[dict[str, Any]]],
    score: list[np.ndarray],
    threshold: float,
) -> tuple[float, list[float]]:
    """Offline: each trial stops at its first decision scored below ``threshold`` (a NaN value
    stops it at once); compute and the regret of each order."""
    v = (-1.0 if sw.maximize else 1.0) * sw.values
    compute, regrets = [], []
    for order, rs, sc in zip(orders, rows, score, strict=False):
        first: dict[int, int] = {}
        for r, s in zip(rs, sc, strict=True):
            if s < threshold and r["i"] not in first:
                first[r["i"]] = r["j"]
        used, finals = 0, []
        for i in order:
            bad = np.flatnonzero(~np.isfinite(v[i]))
            cut = first.get(i, int(bad[0]) if bad.size else None)
            if cut is None:
                used += sw.total
                finals.append(v[i, -1])
            else:
                used += int(sw.steps[cut]) + 1
        compute.append(used / (len(order) * sw.total))
        best = min(finals) if finals else np.nan
        regrets.append(sw.regret((-1.0 if sw.maximize else 1.0) * best))
    return float(np.mean(compute)), regrets


def adaptive(
    sw: sp.CSweep,
    order: list[int],
    rows: list[dict[str, Any]],
    base: float,
    scale: float,
    most: float,
    k: int,
    n_min: int,
) -> tuple[float, float]:
    """Offline, one order: the threshold chosen online from the sweep's own completed trials,
    as ASHA is picked per sweep but from the past only. Once ``n_min`` trials have completed,
    a trial is stopped below ``min(most, max(base, scale * m))``, ``m`` the lowest ``p_beat``
    any of the ``k`` best completed trials had on its way (had the threshold been above it,
    that trial would have been lost). Compute and the regret of the kept best."""
    v = (-1.0 if sw.maximize else 1.0) * sw.values
    by: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["i"], []).append(r)
    done: list[tuple[float, float]] = []  # (final, lowest p_beat on its way)
    used = 0
    for i in order:
        threshold = base
        if len(done) >= n_min:
            threshold = min(most, max(base, scale * min(m for _, m in sorted(done)[:k])))
        cut, low = None, 1.0
        for r in by.get(i, []):
            if r["p"] < threshold:
                cut = r["j"]
                break
            low = min(low, r["p"])
        bad = np.flatnonzero(~np.isfinite(v[i]))
        cut = int(bad[0]) if cut is None and bad.size else cut
        if cut is None:
            used += sw.total
            done.append((float(v[i, -1]), low))
        else:
            used += int(sw.steps[cut]) + 1
    best = min(f for f, _ in done) if done else np.nan
    return used / (len(order) * sw.total), sw.regret((-1.0 if sw.maximize else 1.0) * best)


def loso(
    model: Callable[[], Any], x: dict[str, np.ndarray], y: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Each sweep's decisions scored by ``model()`` fitted on every other sweep's."""
    out = {}
    for name in x:
        xs = np.concatenate([x[n] for n in x if n != name])
        ys = np.concatenate([y[n] for n in x if n != name])
        out[name] = model().fit(xs, ys).predict_proba(x[name])[:, 1]
    return out


def lagging_pruner(below: float, share: float) -> Any:
    """``ForecastPruner()`` that also stops a trial with ``p_beat < below`` whose best value so
    far trails ``share`` or more of the completed trials' best values by the same step (ASHA's
    signal beside the forecast), for the real replays of ``--hybrid``."""
    import optuna

    from runcast.integrations.optuna import ForecastPruner

    class Lagging(ForecastPruner):  # type: ignore[misc]
        def prune(self, study: Any, trial: Any) -> bool:
            if super().prune(study, trial):
                return True
            d = self.decisions.get(trial.number)
            p = None if d is None else d.numbers.get("p_beat")
            if p is None or p >= below or d.step is None:
                return False
            sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
            mine = min(sign * v for s, v in trial.intermediate_values.items() if s <= d.step)
            done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            at = [
                min(sign * v for s, v in t.intermediate_values.items() if s <= d.step)
                for t in done
                if any(s <= d.step for s in t.intermediate_values)
            ]
            return len(at) >= 2 and float(np.mean(np.array(at) < mine)) >= share

    return Lagging()


def oracle_bar(every: list[sp.CSweep], specs: bool) -> None:
    """Real replays (8 orders) of ``ForecastPruner()`` comparing every trial with the sweep's
    true 2nd best final (what the bar ends at) instead of the 2nd best completed so far: is
    the early, lenient bar what keeps losing trials running?"""
    from dataclasses import dataclass

    from runcast.integrations.optuna import ForecastPruner
    from runcast.steer import PruneRule

    @dataclass
    class OracleBar(PruneRule):
        oracle: float = float("nan")

        def reference(self, finals: Any, schedule: Any = None, *, logged: bool = False) -> float:
            return self.oracle

    orders = sp.trial_orders(every, 8, 2026)
    comp, within = [], []
    for sw in every:
        ends = np.sort(sw.values[:, -1][np.isfinite(sw.values[:, -1])])
        bar = float(ends[-2] if sw.maximize else ends[1])
        rs = [
            sp.creplay_optuna(
                lambda sw, b=bar: ForecastPruner(rule=OracleBar(oracle=b)), sw, o, specs
            )
            for o in orders[sw.name]
        ]
        comp.append(np.mean([r.compute for r in rs]))
        within.append(np.mean([r.regret <= 0.01 for r in rs]))
    print(
        f"\nThe sweep's final 2nd best as the bar from the start: {np.mean(comp):.1%} compute, "
        f"{np.mean(within):.1%} of pairs within 1%, {sum(w < 0.95 for w in within)} sweeps "
        "with < 95% of orders within 1%."
    )


def hybrid(every: list[sp.CSweep], specs: bool, settings: list[str]) -> None:
    """Real replays (8 orders, through Optuna) of :func:`lagging_pruner` settings
    ``below,share``, beside ASHA's per-sweep cheapest setting at each one's regret."""
    orders = sp.trial_orders(every, 8, 2026)
    cache = sp._load_cache()
    print(
        "\n| setting | compute | pairs within 1% | ASHA in hindsight at its regret | sweeps "
        "with < 95% of orders within 1% |"
    )
    print("|---|---|---|---|---|")
    for setting in settings:
        below, share = (float(x) for x in setting.split(","))
        comp, within, match = [], [], []
        for sw in every:
            rs = [
                sp.creplay_optuna(lambda sw, b=below, q=share: lagging_pruner(b, q), sw, o, specs)
                for o in orders[sw.name]
            ]
            comp.append(np.mean([r.compute for r in rs]))
            within.append(np.mean([r.regret <= 0.01 for r in rs]))
            reg = float(np.mean([r.regret for r in rs]))
            base = [cache[sp._cache_key(a, sw, orders[sw.name], False)] for a in sp.ASHA_SETTINGS]
            reach = [
                float(np.mean([r.compute for r in b]))
                for b in base
                if np.mean([r.regret for r in b]) <= reg + 1e-12
            ]
            match.append(min(reach) if reach else 1.0)
        print(
            f"| p_beat < {below:g} in the worse {share:g} | {np.mean(comp):.1%} | "
            f"{np.mean(within):.1%} | {np.mean(match):.1%} | "
            f"{sum(w < 0.95 for w in within)} of {len(every)} |",
            flush=True,
        )


def main() -> None:
    import optuna
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=4, help="trial orders per sweep")
    ap.add_argument("--specs", action="store_true", help="give each trial its LR schedule")
    ap.add_argument(
        "--own", action="store_true", help="also the trial's own-curve forecast (slow, cached)"
    )
    ap.add_argument(
        "--hybrid",
        nargs="*",
        metavar="BELOW,SHARE",
        help="also replay these lagging settings for real (8 orders, through Optuna)",
    )
    ap.add_argument(
        "--oracle-bar",
        action="store_true",
        help="also replay with the sweep's final 2nd best as the bar (8 orders)",
    )
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", message="All-NaN slice")
    every = sp.load_corpus(None)
    orders = sp.trial_orders(every, max(args.orders, 8), 2026)
    data = decisions(every, orders, args.orders, args.specs)
    by = {sw.name: sw for sw in every}
    x = {n: np.array([features(by[n], r) for rs in d for r in rs]) for n, d in data.items()}
    # the label a pruner needs: did the trial end beyond the bar it was compared with?
    y = {
        n: np.array(
            [
                by[n].values[r["i"], -1] * (-1 if by[n].maximize else 1) < r["bar"]
                for rs in d
                for r in rs
            ]
        )
        for n, d in data.items()
    }
    p = {n: np.array([r["p"] for rs in d for r in rs]) for n, d in data.items()}
    rank = {n: x[n][:, 3] for n in x}
    scores: dict[str, dict[str, np.ndarray]] = {
        "p_beat (the shipped rule's score)": p,
        "logistic regression on the features (LOSO)": loso(
            lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), x, y
        ),
        "gradient boosting on the features (LOSO)": loso(
            lambda: HistGradientBoostingClassifier(
                max_iter=200, learning_rate=0.05, random_state=0
            ),
            x,
            y,
        ),
    }
    if args.own:
        own = own_p(every, data, tag(args.specs, args.orders))
        scores["the larger of p_beat and the trial's own-curve P(beats the bar)"] = {
            n: np.fmax(p[n], own[n]) for n in p
        }
        # the cold start: the own-curve forecast rests on a prior over many runs (the PFN and
        # the laws), so it might decide where the sweep has few completed trials to borrow from
        cold = {n: x[n][:, 5] < np.log(COLD) for n in x}
        scores[f"the smaller of the two while fewer than {COLD} trials have completed"] = {
            n: np.where(cold[n], np.fmin(p[n], own[n]), p[n]) for n in p
        }
    learned = {k for k in scores if "LOSO" in k}
    for t2 in (0.02, 0.05, 0.1):
        # ASHA's signal beside the forecast: a trial in the worse half of the completed trials
        # at its step is stopped at a higher p_beat
        scores[f"p_beat, or p_beat < {t2:g} in the worse half at its step"] = {
            n: np.where((p[n] < t2) & (rank[n] >= 0.5), 0.0, p[n]) for n in p
        }
    from sklearn.metrics import roc_auc_score

    ally = np.concatenate(list(y.values()))
    mode = "each trial's schedule given" if args.specs else "nothing given"
    print(
        f"\n### Offline replays ({mode}; {args.orders} orders per sweep; {len(every)} sweeps)\n\n"
        f"The learned scores see: {', '.join(FEATURES)}.\n"
    )
    print(
        "| score | AUC (ended beyond the bar) | "
        + " | ".join(f"below {t:g}" for t in THRESHOLDS)
        + " | cheapest with >= 95% within 1% |"
    )
    print("|---" * (3 + len(THRESHOLDS)) + "|")
    allp = np.concatenate([p[n] for n in y])
    for label, sc in scores.items():
        pooled = np.concatenate([sc[n] for n in y])
        auc = roc_auc_score(ally, pooled)
        cells, ok = [], []
        for t in THRESHOLDS:
            if label in learned:
                # a learned score is on its own scale: it stops as many decisions as p_beat does
                ranked = np.sort(pooled)
                t = float(ranked[min(int(np.mean(allp < t) * ranked.size), ranked.size - 1)])
            comp, regs = [], []
            for sw in every:
                rows = data[sw.name]
                cut = np.cumsum([0, *map(len, rows)])
                split = [sc[sw.name][a:b] for a, b in itertools.pairwise(cut)]
                c, r = replay(sw, orders[sw.name][: args.orders], rows, split, t)
                comp.append(c)
                regs += r
            within = float(np.mean(np.array(regs) <= 0.01))
            cells.append(f"{np.mean(comp):.1%} / {within:.1%}")
            if within >= 0.95:
                ok.append(float(np.mean(comp)))
        best = f"{min(ok):.1%}" if ok else "none"
        print(f"| {label} | {auc:.3f} | " + " | ".join(cells) + f" | {best} |", flush=True)
    print(
        "\nEach cell: compute / (sweep, order) pairs within 1% of the sweep's best. A learned "
        "score's column stops the same share of decisions as p_beat below that threshold."
    )
    if args.hybrid:
        hybrid(every, args.specs, args.hybrid)
    if args.oracle_bar:
        oracle_bar(every, args.specs)
    base = 0.005 if args.specs else 0.002  # the shipped thresholds
    print(f"\n### The threshold chosen per sweep, online (from {base:g} up)\n")
    print("| trials completed first | k best | scale | at most | compute | pairs within 1% |")
    print("|---|---|---|---|---|---|")
    for n_min, k, scale, most in itertools.product((5, 10), (1, 3), (0.1, 0.3, 1.0), (0.02, 0.1)):
        comp, regs = [], []
        for sw in every:
            out = [
                adaptive(sw, o, rs, base, scale, most, k, n_min)
                for o, rs in zip(orders[sw.name], data[sw.name], strict=False)
            ]
            comp.append(np.mean([c for c, _ in out]))
            regs += [r for _, r in out]
        print(
            f"| {n_min} | {k} | {scale:g} | {most:g} | {np.mean(comp):.1%} | "
            f"{np.mean(np.array(regs) <= 0.01):.1%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
