"""Forecast the rest of real runs from their first 10-70%: error, CRPS, coverage, time.

Question: how well does ``runcast.forecast`` predict where a run ends, with and without its LR
schedule, against the baselines (last smoothed value, least-squares power law, emcee MCMC over
the parametric ensemble) measured in the same run?

Data: ../shared/data (tdlt 3 per-step training curves with recorded LR; pythia 5 per-step
training curves, cosine (160m-4 is left out: its log starts mid-run at step "0", so its schedule
position is unknown); mpl 27 validation curves with their schedules). Truth for the final value:
the mean over the last 1% of steps; coverage: the share of the remaining observed (per-step)
values, up to 100 per case, inside the 80%/95% bands of the forecast with observation noise.

Calibration is cross-fitted (leave-one-group-out): the runs fall into groups of siblings (one
MPL model size under its nine schedules, one Pythia size over its seeds, the three tdlt runs,
the two MLP runs recorded here); every run's coverage is measured with a calibration model
fitted on the *other* groups only, so no run is judged by a model that saw it or its siblings.
``--write-calibration`` fits the model on all runs and writes the one runcast ships.

MCMC is run at Domhan et al.'s own settings (100 walkers x 2500 steps, 500 burn-in: the defaults
of their pylearningcurvepredictor's MCMCCurveModelCombination); ``--mcmc-grid`` adds smaller
budgets. Forecasts are cached in bench/_cache (``--fresh`` recomputes them).

    python bench/forecast_cutoff.py                  # full run (~15 min on 2 cores; cached)
    python bench/forecast_cutoff.py --quick          # mpl 100M + tdlt only, no MCMC
    python bench/forecast_cutoff.py --mcmc-grid --write-calibration
    python bench/forecast_cutoff.py --speed          # only the same-process timing table
    python bench/forecast_cutoff.py --corpus         # leave-one-family-out on bench/corpus

``--corpus`` is the judgement that counts: every family of the corpus (bench/corpus: generated
runs of many kinds, and the public mpl/tdlt/pythia/OLMo/T5/OPT curves) is scored by a
calibration fitted, an out-of-distribution coefficient chosen and an ``auto`` method picked
without it (:mod:`runcast.forecast._lofo`), per family and pooled, beside the baselines.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

import runcast
from runcast.forecast._calibrate import TABLE_PATH, Calibration
from runcast.forecast._eval import (
    CUTOFFS,
    Case,
    Record,
    cross_fitted_tau,
    evaluate_case,
    fit_calibration,
    summarize,
)

DATA = Path(
    os.environ.get(
        "RUNCAST_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
).resolve()


def group_of(file: str) -> str:
    """The cross-fitting group: one MPL size, one Pythia size (two seeds), the tdlt runs."""
    parts = file.split("/")
    if parts[1] == "mpl":
        return f"mpl/{parts[2]}"
    if parts[1] == "pythia":
        return f"pythia/{parts[2].split('-')[0]}"
    return parts[1]


def load_cases(quick: bool) -> list[Case]:
    cat = json.loads((DATA / "catalog.json").read_text())
    out = []
    for e in cat["curves"]:
        f = e["file"]
        if f.endswith("160m-4.csv.gz"):
            continue
        if quick and not ("mpl/100M" in f or "tdlt" in f):
            continue
        path = DATA / f
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as fh:
            head = fh.readline().strip().split(",")
            arr = np.loadtxt(fh, delimiter=",")
        cols = {h: arr[:, i] for i, h in enumerate(head)}
        spec = e["schedule"]
        sched = (
            runcast.Schedule.from_array(cols["lr"])
            if spec["kind"] == "recorded"
            else runcast.Schedule.from_spec(spec)
        )
        curve = runcast.Curve(cols["step"].astype(np.int64), cols["loss"], name="loss")
        out.append(Case(f, e["family"], curve, sched, group=group_of(f)))
    return out


def own_runs() -> list[Case]:
    """Two small real torch runs recorded with runcast's tracker (cosine and WSD)."""
    try:
        import torch
    except ImportError:
        return []
    import tempfile

    db = Path(tempfile.mkdtemp()) / "runs.db"
    torch.set_num_threads(1)  # a tiny model: threads only contend on a shared machine
    cases = []
    for kind in ("cosine", "wsd"):
        # a regression with noisy targets: the loss falls towards its floor 0.25 (the target
        # noise), like an LM's loss towards its entropy, logged every step, noisy per batch
        torch.manual_seed(0)
        total = 3000
        spec = {"kind": kind, "peak": 2e-3, "end": 2e-4, "warmup": 100, "total": total}
        if kind == "wsd":
            spec["decay_start"] = 2400
        sched = runcast.Schedule.from_spec(spec)
        lrs = sched.array(total)
        x = torch.randn(8192, 32)
        signal = torch.sin(x @ torch.randn(32, 1)) + torch.tanh(x @ torch.randn(32, 1))
        y = signal + 0.5 * torch.randn(8192, 1)
        model = torch.nn.Sequential(
            torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 1)
        )
        opt = torch.optim.AdamW(model.parameters(), lr=float(lrs[0]))
        with runcast.init(
            project="bench", name=f"mlp-{kind}", config={"schedule": spec}, db=db
        ) as run:
            for step in range(total):
                for g in opt.param_groups:
                    g["lr"] = float(lrs[step])
                idx = torch.randint(0, 8192, (256,))
                loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                run.log({"loss": loss.item()}, step=step)  # note: .item() syncs; fine on CPU
        store = runcast.open_store(db)
        rid = next(r for r in store.runs() if r.name == f"mlp-{kind}").id
        curve = store.curve(rid, "loss")
        cases.append(Case(f"runcast/mlp-{kind}", "runcast", curve, sched, group="runcast"))
    return cases


