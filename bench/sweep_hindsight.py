"""How much of ASHA's edge in issue 14's compute goal is hindsight? Per corpus sweep.

The goal compares runcast, its settings chosen without the judged sweep, with Ray ASHA's
cheapest of 18 settings at runcast's mean regret *on that sweep, in the orders judged*. Beside
that pick, two that do not see what they are judged on: the same rule on 4 of the sweep's 8
orders, judged on the other 4 (both halves); and the one setting runcast's own selection rule
(``sweep_pruning.loso_choice``) picks on the other 31 sweeps.

runcast is ``ForecastPruner()`` as shipped (``--specs``: each trial's schedule given), in the 8
orders of ``bench/sweep_pruning.py``; the ASHA and MedianPruner replays come from its cache.

    OMP_NUM_THREADS=1 .venv/bin/python bench/sweep_hindsight.py [--specs] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sweep_pruning as sp

ORDERS = 8
HALVES = ((0, 1, 2, 3), (4, 5, 6, 7))
ASHA = sp.ASHA_SETTINGS


def cheapest(regret: float, asha: dict[str, list[sp.CReplay]], idx: tuple[int, ...]) -> str | None:
    """The cheapest ASHA setting whose mean regret over the orders ``idx`` is at most ``regret``
    (None: none reaches it, so no pruning matches runcast)."""
    reach = [
        (float(np.mean([rs[k].compute for k in idx])), a)
        for a, rs in asha.items()
        if np.mean([rs[k].regret for k in idx]) <= regret + 1e-12
    ]
    return min(reach)[1] if reach else None


def on(rs: list[sp.CReplay] | None, idx: tuple[int, ...]) -> tuple[float, list[float]]:
    """Compute and the regrets of the orders ``idx`` (None: no pruning, 100%, no regret)."""
    if rs is None:
        return 1.0, [0.0] * len(idx)
    return float(np.mean([rs[k].compute for k in idx])), [rs[k].regret for k in idx]


def main() -> None:
    import optuna

    from runcast.integrations.optuna import ForecastPruner

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", action="store_true", help="give each trial its LR schedule")
    ap.add_argument("--only", nargs="*", help="only these sweeps (the LOSO choice uses all)")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", message="All-NaN slice")
    every = sp.load_corpus(None)
    orders = sp.trial_orders(every, ORDERS, 2026)
    cache = sp._load_cache()
    res: dict[tuple[str, str], list[sp.CReplay]] = {}
    for sw in every:
        for policy in [*ASHA, sp.MEDIAN]:
            key = sp._cache_key(policy, sw, orders[sw.name], False)
            if key not in cache:
                sys.exit(f"{policy} on {sw.name} is not cached: run bench/sweep_pruning.py first.")
            res[policy, sw.name] = cache[key]
    names = [sw.name for sw in every]
    every_o = tuple(range(ORDERS))
    print(
        "| sweep | runcast | ASHA in hindsight | ASHA chosen on the other orders | "
        "halves above runcast's regret | ASHA, one setting chosen on the other sweeps |"
    )
    print("|---|---|---|---|---|---|")
    rows = []
    for sw in every:
        if args.only and sw.name not in args.only:
            continue
        ours = [
            sp.creplay_optuna(lambda sw: ForecastPruner(), sw, o, args.specs)
            for o in orders[sw.name]
        ]
        asha = {a: res[a, sw.name] for a in ASHA}
        reg = float(np.mean([r.regret for r in ours]))
        hind = cheapest(reg, asha, every_o)
        h_c, _ = on(asha.get(hind or ""), every_o)
        o_c, o_r, above = [], [], 0
        for judged, chosen_on in (HALVES, HALVES[::-1]):
            mine = float(np.mean([ours[k].regret for k in judged]))
            pick = cheapest(float(np.mean([ours[k].regret for k in chosen_on])), asha, chosen_on)
            c, rs = on(asha.get(pick or ""), judged)
            o_c.append(c)
            o_r += rs
            above += float(np.mean(rs)) > mine + 1e-12
        one = sp.loso_choice(ASHA, [n for n in names if n != sw.name], res)
        l_c, l_r = on(asha[one], every_o)
        rows.append(
            (
                np.mean([r.compute for r in ours]),
                np.mean([r.regret <= 0.01 for r in ours]),
                h_c,
                np.mean(o_c),
                np.mean(np.array(o_r) <= 0.01),
                above,
                l_c,
                np.mean(np.array(l_r) <= 0.01),
            )
        )
        print(
            f"| {sw.name} | {rows[-1][0]:.1%} / {reg:.2%} | "
            f"{(hind or 'none').replace('Ray ASHA ', '')}: {h_c:.1%} | {np.mean(o_c):.1%} / "
            f"{np.mean(o_r):.2%} | {above} of 2 | {one.replace('Ray ASHA ', '')}: {l_c:.1%} / "
            f"{np.mean(l_r):.2%} |",
            flush=True,
        )
    p = np.array(rows, dtype=np.float64)
    print("\n| choice | pooled compute | pairs within 1% | ratio ASHA / runcast |")
    print("|---|---|---|---|")
    print(
        f"| runcast, shipped defaults (chosen leave one sweep out) | {p[:, 0].mean():.1%} | "
        f"{p[:, 1].mean():.1%} | |"
    )
    for label, c, w in (
        ("ASHA in hindsight (the goal's comparison)", 2, None),
        ("ASHA chosen on the sweep's other orders", 3, 4),
        ("ASHA, one setting chosen on the other sweeps", 6, 7),
    ):
        within = "" if w is None else f"{p[:, w].mean():.1%}"
        print(
            f"| {label} | {p[:, c].mean():.1%} | {within} | "
            f"{p[:, c].mean() / p[:, 0].mean():.2f}x |"
        )
    print(
        f"\nASHA chosen on the other orders ends above runcast's mean regret in "
        f"{int(p[:, 5].sum())} of {2 * len(p)} half-sweeps."
    )


if __name__ == "__main__":
    main()
