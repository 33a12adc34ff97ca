"""Proof of training: honest runs, the attack suite, costs and overheads (bench/README.md).

Three model families (an MLP and a CNN on scikit-learn's digits, a character transformer on the
bundled help text), each at the recorder's default checkpoint interval (100 steps):

- honest runs: plain, trained with 2 threads and verified with 1, and resumed mid-run;
- every attack of runcast.verify.attacks, verified with independent verifier draws;
- the replay tolerance's noise factor calibrated leave-one-family-out (twice the largest
  honest replay distance / measured rounding noise of the other families), each family judged
  with the factor of the others, with and without the tolerance floor;
- the recording overhead (`--part record`): the same training loop without the recorder and
  with it in proof formats 2 (session 9's recorder) and 3, in rotating blocks;
- the verification cost at the defaults on 20,000-step runs (200 segments) of each family:
  the whole of verify() in wall time against the recorded training time.

Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/verify.py [--quick] [--part ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runcast.verify import VerifyConfig, _checkpoint, train_with_proof, verify
from runcast.verify._commit import DataOrder
from runcast.verify._recorder import ProofRecorder, _copy_state
from runcast.verify._writer import CheckpointWriter
from runcast.verify.attacks import ATTACKS
from runcast.verify.examples import FAMILIES

BATCH = 32
CROSS = "2 threads, replayed on 1"


def tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="runcast-bench-"))


def honest_runs(family: str, steps: int, every: int, n_plain: int) -> list[dict[str, Any]]:
    rows = []
    kinds = ["plain"] * n_plain + ["2 threads"] * 2 + ["resumed"] * 2 + [CROSS] * 2
    for i, kind in enumerate(kinds):
        task = FAMILIES[family](None)
        kw = {"steps": steps, "batch_size": BATCH, "checkpoint_every": every}
        torch.set_num_threads(2 if kind in ("2 threads", CROSS) else 1)
        if kind == "resumed":
            folder = train_with_proof(task, tmp(), stop_after=steps // 2 + every // 3, **kw)
            torch.set_num_threads(1)
            train_with_proof(task, folder, resume=True, **kw)
        else:
            folder = train_with_proof(task, tmp(), **kw)
        torch.set_num_threads(1)
        threads = 1 if kind == CROSS else None  # None: the training's recorded count
        report = verify(
            folder, task, config=VerifyConfig(seed=i, measure_noise=True, threads=threads)
        )
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
                "distances": list(rp.get("distances", {}).values()),
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
        caught, failed, per_draw, ranks = 0, set(), [], []
        for d in range(draws):
            report = verify(folder, shipped, config=VerifyConfig(seed=100 + d, measure_noise=True))
            caught += not report.passed
            failed |= set(report.failed)
            rp = report.check("replay").numbers
            if name == "data_substitution" and rp.get("suspicion"):
                sus = np.array(rp["suspicion"])
                bad = len(sus) // 2  # the substituted segment
                ranks.append(int((sus > sus[bad]).sum()))
            per_draw.append(
                (
                    rp.get("largest_distance", math.nan),
                    rp.get("rounding_noise", math.nan),
                    sorted(set(report.failed) - {"replay"}),
                )
            )
        rows.append(
            {
                "family": family,
                "attack": name,
                "caught": caught,
                "draws": draws,
                "checks": sorted(failed),
                "per_draw": per_draw,
                "ranks": ranks,
            }
        )
    return rows


# format 2 as session 9 recorded it (a chain link per step, checkpoints serialised through
# safetensors' torch path) and format 3 (a link per segment, the numpy path: the same bytes)
FORMATS = (2, 3)
COPIED = "3, indices copied"


WRITER_CPU: list[float] = []  # the writer thread's CPU seconds, one entry per recorder


def _timed_work(self: CheckpointWriter) -> None:
    t0 = time.thread_time()
    try:
        _WORK(self)
    finally:
        WRITER_CPU.append(time.thread_time() - t0)


_WORK = CheckpointWriter._work
CheckpointWriter._work = _timed_work  # type: ignore[method-assign]


@contextlib.contextmanager
def _as_format(version: int) -> Iterator[None]:
    real = _checkpoint._numpy_views
    if version == 2:
        _checkpoint._numpy_views = lambda tensors: None  # session 9's serialisation
    try:
        yield
    finally:
        _checkpoint._numpy_views = real


def _recorder(task: Any, steps: int, version: int) -> ProofRecorder:
    rec = ProofRecorder(tmp(), task.dataset, steps=steps, batch_size=BATCH)
    rec.version = version  # format 2's writer chains every step; format 3's every segment
    return rec


def overhead(family: str, steps: int, blocks: int) -> dict[Any, Any]:
    """The same training loop without the recorder and with it in each proof format, in
    blocks of ``steps`` steps whose order rotates; each block's time per step against the
    recorder-free block of the same round (adjacent in time, so a change in the machine's load
    cancels), the median over rounds. Wall time, and the training thread's CPU time."""
    task = FAMILIES[family](None)
    order = DataOrder(b"\x01" * 32, n_records=len(task.dataset), batch_size=BATCH, holdout=0.1)
    # COPIED: format 3 with every batch's indices copied in record(), as before session 14
    # (the committed order's own batches are now kept as they are)
    variants: list[int | str | None] = [None, *FORMATS, COPIED]
    wall: dict[int | str | None, list[float]] = {v: [] for v in variants}
    cpu: dict[int | str | None, list[float]] = {v: [] for v in variants}
    writer: dict[int | str | None, list[float]] = {v: [] for v in variants}
    for b in range(blocks):
        k = b % len(variants)
        for v in variants[k:] + variants[:k]:
            torch.manual_seed(0)
            model = task.model()
            opt = task.optimizer(model)
            if v is not None:
                version = 3 if v == COPIED else int(v)
                with _as_format(version):
                    rec = _recorder(task, steps, version)
                    if v == COPIED:
                        rec.order.owns = lambda indices: False  # type: ignore[method-assign]
                    rec.start(model, opt)
                    t0, c0 = time.perf_counter(), time.thread_time()
                    for step, idx in rec.batches():
                        task.train_step(model, opt, task.batch(idx), step)
                        rec.record(step, idx, model, opt)
                    wall[v].append((time.perf_counter() - t0) / steps)
                    cpu[v].append((time.thread_time() - c0) / steps)
                    rec.finish()
                    writer[v].append(WRITER_CPU[-1] / steps)
            else:
                t0, c0 = time.perf_counter(), time.thread_time()
                for step in range(steps):
                    idx = order.batch(step)
                    task.train_step(model, opt, task.batch(idx), step)
                wall[v].append((time.perf_counter() - t0) / steps)
                cpu[v].append((time.thread_time() - c0) / steps)
    out: dict[str, Any] = {"base_ms": 1e3 * float(np.median(wall[None]))}
    base = np.array(cpu[None])
    for v in (*FORMATS, COPIED):
        out[v] = {
            "wall": float(np.median(np.array(wall[v]) / np.array(wall[None]))) - 1,
            "cpu": float(np.median(np.array(cpu[v]) / base)) - 1,
            # the writer's CPU counted as if it ran on the training's core: the most its GIL
            # can cost the training thread, steadier than wall time on a loaded machine
            "both": float(np.median((np.array(cpu[v]) + np.array(writer[v])) / base)) - 1,
            "writer_us": 1e6 * float(np.median(writer[v])),
        }
    return out


