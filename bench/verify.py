"""Proof of training: honest runs, the attack suite, costs and overheads (bench/README.md).

Three model families (an MLP and a CNN on scikit-learn's digits, a character transformer on the
bundled help text), each:

- honest runs: plain, trained with 2 threads and verified with 1, and resumed mid-run;
- every attack of runcast.verify.attacks, verified with three independent verifier draws;
- the replay tolerance's noise factor calibrated leave-one-family-out (twice the largest
  honest replay distance / measured replay noise of the other families), each family judged
  with the factor of the others;
- the recording overhead, side by side: the same training loop with and without the recorder,
  in alternating blocks;
- the verification cost at the defaults on a 20,000-step run (200 segments).

Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/verify.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runcast.verify import VerifyConfig, train_with_proof, verify
from runcast.verify._commit import DataOrder
from runcast.verify._recorder import ProofRecorder
from runcast.verify.attacks import ATTACKS
from runcast.verify.examples import FAMILIES

BATCH = 32


def tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="runcast-bench-"))


def honest_runs(family: str, steps: int, every: int, n_plain: int) -> list[dict[str, Any]]:
    rows = []
    kinds = ["plain"] * n_plain + ["2 threads"] * 2 + ["resumed"] * 2
    for i, kind in enumerate(kinds):
        task = FAMILIES[family](None)
        kw = {"steps": steps, "batch_size": BATCH, "checkpoint_every": every}
        torch.set_num_threads(2 if kind == "2 threads" else 1)
        if kind == "resumed":
            folder = train_with_proof(task, tmp(), stop_after=steps // 2 + every // 3, **kw)
            torch.set_num_threads(1)
            train_with_proof(task, folder, resume=True, **kw)
        else:
            folder = train_with_proof(task, tmp(), **kw)
        torch.set_num_threads(1)
        report = verify(folder, task, config=VerifyConfig(seed=i))
        rp = report.check("replay").numbers
        rows.append(
            {
                "family": family,
                "kind": kind,
                "passed": report.passed,
                "failed": report.failed,
                "distance": rp.get("largest_distance", math.nan),
                "noise": rp.get("rounding_noise", math.nan),
                "tolerance": rp.get("tolerance", math.nan),
                "mean_auc": report.check("memorisation").numbers.get("mean_auc", math.nan),
                "memo_p": report.check("memorisation").numbers.get("combined_p_value", math.nan),
                "cost": report.cost_share,
                "work": report.work_share,
            }
        )
    return rows


def attack_runs(family: str, steps: int, every: int, draws: int) -> list[dict[str, Any]]:
    rows = []
    for name, attack in ATTACKS.items():
        task = FAMILIES[family](None)
        folder, shipped = attack(task, tmp(), steps=steps, batch_size=BATCH, checkpoint_every=every)
        caught, failed, dist, noise = 0, set(), [], []
        for d in range(draws):
            report = verify(folder, shipped, config=VerifyConfig(seed=100 + d))
            caught += not report.passed
            failed |= set(report.failed)
            rp = report.check("replay").numbers
            dist.append(rp.get("largest_distance", math.nan))
            noise.append(rp.get("rounding_noise", math.nan))
        rows.append(
            {
                "family": family,
                "attack": name,
                "caught": caught,
                "draws": draws,
                "checks": sorted(failed),
                "distance": float(np.nanmin(dist))
                if not all(math.isnan(x) for x in dist)
                else math.nan,
                "noise": float(np.nanmax(noise))
                if not all(math.isnan(x) for x in noise)
                else math.nan,
                "replay_only": failed == {"replay"},
            }
        )
    return rows


def overhead(family: str, steps: int, blocks: int) -> dict[str, float]:
    """Seconds per step of the same loop with and without the recorder, alternating blocks."""
    task = FAMILIES[family](None)
    order = DataOrder(b"\x01" * 32, n_records=len(task.dataset), batch_size=BATCH, holdout=0.1)
    base_t, rec_t = [], []
    for b in range(blocks):
        for with_proof in (False, True) if b % 2 == 0 else (True, False):
            torch.manual_seed(0)
            model = task.model()
            opt = task.optimizer(model)
            if with_proof:
                rec = ProofRecorder(tmp(), task.dataset, steps=steps, batch_size=BATCH)
                rec.start(model, opt)
                t0 = time.perf_counter()
                for step, idx in rec.batches():
                    task.train_step(model, opt, task.batch(idx), step)
                    rec.record(step, idx, model, opt)
                rec_t.append((time.perf_counter() - t0) / steps)
                rec.finish()
            else:
                t0 = time.perf_counter()
                for step in range(steps):
                    idx = order.batch(step)
                    task.train_step(model, opt, task.batch(idx), step)
                base_t.append((time.perf_counter() - t0) / steps)
    base, rec = float(np.median(base_t)), float(np.median(rec_t))
    return {"base_ms": 1e3 * base, "rec_ms": 1e3 * rec, "overhead": rec / base - 1}


def record_cost(family: str, steps: int = 2000) -> dict[str, float]:
    """The recorder's own time per step (order, chain, checkpoint copies every 100 steps),
    measured alone, against one training step: less noisy than the loop difference above on a
    shared machine."""
    task = FAMILIES[family](None)
    rec = ProofRecorder(tmp(), task.dataset, steps=steps, batch_size=BATCH)
    rec.seed()
    model = task.model()
    opt = task.optimizer(model)
    task.train_step(model, opt, task.batch(rec.order.batch(0)), 0)  # optimizer state exists
    rec.start(model, opt)
    t0 = time.perf_counter()
    for step, idx in rec.batches():
        rec.record(step, idx, model, opt)
    per = (time.perf_counter() - t0) / steps
    rec.finish()
    t0 = time.perf_counter()
    for s in range(50):
        task.train_step(model, opt, task.batch(rec.order.batch(s)), s)
    step_s = (time.perf_counter() - t0) / 50
    return {"record_us": 1e6 * per, "step_ms": 1e3 * step_s, "share": per / step_s}


def lofo(honest: list[dict[str, Any]], attacks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    cfg = VerifyConfig()
    for fam in FAMILIES:
        ratios = [
            r["distance"] / max(r["noise"], 1e-300)
            for r in honest
            if r["family"] != fam and math.isfinite(r["distance"])
        ]
        factor = 2 * max(ratios)

        def tol(noise: float, factor: float = factor) -> float:
            return min(cfg.replay_tolerance_cap, max(cfg.replay_tolerance, factor * noise))

        mine = [r for r in honest if r["family"] == fam]
        alarms = sum(r["distance"] > tol(r["noise"]) for r in mine)
        # attacks caught by replay alone: still caught at this family's held-out tolerance?
        replay_only = [a for a in attacks if a["family"] == fam and a["replay_only"]]
        kept = sum(a["distance"] > tol(a["noise"]) for a in replay_only)
        out.append(
            {
                "family": fam,
                "factor": factor,
                "honest": len(mine),
                "alarms": alarms,
                "replay_attacks": len(replay_only),
                "still_caught": kept,
                "max_honest_tol": max(tol(r["noise"]) for r in mine),
                "max_honest_dist": max(r["distance"] for r in mine),
            }
        )
    return out


def long_run(family: str, steps: int, every: int, config: dict[str, Any]) -> dict[str, Any]:
    task = FAMILIES[family](config)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    folder = train_with_proof(task, tmp(), steps=steps, batch_size=BATCH, checkpoint_every=every)
    wall = time.perf_counter() - t0
    report = verify(folder, task, config=VerifyConfig(seed=7))
    return {
        "family": family,
        "steps": steps,
        "every": every,
        "passed": report.passed,
        "train_s": report.training_seconds,
        "verify_s": report.verify_seconds,
        "cost": report.cost_share,
        "work": report.work_share,
        "wall": wall,
        "replayed": report.check("replay").numbers.get("segments"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer, shorter runs (a smoke test)")
    ap.add_argument("--record-cost", action="store_true", help="only the recorder's own cost")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("## The recorder's own cost per step (alone, 2000 steps, checkpoint every 100)\n")
    print("| family | recording (us/step) | training step (ms) | share of a step |")
    print("|---|---|---|---|")
    for fam in FAMILIES:
        c = record_cost(fam)
        print(
            f"| {fam} | {c['record_us']:.1f} | {c['step_ms']:.2f} | {100 * c['share']:.2f}% |",
            flush=True,
        )
    if args.record_cost:
        return
    steps, every, plain, draws = (240, 20, 1, 1) if args.quick else (300, 15, 3, 1)
    huge = 2000 if args.quick else 20_000
    t_start = time.time()

    print("\n## Recording overhead (same loop, alternating blocks, median s/step)\n")
    print("| family | without proof (ms/step) | with proof (ms/step) | overhead |")
    print("|---|---|---|---|")
    for fam in FAMILIES:
        o = overhead(fam, 200 if args.quick else 300, 2)
        print(
            f"| {fam} | {o['base_ms']:.3f} | {o['rec_ms']:.3f} | {100 * o['overhead']:+.1f}% |",
            flush=True,
        )

    honest, attacks = [], []
    for fam in FAMILIES:
        honest += honest_runs(fam, steps, every, plain)
        attacks += attack_runs(fam, steps, every, draws)
    print(f"\n## Honest runs ({steps} steps, a checkpoint every {every}; defaults)\n")
    print(
        "| family | kind | runs | false alarms | largest replay distance | largest tolerance "
        "| mean memorisation AUC | median memo p | cost (time) | work share |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for fam in FAMILIES:
        for kind in ("plain", "2 threads", "resumed"):
            rs = [r for r in honest if r["family"] == fam and r["kind"] == kind]
            print(
                f"| {fam} | {kind} | {len(rs)} | {sum(not r['passed'] for r in rs)} | "
                f"{max(r['distance'] for r in rs):.2g} | {max(r['tolerance'] for r in rs):.2g} | "
                f"{np.mean([r['mean_auc'] for r in rs]):.3f} | "
                f"{np.median([r['memo_p'] for r in rs]):.2g} | "
                f"{100 * np.median([r['cost'] for r in rs]):.0f}% | "
                f"{100 * np.median([r['work'] for r in rs]):.1f}% |"
            )
    bad = [r for r in honest if not r["passed"]]
    print(
        f"\nfalse alarms: {len(bad)} of {len(honest)} honest runs"
        + "".join(f"\n- {r['family']} {r['kind']}: {r['failed']}" for r in bad)
    )

    print(f"\n## Attacks ({draws} verifier draws each; defaults)\n")
    print("| attack | " + " | ".join(FAMILIES) + " |")
    print("|---|" + "---|" * len(FAMILIES))
    for name in ATTACKS:
        cells = []
        for fam in FAMILIES:
            a = next(x for x in attacks if x["family"] == fam and x["attack"] == name)
            cells.append(f"{a['caught']}/{a['draws']} ({', '.join(a['checks']) or '-'})")
        print(f"| {name} | " + " | ".join(cells) + " |")

    print("\n## Replay tolerance, leave-one-family-out\n")
    print(
        "| held-out family | noise factor (from the others) | honest runs | false alarms | "
        "largest honest distance | its largest tolerance | replay-caught attacks still caught |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in lofo(honest, attacks):
        print(
            f"| {r['family']} | {r['factor']:.3g} | {r['honest']} | {r['alarms']} | "
            f"{r['max_honest_dist']:.2g} | {r['max_honest_tol']:.2g} | "
            f"{r['still_caught']}/{r['replay_attacks']} |"
        )

    print(
        f"\n## Verification cost at the defaults ({huge} steps, a checkpoint every 100, "
        "digits MLP with 16 hidden units)\n"
    )
    print("| family | steps | passed | training (s) | verification (s) | time share | work share |")
    print("|---|---|---|---|---|---|---|")
    rows = [long_run("digits_mlp", huge, 100, {"hidden": 16})]
    for r in rows:
        print(
            f"| {r['family']} | {r['steps']} | {r['passed']} | {r['train_s']:.1f} | "
            f"{r['verify_s']:.2f} | {100 * r['cost']:.1f}% | {100 * r['work']:.1f}% |",
            flush=True,
        )
    print(f"\n(total {time.time() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
