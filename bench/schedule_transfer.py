"""Schedule transfer: fit loss laws on some LR schedules, predict the loss under others.

Question: how well does each law predict a run's whole loss curve under a schedule it was not
fitted on, how fast is the fit, and do its 80% bands hold the truth 80% of the time?

1. The multi-power law paper's benchmark (shared/data/curves/mpl, sizes 25M/100M/400M): fit on
   cosine_24000, constant_24000, wsdcon_9 (24000-step files cut to steps < 24000), predict the six
   other files. PredE = mean over a file's points of |loss - pred| / loss, averaged over the six;
   WorstE = the largest such per-point ratio. Anchors in the same run: the multi-power law with
   the paper's published parameters, the momentum law and the multi-power law fitted by runcast.
   Before it, the selection table: the same laws cross-validated on the three *fit* curves only
   (leave one curve out; and fit all three cut at step 12000, predict the rest) and on the
   independent tdlt runs (fit two of three schedules, predict the third), which is how
   runcast's law and its prior scale were chosen: the six predict files are a test set, never
   used to pick a law. A further anchor: the paper's own fitting procedure, reimplemented here
   (instant-drop surrogate start, AdamW with early stopping), fitted on the same splits.
   Two more rows fit the three sizes' fit curves together with ``fit_laws`` (runcast's procedure
   when runs of several sizes are available; never a predict file): "prior" centres each size's
   priors on the LR-response shape at the other sizes' joint fit, "shared" fits one shape for all;
   in the selection table every fold drops the same curve from all three sizes.
2. Per-step noisy curves (shared/data/curves/tdlt): fit on cosine, predict WSD and 8-1-1 step;
   PredE over the last 20% of each run, against 100-step means of the per-step training loss.

Run:  .venv/bin/python bench/schedule_transfer.py            (all tables)
      .venv/bin/python bench/schedule_transfer.py --cv-only  (the selection table only)
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from runcast import Curve, Schedule
from runcast.forecast.laws import Law, MultiPowerLaw, fit_law, fit_laws
from runcast.forecast.laws._base import stack_eval
from runcast.forecast.laws._data import prepare_curves

DATA = Path(
    os.environ.get(
        "RUNCAST_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
).resolve()
FIT = ("cosine_24000", "constant_24000", "wsdcon_9")
PREDICT = (
    "constant_72000",
    "cosine_72000",
    "wsd_20000_24000",
    "wsdld_20000_24000",
    "wsdcon_3",
    "wsdcon_18",
)
LAW_ROWS = (("momentum law (runcast fit)", "momentum"), ("MPL (runcast fit)", "mpl"))
PAPER_ROW = "MPL (paper's procedure, reimplemented)"
SIZES = ("25M", "100M", "400M")
# runcast's procedure when runs of several sizes are available: fit_laws over the three sizes'
# *fit* curves (never a predict file), one law per size
JOINT_ROWS = (
    ("runcast's law, sizes pooled (fit_laws, prior)", "prior"),
    ("runcast's law, sizes pooled (fit_laws, shared)", "shared"),
)
# prior scales of the multi-power law tried for runcast's law (it uses 30): selection table only
PRIOR_SWEEP = (10.0, 100.0)


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns of a (possibly gzipped) CSV as float arrays."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        rows = list(csv.reader(fh))
    head, body = rows[0], np.array(rows[1:], dtype=np.float64)
    return {name: body[:, i] for i, name in enumerate(head)}


def mpl_curves(size: str) -> dict[str, Curve]:
    """The nine curves of one model size, with their schedules from the catalog."""
    catalog = json.loads((DATA / "catalog.json").read_text())["curves"]
    out = {}
    for entry in catalog:
        if not entry["file"].startswith(f"curves/mpl/{size}/"):
            continue
        stem = Path(entry["file"]).stem
        cols = read_csv(DATA / entry["file"])
        steps, loss = cols["step"].astype(np.int64), cols["loss"]
        keep = steps < 24000 if steps.max() == 24000 else np.ones(steps.size, bool)
        sched = Schedule.from_spec(entry["schedule"])
        out[stem] = Curve(steps[keep], loss[keep], schedule=sched, name=stem)
    return out


def rel_errors(law: Law, curve: Curve) -> np.ndarray:
    """|loss - prediction| / loss at every point of ``curve``."""
    assert curve.schedule is not None
    pred = law.predict(curve.schedule, curve.step)
    return np.asarray(np.abs(curve.value - pred) / curve.value)


def coverage(law: Law, curve: Curve, level: float = 0.8) -> float:
    """Fraction of the curve's points inside the law's central ``level`` band."""
    assert curve.schedule is not None
    fc = law.forecast(curve.schedule, curve.step, n_paths=400)
    lo, hi = fc.interval(level)
    return float(np.mean((curve.value >= lo) & (curve.value <= hi)))


HORIZON_CUT = 12000
Fitter = Any  # (curves, calibrate) -> Law
GroupFitter = Any  # ({size: curves}, calibrate) -> {size: Law}


def paper_fit(curves: list[Curve], calibrate: bool = False) -> Law:
    """The multi-power law fitted the way the paper's repository does it (reimplemented).

    1. an instant-drop surrogate ``L0' + A*S1^-alpha + B*eta_t`` fitted by Huber least squares on
       log loss gives L0, A, alpha, B (the paper writes it ``L0 - B*(peak - eta_t)`` and starts the
       full law's L0 there, ``B*peak`` above the surrogate's constant);
    2. from there and C, beta, gamma = 1, 0.5, 0.5, AdamW (steps 0.05 for L0, A, B, C and 0.005
       for the exponents, weight decay 0.01) on the summed Huber loss (delta 1e-3) of log
       residuals; at most 200 steps, stopped after 20 without improvement; the best iterate wins.
    """
    del calibrate  # no covariance: this anchor predicts, it does not forecast bands
    data = prepare_curves(curves, max_points=512, min_step=None)
    y = np.log(np.concatenate([c.losses for c in data]))
    log_s1 = np.log(np.concatenate([c.s1 for c in data]))
    eta = np.concatenate([c.lrs[c.steps] for c in data])
    delta = 1e-3

    def surrogate(z: np.ndarray) -> np.ndarray:
        l0, a, alpha, b = np.exp(z)
        return np.asarray(y - np.log(np.maximum(l0 + a * np.exp(-alpha * log_s1) + b * eta, 1e-9)))

    lo = float(np.exp(y).min())
    best_s = None
    for l0_frac in (0.3, 0.6, 0.9):
        for alpha in (0.3, 0.5, 0.8):
            a = (float(np.exp(y).max()) - lo * l0_frac) * float(np.exp(log_s1.min())) ** alpha
            z0 = np.log([lo * l0_frac, a, alpha, 100.0])
            res = least_squares(surrogate, z0, loss="huber", f_scale=delta, method="trf")
            if best_s is None or res.cost < best_s.cost:
                best_s = res
    assert best_s is not None
    l0, a, alpha, b = np.exp(best_s.x)
    peak = max(float(c.lrs.max()) for c in data)
    theta = np.array([l0 + b * peak, a, alpha, b, 1.0, 0.5, 0.5])
    step = np.array([5e-2, 5e-2, 5e-3, 5e-2, 5e-2, 5e-3, 5e-3])
    preps = [MultiPowerLaw._prepare(c.lrs, c.steps) for c in data]
    m, v = np.zeros(7), np.zeros(7)
    best, best_theta, since = np.inf, theta.copy(), 0
    for t in range(1, 201):
        pred, jac = stack_eval(MultiPowerLaw, theta, preps, True)
        assert jac is not None
        r = y - np.log(np.maximum(pred, 1e-10))
        loss = float(
            np.sum(np.where(np.abs(r) < delta, 0.5 * r**2, delta * (np.abs(r) - delta / 2)))
        )
        if loss < best:
            best, best_theta, since = loss, theta.copy(), 0
        else:
            since += 1
            if t > 21 and since >= 20:
                break
        grad = -(np.clip(r, -delta, delta) / pred) @ jac
        theta = theta * (1.0 - step * 0.01)  # AdamW's decoupled weight decay
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        theta = theta - step * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return MultiPowerLaw(dict(zip([p.name for p in MultiPowerLaw.PARAMS], best_theta, strict=True)))


def by_name(name: str, **kwargs: Any) -> Fitter:
    """A fitter of runcast's ``fit_law(curves, name, **kwargs)``."""

    def fit(curves: list[Curve], calibrate: bool = False) -> Law:
        return fit_law(curves, name, calibrate=calibrate, **kwargs)

    return fit