def record_cost(family: str, version: int, steps: int = 2000) -> dict[str, float]:
    """The recorder's own time per step (indices kept, checkpoint copies every 100 steps; the
    writer thread's hashing and writing overlap), measured alone, against one training step:
    wall time, and the training thread's CPU time (steadier on a loaded machine)."""
    task = FAMILIES[family](None)
    rec = _recorder(task, steps, version)
    rec.seed()
    model = task.model()
    opt = task.optimizer(model)
    task.train_step(model, opt, task.batch(rec.order.batch(0)), 0)  # optimizer state exists
    with _as_format(version):
        rec.start(model, opt)
        t0, c0 = time.perf_counter(), time.thread_time()
        for step, idx in rec.batches():
            rec.record(step, idx, model, opt)
        per, cpu = (time.perf_counter() - t0) / steps, (time.thread_time() - c0) / steps
        rec.finish()
    t0, c0 = time.perf_counter(), time.thread_time()
    for s in range(200):
        task.train_step(model, opt, task.batch(rec.order.batch(s)), s)
    step_s, step_cpu = (time.perf_counter() - t0) / 200, (time.thread_time() - c0) / 200
    return {
        "record_us": 1e6 * per,
        "step_ms": 1e3 * step_s,
        "share": per / step_s,
        "cpu_share": cpu / step_cpu,
    }


