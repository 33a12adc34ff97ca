"""Batch size: the noise-scale estimator, the critical batch size over training, batch-size warmup.

Four questions, each answered side by side in one run (single thread, CPU):

1. Noise scale: on linear regression, where the per-example gradients and hence tr(Sigma) and
   |G|^2 are known exactly, how far is GradientNoiseScale from the truth after 1,000 updates
   (batches of 16 and 256, noise scales 25-250), with its default horizon and as a plain mean?
2. CBS over training: measure_cbs at several checkpoints of a character transformer (the
   runcast demo model on its shipped text), 3 seeds, with the noise scale from gradient
   accumulation on the same axes (figure: bench/batch_size_cbs.png).
3. Warmup: the fixed small batch, the fixed large batch and batch-size warmup driven by the
   measured CBS (and by the noise scale) on the same examples; final held-out loss and steps.
4. Cost: measure_cbs at its documented defaults against the run it measures (examples, seconds).

``--select M1,M2,...`` instead runs only 3a: the warmup from the noise scale x each multiplier
on seeds 3-5 (not the judged 0-2), to choose the multiplier on other seeds than the judged ones.
``--tolerances T1,T2,... --seeds S`` instead runs only 3d: the warmup following the measured CBS
at each tolerance (the CBS definition's free constant), on seeds 3-5 to choose it, on 0-2 to judge.

Command: ``OMP_NUM_THREADS=1 .venv/bin/python bench/batch_size.py [--quick] [--steps N
--checkpoints A,B,C --figure PNG] [--select 0.5,0.25,0.125,0.0625] [--tolerances
0.01,0.005 --seeds 3,4,5 --steps 5000 --checkpoints 250,1000,1500,2000,3000]``
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runcast.demo._model import CharTransformer, ModelConfig
from runcast.demo._text import CharData, load_text
from runcast.integrations.torch import TrainingMonitor
from runcast.steer import BatchSizeWarmup, GradientNoiseScale, measure_cbs

HERE = Path(__file__).parent
FIGURE = HERE / "batch_size_cbs.png"


# --- 1. the estimator against an exact noise scale ----------------------------------------------
def linear_regression_case(target: float, seed: int) -> tuple[np.ndarray, float]:
    """Per-example gradients of least squares at a point whose noise scale is about ``target``,
    and the exact tr(Sigma)/|G|^2 over the finite data (batches drawn with replacement)."""
    rng = np.random.default_rng(seed)
    d, n, sigma = 16, 50_000, 1.0
    x = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d)
    y = x @ w_true + sigma * rng.standard_normal(n)
    # Gaussian x: tr(Sigma) = d (|r|^2 + sigma^2) + |r|^2, |G|^2 = |r|^2 at residual r
    r2 = d * sigma**2 / (target - d - 1)
    r = rng.standard_normal(d)
    w = w_true + r * math.sqrt(r2) / np.linalg.norm(r)
    grads = x * (x @ w - y)[:, None]
    g = grads.mean(axis=0)
    trace = float(((grads - g) ** 2).sum(axis=1).mean())
    return grads, trace / float(g @ g)


def estimator_table(seeds: int) -> list[str]:
    rows = [
        "| noise scale (exact) | horizon 500 (default): error, median / worst of "
        f"{seeds} seeds | plain mean (horizon=None): median / worst |",
        "|---:|---:|---:|",
    ]
    worst_all = 0.0
    for target in (25, 50, 100, 250):
        errs: dict[str, list[float]] = {"ema": [], "plain": []}
        truth = 0.0
        for seed in range(seeds):
            grads, truth = linear_regression_case(target, seed)
            rng = np.random.default_rng(1000 + seed)
            ema, plain = GradientNoiseScale(), GradientNoiseScale(horizon=None)
            for _ in range(1000):
                idx = rng.integers(0, len(grads), size=256)
                big = grads[idx].mean(axis=0)
                small = grads[idx[:16]].mean(axis=0)
                for est in (ema, plain):
                    est.update(float(small @ small), float(big @ big), 16, 256)
            errs["ema"].append(abs(ema.b_simple / truth - 1))
            errs["plain"].append(abs(plain.b_simple / truth - 1))
        worst_all = max(worst_all, max(errs["ema"]))
        rows.append(
            f"| {truth:.1f} | {statistics.median(errs['ema']):.1%} / {max(errs['ema']):.1%} | "
            f"{statistics.median(errs['plain']):.1%} / {max(errs['plain']):.1%} |"
        )
    rows.append("")
    rows.append(f"Goal: within 10% after 1,000 updates: worst error {worst_all:.1%} "
                f"({'met' if worst_all < 0.10 else 'NOT met'}).")
    return rows


# --- the character transformer ------------------------------------------------------------------
DATA = CharData.from_text(load_text())
CONTEXT = 16
BASE_LR = 3e-3
BASE_BATCH = 4  # sequences of CONTEXT characters
MICRO = 2  # micro-batch of the noise scale's two-batch pair (2 micro-batches per step)


def make_model(seed: int) -> tuple[CharTransformer, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = CharTransformer(ModelConfig(vocab=DATA.vocab, context=CONTEXT, width=32, heads=4,
                                        layers=1))
    return model, torch.optim.Adam(model.parameters(), lr=BASE_LR)


EVAL_RNG = np.random.default_rng(12345)
EVAL = DATA.batch("val", 512, CONTEXT, EVAL_RNG)


def evaluate(model: Any, n: int = 512) -> float:
    with torch.no_grad():
        return float(model.loss(EVAL[0][:n], EVAL[1][:n]))


def branch_trainer(seed: int) -> Any:
    """train(model, opt, batch_size, steps): the same data stream in every branch."""

    def train(model: Any, opt: Any, batch_size: int, steps: int) -> list[float]:
        rng = np.random.default_rng(seed)
        losses = []
        for _ in range(steps):
            x, y = DATA.batch("train", batch_size, CONTEXT, rng)
            loss = model.loss(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        return losses

    return train


def base_run(seed: int, steps: int, checkpoints: list[int], window: int, ks: tuple[int, ...],
             more_windows: tuple[int, ...] = ()) -> dict[str, Any]:
    """The run at BASE_BATCH with the noise scale from 2 micro-batches a step; at each
    checkpoint, measure_cbs (evaluated on a fixed held-out set), once per window."""
    model, opt = make_model(seed)
    gns = GradientNoiseScale(horizon=50)
    mon = TrainingMonitor(model, opt, noise_scale=gns, batch_size=MICRO)
    rng = np.random.default_rng(seed)
    noise: list[tuple[int, float]] = []
    cbs: list[dict[str, Any]] = []
    train_seconds = 0.0
    for step in range(steps + 1):
        for w in (window, *more_windows) if step in checkpoints else ():
            res = measure_cbs(model, opt, branch_trainer(10_000 * seed + step),
                              batch_size=BASE_BATCH, ks=ks, window=w, evaluate=evaluate,
                              echo=None)
            cbs.append({"step": step, "lo": res.lo, "hi": res.hi, "window": w,
                        "losses": [round(b.loss, 4) for b in res.branches]})
        if step == steps:
            break
        t = time.perf_counter()
        x, y = DATA.batch("train", BASE_BATCH, CONTEXT, rng)
        for xm, ym in zip(x.split(MICRO), y.split(MICRO), strict=True):
            (model.loss(xm, ym) / (BASE_BATCH // MICRO)).backward()
        mon.record(step)
        opt.step()
        opt.zero_grad(set_to_none=True)
        train_seconds += time.perf_counter() - t
        if step % 10 == 0 and gns.updates > 10:
            noise.append((step, gns.b_simple))
    return {"noise": noise, "cbs": cbs, "seconds": train_seconds, "model": model, "opt": opt}


# --- 3. warmup against fixed batches on the same examples -----------------------------------
def lr_at(frac: float) -> float:
    """The shared LR shape over the examples: 2% warmup, flat, linear decay over the last 20%."""
    if frac < 0.02:
        return BASE_LR * (frac / 0.02 + 0.05)
    if frac < 0.8:
        return BASE_LR
    return BASE_LR * (0.1 + 0.9 * (1.0 - frac) / 0.2)


def train_schedule(seed: int, examples: int, warmup: BatchSizeWarmup | None, fixed: int
                   ) -> tuple[float, int]:
    """Train to ``examples`` examples at a fixed batch or under a warmup; (held-out loss,
    optimizer steps)."""
    model, opt = make_model(seed)
    rng = np.random.default_rng(seed)
    mon = None
    if warmup is not None and warmup.noise_scale is not None:
        mon = TrainingMonitor(model, opt, noise_scale=warmup.noise_scale, batch_size=MICRO)
    seen, step = 0, 0
    while seen < examples:
        size = warmup.batch_size if warmup is not None else fixed
        factor = warmup.lr_factor if warmup is not None else math.sqrt(fixed / BASE_BATCH)
        for g in opt.param_groups:
            g["lr"] = lr_at(seen / examples) * factor
        x, y = DATA.batch("train", size, CONTEXT, rng)
        if mon is not None:
            for xm, ym in zip(x.split(MICRO), y.split(MICRO), strict=True):
                (model.loss(xm, ym) / (size // MICRO)).backward()
            mon.record(step)
        else:
            model.loss(x, y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        seen += size
        step += 1
        if warmup is not None:
            warmup.update(step, seen)
    return evaluate(model), step


# --- 3a. the noise-scale multiplier, chosen on other seeds than the ones judged -------------------
SELECT_SEEDS = (3, 4, 5)  # the judged runs are seeds 0-2


def select_multiplier(examples: int, grid: tuple[float, ...]) -> None:
    """Warmup from the noise scale x m for each m of ``grid``, and the fixed small batch, on
    SELECT_SEEDS: the multiplier to use on the judged seeds would be the one with the fewest
    steps whose mean loss stays within those seeds' fixed-small spread (bench/README.md, 3a:
    none of 1/2 to 1/16 did)."""
    small = [train_schedule(s, examples, None, BASE_BATCH) for s in SELECT_SEEDS]
    losses = [loss for loss, _ in small]
    print(f"### 3a. Choosing the noise-scale multiplier on seeds {SELECT_SEEDS} "
          f"({examples:,} examples)\n")
    print(f"Fixed small ({BASE_BATCH}): {statistics.mean(losses):.4f}, seeds span "
          f"[{min(losses):.4f}, {max(losses):.4f}], {small[0][1]:,} steps.\n")
    print("| multiplier | final loss per seed | mean | vs fixed small | steps | fewer steps | "
          "within the spread |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for m in grid:
        rs = [train_schedule(s, examples, BatchSizeWarmup(
            BASE_BATCH, 64, noise_scale=GradientNoiseScale(horizon=50), multiplier=m), 0)
            for s in SELECT_SEEDS]
        mean = statistics.mean(loss for loss, _ in rs)
        steps = statistics.mean(n for _, n in rs)
        print(f"| 1/{1 / m:g} | {', '.join(f'{loss:.4f}' for loss, _ in rs)} | {mean:.4f} | "
              f"{mean - statistics.mean(losses):+.4f} | {steps:,.0f} | "
              f"{1 - steps / small[0][1]:.0%} | {'yes' if mean <= max(losses) else 'no'} |",
              flush=True)


# --- 3d. the CBS tolerance, chosen on other seeds than the ones judged ----------------------------
def lo_at(losses: list[float], tolerance: float) -> int:
    """The CBS interval's lower end from one measurement's branch losses (ks 1, 2, 4, ...) at
    ``tolerance``: measure_cbs's own rule (a batch passes while it ends within the tolerance of
    the best smaller one; after the first failure, none passes), applied afresh."""
    best, lo = math.inf, BASE_BATCH
    for i, loss in enumerate(losses):
        if loss > best + tolerance:
            break
        lo = BASE_BATCH * 2**i
        best = min(best, loss)
    return lo


def tolerance_study(seeds: tuple[int, ...], steps: int, checkpoints: list[int],
                    tolerances: tuple[float, ...], out: Path | None,
                    windows: tuple[int, ...] = (512,), ks: tuple[int, ...] = (1, 2, 4, 8, 16)
                    ) -> None:
    """The base runs of ``seeds`` with measure_cbs at ``checkpoints`` (ks 1-16), then for each
    tolerance the warmup that follows the seeds' median lower end, against the fixed small
    batch on the same examples. Run on seeds 3-5 it chooses the tolerance (the fewest steps
    whose mean loss stays within the small batch's spread); on 0-2 it judges the choice."""
    examples = steps * BASE_BATCH
    runs = [base_run(s, steps, checkpoints, windows[0], ks, windows[1:]) for s in seeds]
    small = [train_schedule(s, examples, None, BASE_BATCH) for s in seeds]
    losses = [loss for loss, _ in small]
    mean_small, top = statistics.mean(losses), max(losses)
    print(f"### 3d. The CBS tolerance on seeds {seeds} ({examples:,} examples, CBS at steps "
          f"{checkpoints}, ks {ks}, windows {windows})\n")
    print(f"Fixed small ({BASE_BATCH}): {mean_small:.4f}, seeds span [{min(losses):.4f}, "
          f"{top:.4f}], {small[0][1]:,} steps.\n")
    print("| window | tolerance | median lo per checkpoint | final loss per seed | mean "
          "| vs fixed small | steps | fewer steps | within the spread |")
    print("|---:|---:|---|---|---:|---:|---:|---:|---|")
    done: dict[tuple[int, ...], list[tuple[float, int]]] = {}
    record: dict[str, Any] = {"seeds": seeds, "small": small, "cbs": [r["cbs"] for r in runs],
                              "tolerances": {}}
    for win, tol in ((w, t) for w in windows for t in tolerances):
        at = [[c for c in r["cbs"] if c["window"] == win] for r in runs]
        los = tuple(int(statistics.median(lo_at(a[i]["losses"], tol) for a in at))
                    for i in range(len(checkpoints)))
        if los not in done:
            trajectory = [(c * BASE_BATCH, float(lo)) for c, lo in zip(checkpoints, los,
                                                                          strict=True)]
            done[los] = [train_schedule(s, examples, BatchSizeWarmup(BASE_BATCH, 64,
                                                                     cbs=trajectory), 0)
                         for s in seeds]
        rs = done[los]
        mean = statistics.mean(loss for loss, _ in rs)
        n = statistics.mean(k for _, k in rs)
        record["tolerances"][f"{win} {tol}"] = {"lo": los, "results": rs}
        print(f"| {win} | {tol:g} | {', '.join(map(str, los))} | "
              f"{', '.join(f'{loss:.4f}' for loss, _ in rs)} | {mean:.4f} | "
              f"{mean - mean_small:+.4f} | {n:,.0f} | {1 - n / small[0][1]:.0%} | "
              f"{'yes' if mean <= top else 'no'} |", flush=True)
    if out is not None:
        import json

        out.write_text(json.dumps(record, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a smoke run (minutes)")
    parser.add_argument("--steps", type=int, default=2000, help="steps of the base runs")
    parser.add_argument("--checkpoints", default="25,250,1900", help="where to measure the CBS")
    parser.add_argument("--figure", default=str(FIGURE), help="where to write the figure")
    parser.add_argument("--select", default=None,
                        help="only choose the noise-scale multiplier on seeds 3-5, over these "
                             "multipliers (e.g. 0.5,0.25,0.125,0.0625); --steps sets the run")
    parser.add_argument("--tolerances", default=None,
                        help="only 3d: warmups following the CBS at each of these tolerances "
                             "(e.g. 0.01,0.005,0.0025); with --seeds, --steps, --checkpoints")
    parser.add_argument("--seeds", default="3,4,5", help="3d's seeds (3-5 choose, 0-2 judge)")
    parser.add_argument("--json", default=None, help="3d: write the measurements here")
    parser.add_argument("--windows", default="512", help="3d: measure_cbs windows (examples)")
    parser.add_argument("--ks", default="1,2,4,8,16", help="3d: measure_cbs multipliers")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.tolerances:
        tolerance_study(tuple(int(s) for s in args.seeds.split(",")), args.steps,
                        [int(c) for c in args.checkpoints.split(",")],
                        tuple(float(t) for t in args.tolerances.split(",")),
                        Path(args.json) if args.json else None,
                        tuple(int(w) for w in args.windows.split(",")),
                        tuple(int(k) for k in args.ks.split(",")))
        return
    if args.select:
        select_multiplier(args.steps * BASE_BATCH,
                          tuple(float(m) for m in args.select.split(",")))
        return
    t0 = time.perf_counter()
    seeds = 3
    steps = 400 if args.quick else args.steps
    checkpoints = [20, 300] if args.quick else [int(c) for c in args.checkpoints.split(",")]
    ks = (1, 2, 4, 8, 16, 32)
    window = 256 if args.quick else 512
    examples = steps * BASE_BATCH
    top = 64

    print("## Batch size (bench/batch_size.py)\n")
    print("### 1. Noise-scale estimator: linear regression, batches 16 and 256, "
          "1,000 updates\n")
    print("\n".join(estimator_table(seeds=3 if args.quick else 5)), flush=True)
    print(f"\n({time.perf_counter() - t0:.0f} s)\n", flush=True)

    runs = [base_run(s, steps, checkpoints, window, ks) for s in range(seeds)]
    print(f"### 2. Critical batch size over training: char transformer, batch {BASE_BATCH} x "
          f"{CONTEXT} chars, Adam {BASE_LR}, window {window} sequences, ks {ks}, "
          f"tolerance 0.01 on a fixed held-out set\n")
    print("| step | examples seen | CBS interval per seed (sequences) | median lo | "
          "noise scale B_simple (mean of seeds) |")
    print("|---:|---:|---|---:|---:|")
    trajectory = []
    for i, ck in enumerate(checkpoints):
        ivs = [r["cbs"][i] for r in runs]
        text = ", ".join(f"[{c['lo']}, {c['hi'] if c['hi'] else '>' + str(ks[-1] * BASE_BATCH)}]"
                         for c in ivs)
        lo = statistics.median(c["lo"] for c in ivs)
        near = [min(r["noise"], key=lambda p: abs(p[0] - ck))[1] for r in runs if r["noise"]]
        ns = statistics.mean(near) if near and ck > 10 else float("nan")
        print(f"| {ck} | {ck * BASE_BATCH:,} | {text} | {lo:g} | {ns:.1f} |")
        trajectory.append((ck * BASE_BATCH, lo))
    print(f"\n({time.perf_counter() - t0:.0f} s)\n", flush=True)
    draw(runs, checkpoints, ks, Path(args.figure))

    print(f"### 3. Batch-size warmup on {examples:,} examples (held-out loss, mean of "
          f"{seeds} seeds)\n")
    noise_final = statistics.mean(r["noise"][-1][1] for r in runs)
    schedules: dict[str, Any] = {
        f"fixed small ({BASE_BATCH})": lambda s: train_schedule(s, examples, None, BASE_BATCH),
        f"fixed large ({top})": lambda s: train_schedule(s, examples, None, top),
        "warmup from measured CBS": lambda s: train_schedule(
            s, examples, BatchSizeWarmup(BASE_BATCH, top, cbs=trajectory), 0),
        "warmup from noise scale x 1": lambda s: train_schedule(
            s, examples, BatchSizeWarmup(BASE_BATCH, top,
                                         noise_scale=GradientNoiseScale(horizon=50)), 0),
    }
    results = {name: [fn(s) for s in range(seeds)] for name, fn in schedules.items()}
    small = [loss for loss, _ in results[f"fixed small ({BASE_BATCH})"]]
    small_mean = statistics.mean(small)
    spread = (min(small), max(small))
    small_steps = results[f"fixed small ({BASE_BATCH})"][0][1]
    print("| schedule | final loss (mean ± sd) | vs fixed small | optimizer steps | "
          "fewer steps |")
    print("|---|---:|---:|---:|---:|")
    for name, rs in results.items():
        losses = [loss for loss, _ in rs]
        steps_ = statistics.mean(n for _, n in rs)
        print(f"| {name} | {statistics.mean(losses):.4f} ± {statistics.stdev(losses):.4f} | "
              f"{statistics.mean(losses) - small_mean:+.4f} | {steps_:,.0f} | "
              f"{1 - steps_ / small_steps:.0%} |")
    warm = results["warmup from measured CBS"]
    warm_loss = statistics.mean(loss for loss, _ in warm)
    fewer = 1 - statistics.mean(n for _, n in warm) / small_steps
    ok = warm_loss <= spread[1] and fewer >= 0.30
    print(f"\nFixed small's seeds span [{spread[0]:.4f}, {spread[1]:.4f}]. Goal (warmup from the "
          f"measured CBS reaches the small batch's loss within its spread with >= 30% fewer "
          f"steps): {'met' if ok else 'NOT met'} ({warm_loss:.4f}, {fewer:.0%} fewer steps). "
          f"Noise scale at the end of the base runs: {noise_final:.1f}.")
    print(f"\n({time.perf_counter() - t0:.0f} s)\n", flush=True)

    print("### 4. measure_cbs cost at its documented defaults (ks 1-16, window 0.9% of the run)\n")
    run = runs[0]
    t = time.perf_counter()
    lines: list[str] = []
    res = measure_cbs(run["model"], run["opt"], branch_trainer(7), batch_size=BASE_BATCH,
                      run_examples=examples, echo=lines.append)
    seconds = time.perf_counter() - t
    print("| run examples | measure_cbs examples | share | run seconds | measure_cbs seconds | "
          "share | interval |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    print(f"| {examples:,} | {res.cost:,} | {res.cost / examples:.1%} | {run['seconds']:.1f} | "
          f"{seconds:.1f} | {seconds / run['seconds']:.1%} | [{res.lo}, {res.hi}] |")
    print(f"\nPrinted before it started: `{lines[0]}`")
    print(f"\nGoal <= 5% of the run: {'met' if res.cost / examples <= 0.05 else 'NOT met'} "
          f"(examples); total bench time {time.perf_counter() - t0:.0f} s.")


def draw(
    runs: list[dict[str, Any]], checkpoints: list[int], ks: tuple[int, ...], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    for s, run in enumerate(runs):
        off = 1.0 + 0.06 * (s - 1)  # seeds side by side on the log axis
        for c in run["cbs"]:
            hi = c["hi"] if c["hi"] else ks[-1] * BASE_BATCH * 2
            ax.plot([c["step"] * off] * 2, [c["lo"], hi], color=colours[s], lw=3, alpha=0.7,
                    solid_capstyle="butt")
            ax.plot(c["step"] * off, c["lo"], "o", color=colours[s], ms=4)
        steps, values = zip(*run["noise"], strict=True)
        ax.plot(steps, values, color=colours[s], lw=1, ls="--", alpha=0.8)
    ax.plot([], [], color="grey", lw=3, label="measured CBS: [largest passing, smallest failing]")
    ax.plot([], [], color="grey", lw=1, ls="--", label="noise scale B_simple (2 micro-batches)")
    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    ax.set_xlabel(f"step (batch {BASE_BATCH} sequences of {CONTEXT} characters)")
    ax.set_ylabel("batch size (sequences)")
    ax.set_title("Critical batch size over training, 3 seeds (colours)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"Figure: {path}\n")


if __name__ == "__main__":
    sys.exit(main())