def pooled(pooling: str) -> GroupFitter:
    """A fitter of ``fit_laws({size: curves}, pooling=pooling)``: all sizes at once."""

    def fit(groups: dict[str, list[Curve]], calibrate: bool = False) -> dict[str, Law]:
        return fit_laws(groups, pooling=pooling, calibrate=calibrate)

    return fit


def per_size(fit: Fitter) -> GroupFitter:
    """A one-size fitter applied to each size on its own."""

    def fit_all(groups: dict[str, list[Curve]], calibrate: bool = False) -> dict[str, Law]:
        return {size: fit(cs, calibrate=calibrate) for size, cs in groups.items()}

    return fit_all


def mean_rel_error(law: Law, curve: Curve) -> float:
    """Mean of |loss - prediction| / loss over the curve's points."""
    return float(np.mean(rel_errors(law, curve)))


def tdlt_loco(fit: Fitter) -> list[float]:
    """Fit two of the three tdlt runs, predict the third (100-step means after step 2000)."""
    runs = {name: tdlt_curve(name) for name in ("cosine", "wsd", "step811")}
    out = []
    for held, curve in runs.items():
        law = fit([c for n, c in runs.items() if n != held])
        assert curve.schedule is not None
        st, mean = window_means(curve, 2000)
        out.append(float(np.mean(np.abs(law.predict(curve.schedule, st) / mean - 1))))
    return out