def budget(family: str, version: int, checkpoints: int = 10, repeats: int = 5) -> dict[str, float]:
    """The recorder's CPU per step, its two threads apart, each the least of ``repeats`` runs
    (a fixed workload's least time is its time on an idle core): the training thread's
    ``record()`` calls and checkpoint copies (the writer's queue stubbed out), and the writer
    thread's work on ``checkpoints`` real checkpoints while the training thread waits."""
    task = FAMILIES[family](None)
    steps = 100 * checkpoints
    train, write, step = [], [], []
    for _ in range(repeats):
        with _as_format(version):
            rec = _recorder(task, steps, version)
            rec.seed()
            model = task.model()
            opt = task.optimizer(model)
            task.train_step(model, opt, task.batch(rec.order.batch(0)), 0)
            rec.start(model, opt)
            writer = rec._writer
            assert writer is not None
            put = writer.put
            writer.put = lambda *args: None  # type: ignore[method-assign]
            c0 = time.thread_time()
            for s, idx in rec.batches():
                rec.record(s, idx, model, opt)
            train.append((time.thread_time() - c0) / steps)
            for k in range(checkpoints):
                payload = {
                    "model": {n: v.detach().clone() for n, v in model.state_dict().items()},
                    "optimizer": _copy_state(opt.state_dict()),
                    "step": 100 * (k + 1),
                }
                batches = [rec.order.batch(s) for s in range(100 * k, 100 * k + 100)]
                put(100 * (k + 1), payload, 100 * k, batches)
            writer.close()
            write.append(WRITER_CPU[-1] / steps)
        c0 = time.thread_time()
        for s in range(100):
            task.train_step(model, opt, task.batch(rec.order.batch(s)), s)
        step.append((time.thread_time() - c0) / 100)
    t, w, st = min(train), min(write), min(step)
    return {"step_us": 1e6 * st, "train_us": 1e6 * t, "writer_us": 1e6 * w, "share": (t + w) / st}


def record_tables(quick: bool, blocks: int, block_steps: int, family: str | None) -> None:
    """The recorder's cost in proof formats 2 and 3, side by side in one process."""
    fams = [family] if family else list(FAMILIES)
    print("## The recorder's own cost per step (alone, 2000 steps, checkpoint every 100)\n")
    print(
        "| family | format | recording (us/step) | training step (ms) | share of a step (wall) "
        "| share (training thread's CPU time) |"
    )
    print("|---|---|---|---|---|---|")
    for fam in fams:
        for v in FORMATS:
            c = record_cost(fam, v)
            print(
                f"| {fam} | {v} | {c['record_us']:.1f} | {c['step_ms']:.2f} | "
                f"{100 * c['share']:.2f}% | {100 * c['cpu_share']:.2f}% |",
                flush=True,
            )
    print(
        "\n## The recorder's CPU per step, least of 5 runs (an idle core's cost; the "
        "writer's CPU is the most its GIL can cost the training thread)\n"
    )
    print(
        "| family | format | training step CPU (us) | recorder on the training thread (us/step) "
        "| writer thread (us/step) | both, share of a step |"
    )
    print("|---|---|---|---|---|---|")
    for fam in fams:
        for v in FORMATS:
            c = budget(fam, v, repeats=2 if quick else 5)
            print(
                f"| {fam} | {v} | {c['step_us']:.0f} | {c['train_us']:.2f} | "
                f"{c['writer_us']:.2f} | {100 * c['share']:.2f}% |",
                flush=True,
            )
    blocks, block_steps = (3, 300) if quick else (blocks, block_steps)
    print(
        f"\n## Recording overhead: the same loop without and with the recorder ({blocks} "
        f"rounds of {block_steps}-step blocks, order rotated; median of the paired ratios)\n"
    )
    print(
        "| family | step without proof (ms) | format | wall | training thread CPU "
        "| writer thread CPU (us/step) | training + writer CPU |"
    )
    print("|---|---|---|---|---|---|---|")
    for fam in fams:
        o = overhead(fam, block_steps, blocks)
        for v in (*FORMATS, COPIED):
            print(
                f"| {fam} | {o['base_ms']:.3f} | {v} | {100 * o[v]['wall']:+.2f}% | "
                f"{100 * o[v]['cpu']:+.2f}% | {o[v]['writer_us']:.2f} | "
                f"{100 * o[v]['both']:+.2f}% |",
                flush=True,
            )