def table(rows, title: str) -> str:
    lines = [
        f"\n### {title}\n",
        "| method | cut-off | n | median abs rel err (final) | CRPS/|y| (final) | 80% cov | 95% cov | ms/forecast |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        frac = "all" if s.fraction is None else f"{s.fraction:.0%}"
        lines.append(
            f"| {s.method} | {frac} | {s.n} | {s.err:.2%} | {s.crps:.4f} | {s.cov80:.0%} | {s.cov95:.0%} | {s.ms:.1f} |"
        )
    return "\n".join(lines)


def compact(recs: list[Record], tau_of, methods: list[str]) -> str:
    """One row per method, the five cut-offs side by side (the bench/README.md table)."""
    rows = summarize(recs, tau_of, by_fraction=True)
    lines = [
        "| method | cut-off | median abs rel err (final) | CRPS/\\|y\\| | 80% cov | 95% cov | ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        rs = [s for s in rows if s.method == m]
        if not rs:
            continue
        fr = "/".join(f"{s.fraction:.0%}".rstrip("%") for s in rs) + "%"
        err = "/".join(f"{s.err:.2%}".rstrip("%") for s in rs) + "%"
        crps = "/".join(f"{s.crps:.4f}".lstrip("0") for s in rs)
        c80 = "/".join(f"{s.cov80:.0%}".rstrip("%") for s in rs) + "%"
        c95 = "/".join(f"{s.cov95:.0%}".rstrip("%") for s in rs) + "%"
        ms = f"{min(s.ms for s in rs):.0f}–{max(s.ms for s in rs):.0f}"
        lines.append(f"| {m} | {fr} | {err} | {crps} | {c80} | {c95} | {ms} |")
    return "\n".join(lines)


def by_family(recs: list[Record], tau_of, methods: list[str]) -> str:
    """Coverage per family and cut-off: calibration must hold per kind of curve, not only pooled."""
    fams = sorted({r.family for r in recs})
    lines = [
        "| method | family | n runs | 80% cov by cut-off | 95% cov by cut-off | median err |",
        "|---|---|---|---|---|---|",
    ]
    for m in methods:
        for fam in fams:
            rows = summarize([r for r in recs if r.family == fam and r.method == m], tau_of)
            if not rows:
                continue
            c80 = "/".join(f"{s.cov80:.0%}".rstrip("%") for s in rows) + "%"
            c95 = "/".join(f"{s.cov95:.0%}".rstrip("%") for s in rows) + "%"
            err = "/".join(f"{s.err:.2%}".rstrip("%") for s in rows) + "%"
            lines.append(f"| {m} | {fam} | {rows[0].n} | {c80} | {c95} | {err} |")
    return "\n".join(lines)


def pooled(recs: list[Record], tau_of, methods: list[str], draws: int = 2000) -> str:
    """Coverage over every forecast (all runs x all cut-offs), with a group-bootstrap interval.

    The runs come in groups of siblings (one MPL size under nine schedules, ...), so the
    interval resamples whole groups: it says how far a coverage figure could move by chance.
    """
    lines = [
        "| method | forecasts | 80% cov (90% interval) | 95% cov (90% interval) |",
        "|---|---|---|---|",
    ]
    rng = np.random.default_rng(0)
    for m in methods:
        rs = [r for r in recs if r.method == m and not r.failed]
        if not rs:
            continue
        cov = np.array([(r.cov80(tau_of(r)), r.cov95(tau_of(r))) for r in rs])
        group = np.array([r.group or r.family for r in rs])
        members = [np.flatnonzero(group == g) for g in sorted(set(group.tolist()))]
        boot = np.array(
            [
                cov[
                    np.concatenate(
                        [members[i] for i in rng.integers(len(members), size=len(members))]
                    )
                ].mean(axis=0)
                for _ in range(draws)
            ]
        )
        lo, hi = np.percentile(boot, [5, 95], axis=0)
        mean = cov.mean(axis=0)
        cells = [f"{mean[k]:.1%} ({lo[k]:.0%}–{hi[k]:.0%})" for k in (0, 1)]
        lines.append(f"| {m} | {len(rs)} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


CACHE = Path(__file__).resolve().parent / "_cache" / "forecast_cutoff.pkl"
#: Domhan et al.'s own settings (pylearningcurvepredictor, MCMCCurveModelCombination defaults):
#: 100 walkers, 2500 steps each, the first 500 dropped as burn-in
DOMHAN_MCMC = (100, 2500, 500)


def run_mcmc(case: Case, frac: float, walkers: int, steps: int, burn: int) -> Record:
    """The MCMC baseline at the given budget (a faithful emcee run; its label names the budget)."""
    from runcast.forecast import _api

    _api._load_methods()
    orig = _api.RAW_METHODS["mcmc"]
    _api.RAW_METHODS["mcmc"] = lambda p, s, **kw: orig(
        p, s, n_walkers=walkers, n_steps=steps, burn=burn / steps, **kw
    )
    try:
        return evaluate_case(case, frac, "mcmc")
    finally:
        _api.RAW_METHODS["mcmc"] = orig


SPEED_CASES = ("mpl/100M/cosine_24000", "tdlt/gpt100m_wsd", "pythia/70m-1")


def speed_table(cases: list[Case], repeats: int = 3) -> str:
    """Time the schedule-free methods side by side, in this process, on the same inputs.

    The tables above time each method where it ran (possibly another process, cached); this one
    makes the speed ratios against MCMC comparable: for a few runs, cut at 20% and 50%, each
    method forecasts the same observed curve in turn, and the median of ``repeats`` calls counts
    (after a warm-up call, so imports and caches are not charged to the first method).
    """
    picked = [c for c in cases if any(k in c.name for k in SPEED_CASES)]
    methods = ("pfn+ensemble", "pfn", "ensemble", "mcmc")
    lines = [
        "| run | cut-off | "
        + " | ".join(f"{m} ms" for m in methods)
        + " | "
        + " | ".join(f"mcmc / {m}" for m in methods[:-1])
        + " |",
        "|---" * (2 + 2 * len(methods) - 1) + "|",
    ]
    for case in picked:
        until = case.curve.last_step
        first = int(case.curve.step[0])
        for frac in (0.2, 0.5):
            obs = case.curve.until(int(first + frac * (until - first)))
            ms: dict[str, float] = {}
            for method in methods:
                n = 1 if method == "mcmc" else repeats
                runcast.forecast(obs, until, method=method if method != "mcmc" else "pfn")
                times = []
                for _ in range(n):
                    t = time.perf_counter()
                    runcast.forecast(obs, until, method=method)
                    times.append(time.perf_counter() - t)
                ms[method] = 1e3 * float(np.median(times))
            lines.append(
                f"| {case.name} | {frac:.0%} | "
                + " | ".join(f"{ms[m]:.1f}" if m != "mcmc" else f"{ms[m]:.0f}" for m in methods)
                + " | "
                + " | ".join(f"{ms['mcmc'] / ms[m]:.0f}x" for m in methods[:-1])
                + " |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="mpl 100M + tdlt only, no MCMC")
    ap.add_argument("--no-mcmc", action="store_true")
    ap.add_argument(
        "--mcmc-grid",
        action="store_true",
        help="also run MCMC at smaller budgets (walkers x steps / burn-in) on every case",
    )
    ap.add_argument("--fresh", action="store_true", help="ignore bench/_cache/forecast_cutoff.pkl")
    ap.add_argument("--write-calibration", action="store_true")
    ap.add_argument(
        "--speed", action="store_true", help="only the side-by-side timing table (about 1 min)"
    )
    args = ap.parse_args()
    if args.speed:
        print("### Side by side, same process (median of 3 calls; MCMC 1 call)\n")
        print(speed_table(load_cases(False)))
        return
    t0 = time.time()
    cases = load_cases(args.quick) + ([] if args.quick else own_runs())
    print(f"{len(cases)} cases, loaded in {time.time() - t0:.1f}s", file=sys.stderr)
    # the forecasts are cached (the calibration is refitted from the records, not rerun):
    # rerunning after a calibration-only change costs seconds, not minutes
    cache: dict[tuple[str, float, str], Record] = {}
    if CACHE.exists() and not args.fresh:
        cache = pickle.loads(CACHE.read_bytes())
    with_sched = ["law", "law+pfn", "pfn"]
    blind = ["pfn+ensemble", "ensemble", "pfn", "powerlaw", "last"]
    budgets = [DOMHAN_MCMC] if not (args.quick or args.no_mcmc) else []
    if args.mcmc_grid and budgets:
        # emcee needs walkers >= 2 x dimensions (~30 here; Domhan et al. raise them to that too)
        budgets += [(100, 1000, 200), (64, 400, 200), (64, 100, 50)]
    recs: list[Record] = []
    for i, case in enumerate(cases):
        bl = Case(case.name, case.family, case.curve, None, case.group)
        for frac in CUTOFFS:
            todo = [(case, m, m if m != "pfn" else "pfn+schedule") for m in with_sched]
            todo += [(bl, m, m) for m in blind]
            for c, m, label in todo:
                key = (case.name, frac, label)
                if key not in cache:
                    cache[key] = evaluate_case(c, frac, m)
                recs.append(cache[key])
            for w, n, b in budgets:
                label = f"mcmc {w}x{n}/{b}"
                key = (case.name, frac, label)
                if key not in cache:
                    cache[key] = run_mcmc(bl, frac, w, n, b)
                    cache[key].method = label
                recs.append(cache[key])
        CACHE.parent.mkdir(exist_ok=True)
        CACHE.write_bytes(pickle.dumps(cache))
        print(f"[{i + 1}/{len(cases)}] {case.name} {time.time() - t0:.0f}s", file=sys.stderr)
    taus = cross_fitted_tau(recs)

    def tau_of(r: Record) -> float:
        return taus.get((r.case, r.method, r.fraction), 1.0)

    shown = ["law", "pfn+schedule", "law+pfn", "pfn+ensemble", "pfn", "ensemble"]
    shown += [f"mcmc {w}x{n}/{b}" for w, n, b in budgets] + ["powerlaw", "last"]
    groups = sorted({c.cv_group for c in cases})
    print(f"# forecast_cutoff: {len(cases)} runs x cut-offs {CUTOFFS}\n")
    print(
        "`law`, `law+pfn` and `pfn+schedule` use the known schedule; the others see only the "
        f"curve. Calibration cross-fitted leave-one-group-out over {len(groups)} groups: "
        f"{', '.join(groups)}.\n"
    )
    print(compact(recs, tau_of, shown))
    print("\n### coverage over all cut-offs (cross-fitted; group bootstrap)\n")
    print(pooled(recs, tau_of, shown))
    print("\n### coverage by family (cross-fitted)\n")
    print(by_family(recs, tau_of, ["law", "pfn+ensemble", "pfn", "pfn+schedule", "ensemble"]))
    print(table(summarize(recs, tau_of, by_fraction=True), "All families, by cut-off"))
    fails = [r for r in recs if r.failed]
    if fails:
        print(
            f"\n{len(fails)} forecasts failed, e.g. {fails[0].case} {fails[0].method}: {fails[0].failed}"
        )
    if not args.quick:
        print("\n### Side by side, same process (median of 3 calls; MCMC 1 call)\n")
        print(speed_table(cases))
    print(f"\ntotal bench time {time.time() - t0:.0f}s")
    if args.write_calibration:
        fitted = fit_calibration(recs)
        models, ranges = dict(fitted.models), dict(fitted.ranges)
        # method "mcmc" runs at Domhan et al.'s budget: it ships that budget's model; the other
        # budgets exist only in this bench
        domhan = "mcmc {}x{}/{}".format(*DOMHAN_MCMC)
        models["mcmc"], ranges["mcmc"] = models.get(domhan, ()), ranges.get(domhan, [])
        keep = [k for k, v in models.items() if v and not k.startswith("mcmc ")]
        cal = Calibration({k: models[k] for k in keep}, {k: ranges[k] for k in keep})
        TABLE_PATH.write_text(cal.to_json() + "\n")
        print(f"wrote {TABLE_PATH}: {cal.models}", file=sys.stderr)


if __name__ == "__main__":
    main()