def selection_cv(rows: list[tuple[str, GroupFitter, Fitter | None]]) -> None:
    """Table 0: cross-validation on the fit curves and tdlt; the predict files are never read."""
    print("## Selection: cross-validation on the three fit curves (and tdlt) only\n")
    print("LOCO: fit two of cosine_24000, constant_24000, wsdcon_9 and predict the third (mean")
    print(
        f"relative error, averaged over the three). Horizon: fit all three cut at step {HORIZON_CUT}"
    )
    print("and predict their later points. Worst LOCO: the largest per-point error of any held-out")
    print("curve. tdlt LOCO: fit two of the tdlt runs (cosine, WSD, 8-1-1), predict the third")
    print("(one model size: no pooling across sizes there). Lower is better; mean = over sizes.")
    print("Pooled rows fit the three sizes' (remaining) fit curves together in every fold.\n")
    print("| law | LOCO 25M | LOCO 100M | LOCO 400M | horizon 25M | horizon 100M | horizon 400M "
          "| mean LOCO | mean horizon | worst LOCO 25M/100M/400M | tdlt LOCO |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    curves = {size: mpl_curves(size) for size in SIZES}
    fits = {size: [cs[f] for f in FIT] for size, cs in curves.items()}
    for label, fit, single in rows:
        loco: dict[str, list[float]] = {size: [] for size in SIZES}
        worst: dict[str, float] = {size: 0.0 for size in SIZES}
        for i in range(len(FIT)):
            laws = fit({size: [c for j, c in enumerate(fs) if j != i] for size, fs in fits.items()})
            for size, fs in fits.items():
                errs = rel_errors(laws[size], fs[i])
                loco[size].append(float(errs.mean()))
                worst[size] = max(worst[size], float(errs.max()))
        laws = fit({size: [c.until(HORIZON_CUT - 1) for c in fs] for size, fs in fits.items()})
        horizon = []
        for size, fs in fits.items():
            later = []
            for c in fs:
                rest = c.step >= HORIZON_CUT
                later.append(
                    mean_rel_error(
                        laws[size], Curve(c.step[rest], c.value[rest], schedule=c.schedule)
                    )
                )
            horizon.append(float(np.mean(later)))
        mean_loco = [float(np.mean(loco[size])) for size in SIZES]
        tdlt = f"{np.mean(tdlt_loco(single)):.5f}" if single is not None else "-"
        cells = " | ".join(f"{v:.5f}" for v in [*mean_loco, *horizon])
        worst_s = " / ".join(f"{worst[size]:.4f}" for size in SIZES)
        print(
            f"| {label} | {cells} | {np.mean(mean_loco):.5f} | {np.mean(horizon):.5f} "
            f"| {worst_s} | {tdlt} |"
        )
        sys.stdout.flush()
    print()


def mpl_benchmark(rows: list[tuple[str, Fitter]], joint: list[tuple[str, GroupFitter]]) -> None:
    """Table 1: PredE / WorstE per size and law, fit times, band coverage; ``joint`` rows fit
    all sizes' fit curves at once (their fit time covers the three sizes)."""
    print("## MPL paper benchmark (fit: cosine_24000, constant_24000, wsdcon_9; predict 6)\n")
    print("WorstE = the largest per-point error over the six files; WorstE (repo) = the mean over")
    print("files of each file's largest error, as the paper's repository computes it.\n")
    print("| size | law | PredE | WorstE | WorstE (repo) | fit time (s) | 80% band coverage |")
    print("|---|---|---|---|---|---|---|")
    all_curves = {size: mpl_curves(size) for size in SIZES}
    pooled_laws: list[tuple[str, dict[str, Law], float]] = []
    for label, fit in joint:
        t0 = time.perf_counter()
        laws = fit({size: [cs[f] for f in FIT] for size, cs in all_curves.items()}, calibrate=True)
        pooled_laws.append((label, laws, time.perf_counter() - t0))
    for size in SIZES:
        curves = all_curves[size]
        fitted: list[tuple[str, Law, float]] = [
            ("MPL (published params)", MultiPowerLaw.published(size), 0.0)
        ]
        for label, fit in rows:
            t0 = time.perf_counter()
            law = fit([curves[f] for f in FIT], calibrate=True)
            fitted.append((label, law, time.perf_counter() - t0))
        # the pooled fit's time is for all three sizes at once
        fitted.extend((label, laws[size], secs) for label, laws, secs in pooled_laws)
        for label, law, secs in fitted:
            errs = [rel_errors(law, curves[f]) for f in PREDICT]
            pred_e = float(np.mean([e.mean() for e in errs]))
            worst = float(max(e.max() for e in errs))
            worst_repo = float(np.mean([e.max() for e in errs]))
            banded = secs > 0 and np.any(law.cov)
            cov = np.mean([coverage(law, curves[f]) for f in PREDICT]) if banded else 0.0
            fit_t = f"{secs:.2f}" if secs else "-"
            cov_s = f"{cov:.2f}" if banded else "-"
            print(
                f"| {size} | {label} | {pred_e:.5f} | {worst:.5f} | {worst_repo:.5f} "
                f"| {fit_t} | {cov_s} |"
            )
        sys.stdout.flush()


def tdlt_curve(name: str) -> Curve:
    """A per-step tdlt run with its recorded LR as the schedule."""
    cols = read_csv(DATA / "curves" / "tdlt" / f"gpt100m_{name}.csv.gz")
    steps = cols["step"].astype(np.int64)
    lr = np.empty(int(steps.max()) + 1)
    lr[steps] = cols["lr"]
    return Curve(steps, cols["loss"], schedule=Schedule.from_array(lr), name=name)


def window_means(curve: Curve, start: int, width: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Means of the per-step loss over ``width``-step windows from ``start``: the signal."""
    keep = curve.step >= start
    st, val = curve.step[keep], curve.value[keep]
    n = st.size // width
    st = st[: n * width].reshape(n, width)
    val = val[: n * width].reshape(n, width)
    return np.round(st.mean(axis=1)).astype(np.int64), val.mean(axis=1)


def tdlt_benchmark(laws: list[tuple[str, Fitter]]) -> None:
    """Table 2: fit on the cosine run's per-step loss, predict WSD and 8-1-1 step runs."""
    print("\n## tdlt per-step curves (fit: cosine; predict: WSD, 8-1-1 step; last 20% of each)\n")
    print("PredE / 80% band coverage against 100-step means of the per-step training loss.\n")
    print("| law | fit time (s) | WSD PredE | step811 PredE | mean PredE | 80% band coverage |")
    print("|---|---|---|---|---|---|")
    cos = tdlt_curve("cosine")
    targets = {name: tdlt_curve(name) for name in ("wsd", "step811")}
    rows: list[tuple[str, Law | None, float]] = [("cosine run's own loss (no law)", None, 0.0)]
    for label, fit in laws:
        t0 = time.perf_counter()
        fitted = fit([cos], calibrate=True)
        rows.append((label, fitted, time.perf_counter() - t0))
    for label, law, secs in rows:
        errs, covs = [], []
        for curve in targets.values():
            assert curve.schedule is not None
            start = int(0.8 * curve.last_step)
            st, mean = window_means(curve, start)
            if law is None:
                _, pred = window_means(cos, start)
                pred = pred[: mean.size]
            else:
                pred = law.predict(curve.schedule, st)
                if np.any(law.cov):
                    lo, hi = law.forecast(curve.schedule, st, n_paths=400).interval(0.8)
                    covs.append(float(np.mean((mean >= lo) & (mean <= hi))))
            errs.append(float(np.mean(np.abs(mean - pred) / mean)))
        cov_s = f"{np.mean(covs):.2f}" if covs else "-"
        fit_t = f"{secs:.2f}" if law is not None else "-"
        print(
            f"| {label} | {fit_t} | {errs[0]:.5f} | {errs[1]:.5f} | {np.mean(errs):.5f} | {cov_s} |"
        )
        sys.stdout.flush()


def partial_benchmark(laws: list[tuple[str, str]]) -> None:
    """Table 3: single partial runs (fast fits), as the forecaster uses laws: band coverage.

    The single-curve band (DEFAULT_MODEL_ERROR, REACH_GROWTH) was calibrated on the MPL *fit*
    curves; this checks it out of sample, on the six *predict* curves of every size.
    """
    print("\n## Partial runs: fit the first 30% / 50% of each MPL predict curve (fast=True)\n")
    print("Relative error of the final loss (median over curves) and coverage of the 80% band")
    print("over all remaining points.\n")
    print("| law | fraction | fits | median fit time (ms) | median final error | 80% coverage |")
    print("|---|---|---|---|---|---|")
    for label, name in laws:
        for frac in (0.3, 0.5):
            times, finals, inside = [], [], []
            for size in ("25M", "100M", "400M"):
                curves = mpl_curves(size)
                for f in PREDICT:
                    c = curves[f]
                    assert c.schedule is not None
                    part = c.head(frac, total=c.schedule.total)
                    t0 = time.perf_counter()
                    law = fit_law(part, name, fast=True)
                    times.append(time.perf_counter() - t0)
                    rest = c.step > part.last_step
                    fc = law.forecast(c.schedule, c.step[rest], n_paths=400)
                    lo, hi = fc.interval(0.8)
                    inside.append((c.value[rest] >= lo) & (c.value[rest] <= hi))
                    finals.append(abs(fc.median[-1] / c.value[-1] - 1))
            cover = float(np.mean(np.concatenate(inside)))
            print(
                f"| {label} | {frac} | {len(times)} | {1e3 * np.median(times):.0f} "
                f"| {np.median(finals):.4f} | {cover:.2f} |"
            )
            sys.stdout.flush()


def main() -> None:
    if not (DATA / "catalog.json").exists():
        sys.exit(f"shared data not found at {DATA}; set RUNCAST_SHARED_DATA")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cv-only", action="store_true", help="print the selection table only")
    args = parser.parse_args()
    laws = [(label, by_name(name)) for label, name in LAW_ROWS]
    laws.append(("runcast's law (auto)", by_name("auto")))
    sweep = [(f"MPL, priors x{k:g}", by_name("mpl", prior_strength=k)) for k in PRIOR_SWEEP]
    singles = [*laws[:2], *sweep, laws[2], (PAPER_ROW, paper_fit)]
    joint = [(label, pooled(mode)) for label, mode in JOINT_ROWS]
    selection_cv(
        [(label, per_size(fit), fit) for label, fit in singles]
        + [(label, fit, None) for label, fit in joint]
    )
    if args.cv_only:
        return
    mpl_benchmark([*laws, (PAPER_ROW, paper_fit)], joint)
    tdlt_benchmark([*laws, (PAPER_ROW, paper_fit)])
    partial_benchmark([(label, name) for label, name in LAW_ROWS] + [("runcast's law", "auto")])


if __name__ == "__main__":
    main()