def lofo(
    honest: list[dict[str, Any]], attacks: list[dict[str, Any]], floor: float
) -> list[dict[str, Any]]:
    out = []
    cfg = VerifyConfig()
    for fam in [f for f in FAMILIES if any(r["family"] == f for r in honest)]:
        ratios = [
            r["distance"] / max(r["noise"], 1e-300)
            for r in honest
            if r["family"] != fam and math.isfinite(r["distance"])
        ]
        factor = 2 * max(ratios)

        def tol(noise: float, factor: float = factor) -> float:
            return min(cfg.replay_tolerance_cap, max(floor, factor * noise))

        mine = [r for r in honest if r["family"] == fam]
        alarms = sum(r["distance"] > tol(r["noise"]) for r in mine)
        # every attack draw, judged with this family's held-out tolerance: caught by another
        # check, or by a replay distance beyond the tolerance
        draws = [d for a in attacks if a["family"] == fam for d in a["per_draw"]]
        kept = sum(bool(other) or dist > tol(noise) for dist, noise, other in draws)
        out.append(
            {
                "family": fam,
                "factor": factor,
                "honest": len(mine),
                "alarms": alarms,
                "draws": len(draws),
                "still_caught": kept,
                "max_honest_tol": max(tol(r["noise"]) for r in mine),
                "max_honest_dist": max(r["distance"] for r in mine),
                "max_ratio": max(r["distance"] / max(r["noise"], 1e-300) for r in mine),
            }
        )
    return out


def long_run(family: str, steps: int, every: int, config: dict[str, Any]) -> dict[str, Any]:
    task = FAMILIES[family](config)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    folder = train_with_proof(task, tmp(), steps=steps, batch_size=BATCH, checkpoint_every=every)
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = verify(folder, task, config=VerifyConfig(seed=7))
    outer = time.perf_counter() - t0  # all of verify(), reading the manifest included
    return {
        "config": config,
        "outer_s": outer,
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
        "noise": report.check("replay").numbers.get("rounding_noise"),
    }


