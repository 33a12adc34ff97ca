"""Forecast the rest of real runs from their first 10-70%: error, CRPS, coverage, time.

Question: how well does ``runcast.forecast`` predict where a run ends, with and without its LR
schedule, against the baselines (last smoothed value, least-squares power law, emcee MCMC over
the parametric ensemble) measured in the same run?

Data: ../shared/data (tdlt 3 per-step training curves with recorded LR; pythia 5 per-step
training curves, cosine (160m-4 is left out: its log starts mid-run at step "0", so its schedule
position is unknown); mpl 27 validation curves with their schedules). Truth for the final value:
the mean over the last 1% of steps; coverage: the share of the remaining observed (per-step)
values, up to 100 per case, inside the 80%/95% bands of the forecast with observation noise.

Calibration is honest: each family's numbers use discrepancy scales fitted on the *other*
families only (leave-one-family-out). ``--write-calibration`` fits the table on all families and
writes the one runcast ships.

    python bench/forecast_cutoff.py                  # full run (~5-10 min on 2 cores)
    python bench/forecast_cutoff.py --quick          # mpl 100M + tdlt only, no MCMC
    python bench/forecast_cutoff.py --write-calibration
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import runcast
from runcast.forecast._calibrate import TABLE_PATH, Calibration
from runcast.forecast._eval import CUTOFFS, Case, Record, evaluate_case, fit_calibration, summarize

DATA = Path(
    os.environ.get(
        "RUNCAST_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
).resolve()


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
        out.append(Case(f, e["family"], curve, sched))
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
        cases.append(Case(f"runcast/mlp-{kind}", "runcast", store.curve(rid, "loss"), sched))
    return cases


def lofo_tau(records: list[Record]) -> dict[tuple[str, str, float], float]:
    """Leave-one-family-out: each record's tau, from a calibration fitted without its family."""
    out = {}
    for fam in sorted({r.family for r in records}):
        cal = fit_calibration([r for r in records if r.family != fam])
        for r in records:
            if r.family == fam:
                out[(r.case, r.method, r.fraction)] = cal.tau(r.method, r.observed)
    return out


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-mcmc", action="store_true")
    ap.add_argument("--mcmc-steps", type=int, default=400)
    ap.add_argument("--write-calibration", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    cases = load_cases(args.quick) + ([] if args.quick else own_runs())
    print(f"{len(cases)} cases, loaded in {time.time() - t0:.1f}s", file=sys.stderr)
    with_sched = ["law", "ensemble", "powerlaw", "last"]
    blend = []
    no_sched = ["ensemble", "powerlaw", "last"]
    try:
        import runcast.forecast.pfn  # noqa: F401

        no_sched.append("pfn")
        blend = ["law+pfn"]
    except ImportError:
        pass
    mcmc = not (args.quick or args.no_mcmc)
    recs: list[Record] = []
    for i, case in enumerate(cases):
        for frac in CUTOFFS:
            for m in with_sched + blend:
                recs.append(evaluate_case(case, frac, m))
            if mcmc:
                r = evaluate_case_mcmc(case, frac, args.mcmc_steps)
                recs.append(r)
            if "pfn" in no_sched:
                blind = Case(case.name, case.family, case.curve, None)
                recs.append(evaluate_case(blind, frac, "pfn"))
                r = evaluate_case(case, frac, "pfn")  # H7's PFN conditioned on the schedule
                r.method = "pfn+schedule"
                recs.append(r)
        print(f"[{i + 1}/{len(cases)}] {case.name} {time.time() - t0:.0f}s", file=sys.stderr)
    taus = lofo_tau(recs)

    def tau_of(r: Record) -> float:
        return taus.get((r.case, r.method, r.fraction), 1.0)

    print(
        f"# forecast_cutoff: {len(cases)} runs x cut-offs {CUTOFFS}; leave-one-family-out calibration\n"
    )
    print(
        "`law`, `law+pfn` and `pfn+schedule` use the known schedule; the others see only the curve."
    )
    print(table(summarize(recs, tau_of, by_fraction=True), "All families, by cut-off"))
    for fam in sorted({r.family for r in recs}):
        sub = [r for r in recs if r.family == fam]
        print(table(summarize(sub, tau_of, by_fraction=False), f"{fam}: all cut-offs"))
    fails = [r for r in recs if r.failed]
    if fails:
        print(
            f"\n{len(fails)} forecasts failed, e.g. {fails[0].case} {fails[0].method}: {fails[0].failed}"
        )
    if mcmc:
        print(f"\nMCMC: emcee, 64 walkers x {args.mcmc_steps} steps, half burn-in, 200 paths.")
    print(f"\ntotal bench time {time.time() - t0:.0f}s")
    if args.write_calibration:
        cal = fit_calibration(recs)
        TABLE_PATH.write_text(cal.to_json() + "\n")
        print(f"wrote {TABLE_PATH}: {Calibration(cal.table).table}", file=sys.stderr)


def evaluate_case_mcmc(case: Case, frac: float, steps: int) -> Record:
    from runcast.forecast import _baselines

    orig = _baselines.RAW["mcmc"]
    return (
        evaluate_case(case, frac, "mcmc") if steps == 800 else _with_steps(case, frac, steps, orig)
    )


def _with_steps(case: Case, frac: float, steps: int, orig) -> Record:
    from runcast.forecast import _api

    _api._load_methods()
    _api.RAW_METHODS["mcmc"] = lambda p, s, **kw: orig(p, s, n_steps=steps, **kw)
    try:
        return evaluate_case(case, frac, "mcmc")
    finally:
        _api.RAW_METHODS["mcmc"] = orig


if __name__ == "__main__":
    main()
