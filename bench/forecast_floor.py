"""How close can any forecast get? The seed-noise floor of a run's final loss, per family.

Question: issue 13 asks for a median final-value error of at most 2% from 20% of a run and 0.7%
from 50%. Part of a run's end is decided after the cut-off by the random batches and the
initialisation's luck, which no forecast can see. How large is that part in each corpus family?

Protocol. For ``--configs`` runs of each generated family (spread over its ids, as
``forecast_lofo.py`` picks them), train the same configuration again with ``--seeds`` other
seeds that keep the data split (``seed + 3k``: every generator splits by ``seed % 3``; the
fine-tuning families keep their pretraining seed). Each run's target is its smoothed final value
(the mean over its last 1%, as the LOFO bench scores it) of the validation loss and of the
per-step training loss. Three figures per family and cut-off:

- ``seed CV``: the spread of the final value over seeds of one configuration (median over
  configurations);
- ``config oracle``: predict a seed's final value by the mean of the other seeds' (a forecaster
  that knows the configuration's outcome exactly, from finished runs of it, but not this seed's
  luck);
- ``prefix oracle``: the same, corrected by this seed's own deviation at the cut-off (log value,
  smoothed over the last 5% of the observed part) with a slope fitted on the family's other
  configurations: an estimate of the error left for a forecaster that also reads the run so far.

Both oracles know more than any forecast is given (the other seeds' whole runs), so their
errors estimate a floor. Beside them, on the same curves and cut-offs: ``auto`` with the
schedule (the shipped calibration) and the least-squares power law (baseline).

    .venv/bin/python bench/forecast_floor.py                 # 4 configs x 3 more seeds per family
    .venv/bin/python bench/forecast_floor.py --family cnn    # one family (repeatable)

Runs are cached in ``bench/_cache/forecast_floor/`` (resumable; one thread).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

import runcast
from runcast import Curve
from runcast.forecast._eval import smoothed_final

CACHE = Path(__file__).resolve().parent / "_cache" / "forecast_floor"
CUTS = (0.2, 0.5)
METRICS = ("val_loss", "train_loss")


def _pick(runs: list[Any], n: int) -> list[Any]:
    runs = sorted((r for r in runs if not r.facts.get("diverged")), key=lambda r: r.id)
    if len(runs) <= n:
        return runs
    idx = np.unique(np.linspace(0, len(runs) - 1, n).round().astype(int))
    return [runs[i] for i in idx]


def _replicate(gen: Any, cfg: dict[str, Any], k: int) -> dict[str, np.ndarray]:
    """The arrays of ``cfg`` trained with seed ``seed + 3k`` (cached)."""
    path = CACHE / f"{cfg['id']}-s{k}.npz"
    if path.exists():
        with np.load(path) as z:
            return {n: z[n] for n in z.files}
    c = copy.deepcopy(cfg)
    c["seed"] = int(cfg["seed"]) + 3 * k
    rec = gen.run(c)
    arrays = rec.arrays()
    arrays["diverged"] = np.array(rec.diverged)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return arrays


def _curves(arrays: dict[str, np.ndarray]) -> dict[str, Curve]:
    out = {}
    n = len(arrays["train_loss"])
    out["train_loss"] = Curve(np.arange(n), arrays["train_loss"].astype(np.float64)).finite()
    if "val_loss" in arrays:
        out["val_loss"] = Curve(arrays["eval_step"], arrays["val_loss"].astype(np.float64)).finite()
    return out


def _level(curve: Curve, frac: float) -> float:
    """The log value at the cut-off, smoothed over the last 5% of the steps observed."""
    first, last = int(curve.step[0]), curve.last_step
    cut = first + frac * (last - first)
    keep = (curve.step <= cut) & (curve.step >= cut - 0.05 * (cut - first))
    vals = curve.value[keep] if keep.any() else curve.value[curve.step <= cut][-1:]
    return float(np.log(np.mean(vals)))


def _forecast_errors(curve: Curve, sched: Any, frac: float, truth: float) -> dict[str, float]:
    first, last = int(curve.step[0]), curve.last_step
    observed = curve.until(int(first + frac * (last - first)))
    out = {}
    for label, method, s in (("auto", "auto", sched), ("powerlaw", "powerlaw", None)):
        try:
            f = runcast.forecast(observed, last, s, method=method, seed=0, noise=False)
            out[label] = abs(float(np.median(f.samples[:, -1])) - truth) / truth
        except runcast.RuncastError:
            out[label] = np.nan
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", action="append")
    ap.add_argument("--configs", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from corpus import build, load

    gens = {build.generator(g).FAMILY: build.generator(g) for g in build.GENERATORS}
    fams = [f for f in gens if f in load.families() and (not args.family or f in args.family)]
    # rows[(family, metric, frac)] -> lists of per-seed errors
    rows: dict[tuple[str, str, float], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    t0 = time.time()
    for fam in fams:
        gen = gens[fam]
        # groups[metric] -> list over configs of (finals, levels per frac, forecast errs)
        groups: dict[str, list[tuple[np.ndarray, dict[float, np.ndarray]]]] = defaultdict(list)
        for run in _pick(list(load.runs(family=fam)), args.configs):
            reps = [{m: run.curve(m, schedule=False).finite() for m in METRICS if m in run.metrics}]
            for k in range(1, args.seeds + 1):
                arrays = _replicate(gen, run.config, k)
                if not bool(arrays["diverged"]):
                    reps.append(_curves(arrays))
            print(f"{fam} {run.id}: {len(reps)} seeds ({time.time() - t0:.0f}s)", flush=True)
            for m in METRICS:
                curves = [r[m] for r in reps if m in r and len(r[m]) > 10]
                if len(curves) < 3 or any(np.any(c.value <= 0) for c in curves):
                    continue
                finals = np.array([smoothed_final(c) for c in curves])
                levels = {f: np.array([_level(c, f) for c in curves]) for f in CUTS}
                groups[m].append((finals, levels))
                for f in CUTS:
                    errs = _forecast_errors(curves[0], run.schedule, f, float(finals[0]))
                    for label, e in errs.items():
                        rows[(fam, m, f)][label].append(e)
        for m, gs in groups.items():
            for f in CUTS:
                r = rows[(fam, m, f)]
                for i, (finals, levels) in enumerate(gs):
                    r["cv"].append(float(np.std(finals, ddof=1) / np.mean(finals)))
                    # the slope of log final on log level, fitted on the other configurations
                    xs, ys = [], []
                    for j, (fj, lj) in enumerate(gs):
                        if j != i:
                            xs.extend(lj[f] - lj[f].mean())
                            ys.extend(np.log(fj) - np.log(fj).mean())
                    xa, ya = np.array(xs), np.array(ys)
                    b = float(xa @ ya / (xa @ xa)) if xa @ xa > 0 else 0.0
                    lf = np.log(finals)
                    for s in range(len(finals)):
                        rest = np.delete(np.arange(len(finals)), s)
                        mean_rest = float(np.mean(finals[rest]))
                        r["config"].append(abs(mean_rest - finals[s]) / finals[s])
                        pred = np.exp(
                            lf[rest].mean() + b * (levels[f][s] - levels[f][rest].mean())
                        )
                        r["prefix"].append(abs(float(pred) - finals[s]) / finals[s])
    print()
    print("| family | metric | cut | configs | seed CV % | config oracle % | prefix oracle % "
          "| `auto` % | power law % |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    pooled: dict[tuple[str, float], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (fam, m, f), r in sorted(rows.items()):
        if not r["cv"]:
            continue
        med = {k: 100 * float(np.nanmedian(v)) for k, v in r.items()}
        for k, v in med.items():
            pooled[(m, f)][k].append(v)
        print(f"| {fam} | {m} | {f:.0%} | {len(r['auto'])} | {med['cv']:.2f} | "
              f"{med['config']:.2f} | {med['prefix']:.2f} | {med['auto']:.2f} | "
              f"{med['powerlaw']:.2f} |")  # fmt: skip
    for (m, f), p in sorted(pooled.items()):
        print(f"| **median of families** | {m} | {f:.0%} | {len(p['cv'])} families | "
              f"{np.median(p['cv']):.2f} | {np.median(p['config']):.2f} | "
              f"{np.median(p['prefix']):.2f} | {np.median(p['auto']):.2f} | "
              f"{np.median(p['powerlaw']):.2f} |")  # fmt: skip
    print(f"\n({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