LONG = [
    ("digits_mlp", {"hidden": 16}),
    ("digits_cnn", {"channels": 4}),
    ("char_transformer", {"width": 16, "context": 16}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer, shorter runs (a smoke test)")
    ap.add_argument("--part", choices=["all", "record", "suite", "long", "rate"], default="all")
    ap.add_argument("--blocks", type=int, default=12, help="record: rounds of blocks")
    ap.add_argument("--block-steps", type=int, default=1000, help="record: steps per block")
    ap.add_argument(
        "--family",
        choices=sorted(FAMILIES),
        help="suite/rate: this family only (run the "
        "families in parallel processes, then --merge their --rows files)",
    )
    ap.add_argument("--rows", help="suite: write the honest and attack rows (JSON) here")
    ap.add_argument("--merge", nargs="+", help="print the suite's tables from --rows files")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.time()
    if args.merge:
        rows = [json.loads(Path(f).read_text()) for f in args.merge]
        tables(
            [h for r in rows for h in r["honest"]],
            [a for r in rows for a in r["attacks"]],
            rows[0]["steps"],
            rows[0]["every"],
            rows[0]["draws"],
        )
        return
    if args.part in ("all", "suite"):
        suite(args.quick, args.family, args.rows)
    if args.part in ("all", "record"):
        record_tables(args.quick, args.blocks, args.block_steps, args.family)
    if args.part in ("all", "long"):
        long_table(args.quick)
    if args.part in ("all", "rate"):
        rate_table(args.quick, args.family)
    print(f"\n(total {time.time() - t_start:.0f} s)")


def long_table(quick: bool) -> None:
    huge = 2000 if quick else 20_000
    print(
        f"\n## Verification cost at the defaults ({huge} steps, a checkpoint every 100: "
        f"{huge // 100} segments)\n"
    )
    print(
        "| family (config) | passed | training (s) | verify() wall (s) | time share "
        "| work share | segments replayed |"
    )
    print("|---|---|---|---|---|---|---|")
    for fam, config in LONG:
        r = long_run(fam, huge, 100, config)
        print(
            f"| {fam} {r['config']} | {r['passed']} | {r['train_s']:.1f} | {r['outer_s']:.2f} | "
            f"{100 * r['outer_s'] / r['train_s']:.1f}% | {100 * r['work']:.1f}% | "
            f"{len(r['replayed'] or [])}"
            + (" + 1 in float64" if r["noise"] is not None else "")
            + " |",
            flush=True,
        )


def rate_table(quick: bool, family: str | None = None) -> None:
    """How often one verification catches a forgery no signal points at: one substituted
    segment on the digits MLP, many independent verifier draws on the same proof."""
    steps, n = (1500, 4) if not quick else (300, 2)
    draws = 6 if quick else 20
    print(f"\n## One substituted segment: {draws} verifier draws per proof\n")
    print("| family | proof | segments | caught | the substituted segment replayed as |")
    print("|---|---|---|---|---|")
    fams = [family] if family else ["digits_mlp", "digits_cnn"]
    for fam, k in [(f, k) for f in fams for k in range(n)]:
        task = FAMILIES[fam](None)
        nonce = bytes([k + 1]) * 32
        folder, shipped = ATTACKS["data_substitution"](
            task, tmp(), steps=steps, batch_size=BATCH, checkpoint_every=100, nonce=nonce
        )
        bad = steps // 100 // 2
        caught, why = 0, {"largest update": 0, "suspicious": 0, "random": 0}
        for d in range(draws):
            report = verify(folder, shipped, config=VerifyConfig(seed=1000 + d))
            caught += not report.passed
            rp = report.check("replay").numbers
            segs = rp.get("segments", [])
            if bad in segs:
                norms = np.array(rp["update_norms"])
                sus = np.array(rp["suspicion"])
                n_large = max(1, len(segs) // 3)
                n_sus = -(-(len(segs) - n_large) // 2)
                if bad in np.argsort(-norms, kind="stable")[:n_large]:
                    why["largest update"] += 1
                elif bad in np.argsort(-sus, kind="stable")[: n_large + n_sus]:
                    why["suspicious"] += 1
                else:
                    why["random"] += 1
        print(
            f"| {fam} | nonce {k + 1} | {steps // 100} | {caught}/{draws} | "
            + ", ".join(f"{v} {k_}" for k_, v in why.items())
            + " |",
            flush=True,
        )


def suite(quick: bool, family: str | None, rows: str | None) -> None:
    steps, every, plain, draws = (300, 50, 1, 1) if quick else (1500, 100, 3, 2)
    if family is not None:  # one family's runs, for a later --merge
        honest = honest_runs(family, steps, every, plain)
        attacks = attack_runs(family, steps, every, draws)
        if rows:
            Path(rows).write_text(
                json.dumps(
                    {
                        "honest": honest,
                        "attacks": attacks,
                        "steps": steps,
                        "every": every,
                        "draws": draws,
                    }
                )
            )
        tables(honest, attacks, steps, every, draws)
        return
    honest, attacks = [], []
    for fam in FAMILIES:
        honest += honest_runs(fam, steps, every, plain)
        attacks += attack_runs(fam, steps, every, draws)
        print(f"({fam} done)", flush=True)
    tables(honest, attacks, steps, every, draws)


def tables(
    honest: list[dict[str, Any]], attacks: list[dict[str, Any]], steps: int, every: int, draws: int
) -> None:
    fams = [f for f in FAMILIES if any(r["family"] == f for r in honest)]
    print(f"\n## Honest runs ({steps} steps, a checkpoint every {every}; defaults)\n")
    print(
        "| family | kind | runs | false alarms | largest replay distance | rounding noise "
        "| distance / noise | largest tolerance | mean memorisation AUC | median memo p "
        "| work share |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for fam in fams:
        for kind in ("plain", "2 threads", "resumed", CROSS):
            rs = [r for r in honest if r["family"] == fam and r["kind"] == kind]
            print(
                f"| {fam} | {kind} | {len(rs)} | {sum(not r['passed'] for r in rs)} | "
                f"{max(r['distance'] for r in rs):.2g} | "
                f"{min(r['noise'] for r in rs):.2g}-{max(r['noise'] for r in rs):.2g} | "
                f"{max(r['distance'] / max(r['noise'], 1e-300) for r in rs):.2g} | "
                f"{max(r['tolerance'] for r in rs):.2g} | "
                f"{np.mean([r['mean_auc'] for r in rs]):.3f} | "
                f"{np.median([r['memo_p'] for r in rs]):.2g} | "
                f"{100 * np.median([r['work'] for r in rs]):.1f}% |"
            )
    bad = [r for r in honest if not r["passed"]]
    matched = [r for r in honest if r["kind"] != CROSS]
    print(
        f"\nfalse alarms: {sum(not r['passed'] for r in matched)} of {len(matched)} honest runs "
        f"replayed on the training's thread count; {len(bad)} of {len(honest)} with the "
        f"'{CROSS}' runs" + "".join(f"\n- {r['family']} {r['kind']}: {r['failed']}" for r in bad)
    )

    print(f"\n## Attacks ({draws} verifier draws each; defaults)\n")
    print("| attack | " + " | ".join(fams) + " |")
    print("|---|" + "---|" * len(fams))
    for name in ATTACKS:
        cells = []
        for fam in fams:
            a = next(x for x in attacks if x["family"] == fam and x["attack"] == name)
            cells.append(f"{a['caught']}/{a['draws']} ({', '.join(a['checks']) or '-'})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        "\nthe substituted segment's place in the suspicion ranking (0: first), per draw: "
        + "; ".join(
            f"{a['family']} {a['ranks']}" for a in attacks if a["attack"] == "data_substitution"
        )
    )
    print(
        "\nwhat limits the tolerance cap: per family, the attack draws that only the replay "
        "caught, lowest replay distance first (distance / float64 noise)"
    )
    for fam in fams:
        low = sorted(
            (dist, noise, a["attack"])
            for a in attacks
            if a["family"] == fam
            for dist, noise, other in a["per_draw"]
            if not other
        )[:3]
        print(
            f"- {fam}: "
            + "; ".join(
                f"{name} {dist:.3g} ({dist / max(noise or 0, 1e-300):.3g})"
                for dist, noise, name in low
            )
        )
    n_caught = sum(a["caught"] for a in attacks)
    n_draws = sum(a["draws"] for a in attacks)
    print(
        f"\ncaught: {n_caught} of {n_draws} draws; (attack, family) cases caught in every "
        f"draw: {sum(a['caught'] == a['draws'] for a in attacks)} of {len(attacks)}"
    )

    floor = VerifyConfig().replay_tolerance
    for fl, title in ((floor, f"with the floor {floor:g}"), (0.0, "without a floor")):
        print(f"\n## Replay tolerance, leave-one-family-out ({title})\n")
        print(
            "| held-out family | noise factor (2 x the others' largest distance / noise) "
            "| honest runs | false alarms | its largest distance / noise | largest honest "
            "distance | its largest tolerance | attack draws still caught |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in lofo(honest, attacks, fl) if len(fams) > 1 else []:
            print(
                f"| {r['family']} | {r['factor']:.3g} | {r['honest']} | {r['alarms']} | "
                f"{r['max_ratio']:.3g} | {r['max_honest_dist']:.2g} | "
                f"{r['max_honest_tol']:.2g} | {r['still_caught']}/{r['draws']} |"
            )
    ratios = [r["distance"] / max(r["noise"], 1e-300) for r in honest]
    print(
        f"\npooled: largest honest distance / noise {max(ratios):.3g} (2x: "
        f"{2 * max(ratios):.3g}); the default noise factor is {VerifyConfig().noise_factor:g}"
    )


if __name__ == "__main__":
    main()
