"""How good is the learned forecaster ("pfn") on real curves, with and without the schedule?

For every curve of ../shared/data (mpl: 27 validation curves under 9 schedules; tdlt: 3 per-step
training curves with recorded LR; pythia: 6 per-step training curves, cosine) and cutoffs at 20%
and 50% of the run, forecast the rest to the run's last step and measure, side by side:

- median absolute relative error of the final value (truth: the last value for mpl; the mean
  of the last 1% of steps for the noisy per-step curves),
- coverage of the 80% interval over the remaining logged points (up to 200 of them, evenly
  spread; for per-step curves single noisy values, which the forecast's intervals include),
- time per forecast,

for ``pfn`` given the schedule, ``pfn`` without it, a least-squares power law ``a + b * t^-c``
fitted to the same observed points (the simple anchor), and, as the other runcast methods that
"auto" chooses between, ``runcast.forecast(method="auto")`` with the schedule (the
schedule-aware law) and ``method="ensemble"`` without it (the Domhan-family ensemble).

    .venv/bin/python bench/pfn_quality.py            # all curves
    .venv/bin/python bench/pfn_quality.py --quick    # mpl only
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

import runcast
from runcast.forecast.pfn import pfn_forecast

DATA = Path(
    os.environ.get(
        "RUNCAST_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
)


def load(entry: dict) -> tuple[np.ndarray, np.ndarray, runcast.Schedule]:
    path = DATA / entry["file"]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        header = fh.readline().strip().split(",")
        arr = np.loadtxt(fh, delimiter=",", ndmin=2)
    cols = {name: arr[:, i] for i, name in enumerate(header)}
    step = cols["step"].astype(np.int64)
    loss = cols["loss"]
    spec = dict(entry["schedule"])
    if spec["kind"] == "recorded":
        lrs = np.interp(np.arange(step[-1] + 1), step, cols["lr"])
        sched = runcast.Schedule.from_array(lrs)
    else:
        spec.pop("note", None)
        sched = runcast.Schedule.from_spec(spec)
    return step, loss, sched


def powerlaw_final(step: np.ndarray, value: np.ndarray, until: int) -> float:
    """Least-squares fit of a + b * t^-c (soft-L1, on <= 200 evenly spread points)."""
    idx = np.unique(np.linspace(0, step.size - 1, min(200, step.size)).astype(int))
    t = step[idx] + 1.0
    y = value[idx]

    def resid(p: np.ndarray) -> np.ndarray:
        return p[0] + np.exp(p[1]) * t ** -np.exp(p[2]) - y

    p0 = np.array(
        [y.min() * 0.9, np.log(max(y[0] - y.min(), 1e-3)) + 0.5 * np.log(t[0] + 1.0), np.log(0.5)]
    )
    fit = least_squares(resid, p0, loss="soft_l1", f_scale=float(np.std(y)) * 0.1 + 1e-9)
    p = fit.x
    return float(p[0] + np.exp(p[1]) * (until + 1.0) ** -np.exp(p[2]))


METHODS = {
    "pfn+schedule": lambda c, u, s, st: pfn_forecast(c, u, s, steps=st),
    "pfn": lambda c, u, s, st: pfn_forecast(c, u, None, steps=st),
    "auto+schedule (law)": lambda c, u, s, st: runcast.forecast(c, u, s, method="auto", steps=st),
    "ensemble": lambda c, u, s, st: runcast.forecast(c, u, None, method="ensemble", steps=st),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="mpl curves only")
    args = ap.parse_args()
    catalog = json.loads((DATA / "catalog.json").read_text())
    cutoffs = (0.2, 0.5)
    rows: dict[tuple[str, str, float], list[tuple[float, float, float, float]]] = {}
    for entry in catalog["curves"]:
        if args.quick and entry["family"] != "mpl":
            continue
        step, loss, sched = load(entry)
        until = int(step[-1])
        dense = step.size > 2000
        truth = float(loss[-max(1, step.size // 100) :].mean()) if dense else float(loss[-1])
        for cut in cutoffs:
            obs = step <= cut * until
            fut = np.flatnonzero(~obs)
            fut = fut[np.unique(np.linspace(0, fut.size - 1, min(200, fut.size)).astype(int))]
            curve = runcast.Curve(step[obs], loss[obs])
            for name, fn in METHODS.items():
                t0 = time.perf_counter()
                try:
                    f = fn(curve, until, sched, step[fut])
                except runcast.RuncastError as err:  # a method may refuse a curve: count it
                    print(f"{name} failed on {entry['file']} at {cut}: {err}")
                    continue
                dt = time.perf_counter() - t0
                lo, hi = f.interval(0.8)
                cov = float(np.mean((loss[fut] >= lo) & (loss[fut] <= hi)))
                lo95, hi95 = f.interval(0.95)
                cov95 = float(np.mean((loss[fut] >= lo95) & (loss[fut] <= hi95)))
                err = abs(f.final.median - truth) / truth
                rows.setdefault((entry["family"], name, cut), []).append((err, cov, dt, cov95))
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pl = powerlaw_final(step[obs], loss[obs], until)
            dt = time.perf_counter() - t0
            rows.setdefault((entry["family"], "powerlaw (lsq)", cut), []).append(
                (abs(pl - truth) / truth, float("nan"), dt, float("nan"))
            )
    print(
        "| family | method | cutoff | curves | median final err | 80% coverage | 95% coverage "
        "| ms/forecast |"
    )
    print("|---|---|---|---|---|---|---|---|")
    fams = sorted({k[0] for k in rows})
    for fam in [*fams, "all"]:
        for cut in cutoffs:
            for name in (*METHODS, "powerlaw (lsq)"):
                vals = [
                    v
                    for k, vs in rows.items()
                    for v in vs
                    if k[1] == name and k[2] == cut and fam in (k[0], "all")
                ]
                if not vals:
                    continue
                a = np.array(vals)
                cov = "-" if np.isnan(a[:, 1]).all() else f"{np.nanmean(a[:, 1]):.2f}"
                cov95 = "-" if np.isnan(a[:, 3]).all() else f"{np.nanmean(a[:, 3]):.2f}"
                print(
                    f"| {fam} | {name} | {int(cut * 100)}% | {len(a)} | {100 * np.median(a[:, 0]):.2f}% "
                    f"| {cov} | {cov95} | {1000 * np.median(a[:, 2]):.1f} |"
                )
    cpu_time_per_forecast()


def cpu_time_per_forecast(n: int = 50) -> None:
    """CPU (not wall) time of one pfn forecast: a shared, busy machine inflates wall time."""
    s = np.arange(100, 14_401, 128)  # 113 sparse points, forecast to 72k with a schedule
    c = runcast.Curve(s, 3.0 + (s / 100.0) ** -0.5)
    sch = runcast.Schedule.from_spec(
        {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 2160, "total": 72_000}
    )
    pfn_forecast(c, 72_000, sch)
    cpu, wall = [], []
    for _ in range(n):
        t0, w0 = time.process_time(), time.perf_counter()
        pfn_forecast(c, 72_000, sch)
        cpu.append(time.process_time() - t0)
        wall.append(time.perf_counter() - w0)
    load = os.getloadavg()[0]
    print(
        f"\npfn, one forecast (113 points, 200 steps, schedule): median CPU time "
        f"{1000 * np.median(cpu):.1f} ms, wall {1000 * np.median(wall):.1f} ms "
        f"(load average {load:.1f} on {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
