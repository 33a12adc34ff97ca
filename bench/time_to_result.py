"""Time to result: training algorithms compared on what users pay for, on four CPU workloads.

Workloads (tiny, one thread): a character transformer and a GRU language model on runcast's
demo text, an MLP with LayerNorm on a synthetic teacher task, and a small CNN with BatchNorm on
scikit-learn's 8x8 digits. Each has a fixed step budget T. Algorithms:

- AdamW with cosine, WSD (1-sqrt cooldown, last 20%) and linear decay, LR tuned on a grid;
- AdamW with the cosine schedule refined to the tuned cosine run's gradient norms
  (``Schedule.refine``, power 1 on L1 norms, as for Adam);
- AdamW with the Power scheduler (``kind: power``; its law meets the tuned peak at 10% of T);
- Schedule-Free AdamW (``schedulefree`` package), LR tuned on the grid;
- ScheduleFree+ (``runcast.optim.ScheduleFreePlus``) at its defaults, no tuning (warmup 5% of
  T, as every algorithm here);
- ScheduleFree+ with its ``lr`` multiplier and SPS_max step cap (``max_step``) chosen leave one
  workload out: each workload is scored with the grid point that did best on the other three
  (first the number of their targets reached, then the mean log ratio to their best tuned AdamW);
- AdamW + cosine with Normalize-and-Project (``runcast.optim.NormProjector``), LR tuned.

The target of a workload is the tuned AdamW + cosine run's final validation loss (mean over
seeds) plus 1%. Time to target is read from the seed-mean validation curve, in steps and in
seconds of training (evaluation excluded); scores are AlgoPerf's (r_max = 4). Anytime: the
ScheduleFree+ x at 25/50/75% of T against cosine runs tuned and scheduled for exactly that
length. Schedule-free optimizers are evaluated at x (BatchNorm recalibrated there).

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/time_to_result.py --out FILE``
(results are cached in FILE; ``--table-only`` re-prints the tables from it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from runcast.schedules import Schedule

torch.set_num_threads(1)


# --- workloads -------------------------------------------------------------------------------
@dataclass
class Workload:
    name: str
    make: Callable[[], nn.Module]
    batch: Callable[[np.random.Generator], tuple[torch.Tensor, torch.Tensor]]
    loss: Callable[[nn.Module, tuple[torch.Tensor, torch.Tensor]], torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    steps: int
    grid: tuple[float, ...]
    every: int


def _text_workloads(steps: int) -> list[Workload]:
    from runcast.demo._model import CharTransformer, ModelConfig
    from runcast.demo._text import CharData, load_text

    data = CharData.from_text(load_text())
    # the text models cost the most per step (a GRU is sequential): shorter windows and 2/3 of
    # the budget keep the whole study to minutes on one shared core
    ctx = 16
    steps = steps * 2 // 3
    val = data.batch("val", 64, ctx, np.random.default_rng(123))

    def batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return data.batch("train", 16, ctx, rng)

    def lm_loss(model: nn.Module, b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        logits = model(b[0])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b[1].reshape(-1))

    cfg = ModelConfig(vocab=data.vocab, context=ctx, width=32, heads=4, layers=2)

    class GRULM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(data.vocab, 32)
            self.rnn = nn.GRU(32, 64, batch_first=True)
            self.norm = nn.LayerNorm(64)
            self.head = nn.Linear(64, data.vocab)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            out, _ = self.rnn(self.emb(idx))
            return self.head(self.norm(out))

    return [
        Workload("gru-lm", GRULM, batch, lm_loss, val, steps, (1e-3, 3e-3, 1e-2), steps // 20),
        Workload(
            "char-transformer",
            lambda: CharTransformer(cfg),
            batch,
            lm_loss,
            val,
            steps,
            (1e-3, 3e-3, 1e-2),
            steps // 20,
        ),
    ]


def _mlp_workload(steps: int) -> Workload:
    g = torch.Generator().manual_seed(7)
    teacher = torch.randn(32, 10, generator=g)
    x = torch.randn(6144, 32, generator=g)
    y = (x @ teacher + 0.7 * torch.randn(6144, 10, generator=g)).argmax(1)
    xt, yt, xv, yv = x[:4096], y[:4096], x[4096:], y[4096:]

    def make() -> nn.Module:
        return nn.Sequential(
            nn.Linear(32, 128),
            nn.LayerNorm(128),
            nn.ReLU(),
            nn.Linear(128, 128),
            nn.LayerNorm(128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(rng.integers(0, len(xt), size=64))
        return xt[idx], yt[idx]

    def loss(model: nn.Module, b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(b[0]), b[1])

    return Workload("mlp", make, batch, loss, (xv, yv), steps, (1e-3, 3e-3, 1e-2), steps // 20)


def _cnn_workload(steps: int) -> Workload:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(3))
    x, y = x[perm], y[perm]
    xt, yt, xv, yv = x[:1400], y[:1400], x[1400:], y[1400:]

    def make() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 10),
        )

    def batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(rng.integers(0, len(xt), size=32))
        return xt[idx], yt[idx]

    def loss(model: nn.Module, b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(b[0]), b[1])

    return Workload(
        "small-cnn", make, batch, loss, (xv, yv), steps, (3e-3, 1e-2, 3e-2), steps // 20
    )


# --- one training run ------------------------------------------------------------------------
def _schedule(kind: str, lr: float, total: int) -> Schedule:
    warm = max(1, total // 20)
    if kind == "wsd":
        return Schedule.from_spec(
            {
                "kind": "wsd",
                "peak": lr,
                "total": total,
                "warmup": warm,
                "decay_fraction": 0.2,
                "decay_shape": "1-sqrt",
            }
        )
    if kind == "power":
        # the power law lr = a * t^b meets the peak at 10% of the run (b: the paper's -0.51)
        b = -0.51
        a = lr / (0.1 * total) ** b
        return Schedule.from_spec(
            {
                "kind": "power",
                "peak": lr,
                "a": a,
                "b": b,
                "warmup": warm,
                "total": total,
                "decay_fraction": 0.1,
            }
        )
    return Schedule.from_spec({"kind": kind, "peak": lr, "total": total, "warmup": warm})


# ScheduleFree+'s grid for the leave-one-workload-out choice: the lr multiplier and the SPS_max
# cap on the Polyak step (Loizou et al. 2021); "default" is the shipped setting
SFP_GRID: dict[str, dict[str, float]] = {
    f"lr{lr:g}/cap{cap:g}" if cap else f"lr{lr:g}/nocap": (
        {"lr": lr, "max_step": cap} if cap else {"lr": lr}
    )
    for lr in (0.1, 0.3, 1.0)
    for cap in (3e-3, 1e-2, 3e-2, 0.0)
}


def train(
    w: Workload,
    algo: str,
    lr: float,
    seed: int,
    total: int,
    lrs: np.ndarray | None = None,
    sfp: dict[str, float] | None = None,
) -> dict[str, Any]:
    from runcast.optim import NormProjector, ScheduleFreePlus, recalibrate_bn

    torch.manual_seed(seed)
    model = w.make()
    rng = np.random.default_rng(1000 + seed)
    sf = algo in ("sf-adamw", "sf+")
    nap = None
    if algo == "sf+":
        # the bench's common warmup (5% of T), as for Schedule-Free AdamW and the schedules
        opt: Any = ScheduleFreePlus(
            model.parameters(), warmup_steps=max(1, total // 20), **(sfp or {})
        )
    elif algo == "sf-adamw":
        import schedulefree

        opt = schedulefree.AdamWScheduleFree(
            model.parameters(), lr=lr, warmup_steps=max(1, total // 20)
        )
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        if lrs is None:
            kind = {
                "cosine": "cosine",
                "nap": "cosine",
                "wsd": "wsd",
                "linear": "linear",
                "power": "power",
            }[algo]
            lrs = _schedule(kind, lr, total).array(total)
        if algo == "nap":
            nap = NormProjector(model)
    if sf:
        opt.train()
    steps, vals, secs, l1 = [], [], [], []
    spent = 0.0
    calib = [w.batch(np.random.default_rng(99)) for _ in range(8)]
    for t in range(total):
        model.train()
        b = w.batch(rng)
        t0 = time.perf_counter()
        if not sf:
            for g in opt.param_groups:
                g["lr"] = float(lrs[t])
        loss = w.loss(model, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if algo == "cosine":
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            l1.append(float(torch.stack(torch._foreach_norm(grads, 1)).sum()))
        if algo == "sf+":
            opt.step(loss=loss)
        else:
            opt.step()
        if nap is not None:
            nap.step()
        spent += time.perf_counter() - t0
        if (t + 1) % w.every == 0 or t + 1 == total:
            if sf:
                recalibrate_bn(model, calib, opt)
                opt.eval()
            model.eval()
            with torch.no_grad():
                v = float(w.loss(model, w.val))
            if sf:
                opt.train()
            steps.append(t + 1)
            vals.append(v if math.isfinite(v) else 1e9)
            secs.append(spent)
    return {"steps": steps, "val": vals, "secs": secs, "l1": l1}


# --- the study -------------------------------------------------------------------------------
def run_workload(
    w: Workload,
    seeds: list[int],
    log: Callable[[str], None],
    cache: dict[str, Any],
    save: Callable[[], None],
) -> dict[str, Any]:
    T = w.steps
    runs: dict[str, Any] = cache.setdefault("runs", {})

    def key(algo: str, lr: float | str | None, total: int = T) -> str:
        return f"{algo}|{lr}|{total}"

    def do(
        algo: str,
        lr: float | str | None,
        total: int = T,
        lrs: Any = None,
        seed_lrs: Any = None,
        sfp: dict[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        if key(algo, lr, total) in runs:
            return runs[key(algo, lr, total)]  # type: ignore[no-any-return]
        out = []
        for s in seeds:
            t0 = time.time()
            rate = lr if isinstance(lr, float) else 0.0
            r = train(w, algo, rate, s, total, lrs if seed_lrs is None else seed_lrs[s], sfp)
            out.append(r)
            log(
                f"{w.name} {algo} lr={lr} T={total} seed={s}: val {r['val'][-1]:.4f} "
                f"({time.time() - t0:.0f}s)"
            )
        runs[key(algo, lr, total)] = out
        save()
        return out

    def final(rs: list[dict[str, Any]]) -> float:
        return float(np.mean([r["val"][-1] for r in rs]))

    best: dict[str, float] = {}
    # NaP projects nothing where no weight's output feeds a norm (pre-norm transformer, GRU):
    # there it is the cosine run itself, not trained twice
    from runcast.optim import NormProjector

    probe = w.make()
    nap = NormProjector(probe)
    probe(w.batch(np.random.default_rng(0))[0])
    nap_algo = "nap" if nap.names else "cosine"
    for algo in ("cosine", "wsd", "linear", "sf-adamw", nap_algo):
        for lr in w.grid:
            do(algo, lr)
        best[algo] = min(w.grid, key=lambda lr, a=algo: final(runs[key(a, lr)]))
    if nap_algo == "cosine":
        for lr in w.grid:
            runs[key("nap", lr)] = runs[key("cosine", lr)]
        best["nap"] = best["cosine"]
    cache["nap_projects"] = nap.names
    lr_c = best["cosine"]
    # refine the tuned cosine schedule to each seed's own gradient norms
    refined = {}
    for i, s in enumerate(seeds):
        norms = np.asarray(runs[key("cosine", lr_c)][i]["l1"])
        refined[s] = (
            _schedule("cosine", lr_c, T)
            .refine(norms, window=0.1, power=1.0, warmup=max(1, T // 20))
            .array(T)
        )
    do("refine", lr_c, seed_lrs=refined)
    best["refine"] = lr_c
    do("power", lr_c)
    best["power"] = lr_c
    do("sf+", None)
    best["sf+"] = None  # type: ignore[assignment]
    for name, kw in SFP_GRID.items():
        do("sf+", name, sfp=kw)
    # anytime: cosine tuned and scheduled for exactly 25/50/75% of the budget
    # (the tuned LR and the next larger one: a shorter run never wants a smaller peak here)
    i = w.grid.index(lr_c)
    short_grid = list(w.grid[i : i + 2])
    for frac in (0.25, 0.5, 0.75):
        for lr in short_grid:
            do("cosine", lr, int(T * frac))
    cache.update({"T": T, "grid": list(w.grid), "short_grid": short_grid, "best": best})
    cache["every"] = w.every
    return cache


def workloads(steps: int) -> list[Workload]:
    # cheapest first, so a cut-short run still has whole workloads
    gru, transformer = _text_workloads(steps)
    return [_mlp_workload(steps), _cnn_workload(steps), gru, transformer]


# --- tables ----------------------------------------------------------------------------------
ALGOS = ("cosine", "wsd", "linear", "refine", "power", "sf-adamw", "sf+", "sf+lowo", "nap")
LABEL = {
    "cosine": "AdamW cosine (tuned)",
    "wsd": "AdamW WSD (tuned)",
    "linear": "AdamW linear (tuned)",
    "refine": "AdamW refined (Schedule.refine)",
    "power": "AdamW Power scheduler",
    "sf-adamw": "Schedule-Free AdamW (tuned)",
    "sf+": "ScheduleFree+ (defaults)",
    "sf+lowo": "ScheduleFree+ (lr, cap chosen on the other workloads)",
    "nap": "AdamW cosine + NaP (tuned)",
}


def _seed_mean(rs: list[dict[str, Any]]) -> np.ndarray:
    return np.asarray(np.mean([r["val"] for r in rs], axis=0))


def choose_lowo(results: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """ScheduleFree+'s grid point for each workload, chosen on the other workloads only.

    Score on a set of workloads: the number whose target the seed-mean curve reaches, then
    (ties) the mean log ratio of the final loss to that workload's best tuned AdamW schedule.
    Adds each workload's chosen runs as ``sf+lowo`` and returns the choices and a table.
    """
    facts: dict[str, dict[str, tuple[bool, float]]] = {}
    for w, res in results.items():
        T, best, runs = res["T"], res["best"], res["runs"]
        cos = _seed_mean(runs[f"cosine|{best['cosine']}|{T}"])
        target = 1.01 * float(cos[-1])
        tuned = min(float(_seed_mean(runs[f"{a}|{best[a]}|{T}"])[-1]) for a in TUNED)
        facts[w] = {}
        for name in SFP_GRID:
            curve = _seed_mean(runs[f"sf+|{name}|{T}"])
            final = float(curve[-1]) if math.isfinite(curve[-1]) else 1e9
            facts[w][name] = (bool(np.nanmin(curve) <= target), math.log(max(final, 1e-12) / tuned))
    chosen = {}
    for w, res in results.items():
        others = [o for o in results if o != w]

        def score(name: str, others: list[str] = others) -> tuple[float, float]:
            reached = sum(facts[o][name][0] for o in others)
            return (-reached, float(np.mean([facts[o][name][1] for o in others])))

        chosen[w] = min(SFP_GRID, key=score)
        T = res["T"]
        res["runs"]["sf+lowo|None|" + str(T)] = res["runs"][f"sf+|{chosen[w]}|{T}"]
        res["best"]["sf+lowo"] = None
    wnames = list(results)
    lines = [
        "| grid point (lr multiplier / step cap) | "
        + " | ".join(f"{w}: final (ln ratio to best tuned), reached" for w in wnames)
        + " |",
        "|---|" + "---|" * len(wnames),
    ]
    for name in SFP_GRID:
        cells = []
        for w in wnames:
            hit, lr_ = facts[w][name]
            T = results[w]["T"]
            final = float(_seed_mean(results[w]["runs"][f"sf+|{name}|{T}"])[-1])
            mark = " **chosen**" if chosen[w] == name else ""
            cells.append(f"{final:.4f} ({lr_:+.3f}), {'yes' if hit else 'no'}{mark}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return chosen, lines


TUNED = ("cosine", "wsd", "linear")


def tables(results: dict[str, Any]) -> str:
    from runcast.report import performance_profile

    chosen, lowo_lines = choose_lowo(results)
    lines: list[str] = []
    steps_t: dict[str, dict[str, float]] = {a: {} for a in ALGOS}
    secs_t: dict[str, dict[str, float]] = {a: {} for a in ALGOS}
    finals: dict[str, dict[str, float]] = {a: {} for a in ALGOS}
    targets = {}
    for wname, res in results.items():
        T, best, runs = res["T"], res["best"], res["runs"]
        k = lambda a, lr, total=T: f"{a}|{lr}|{total}"  # noqa: E731
        target = 1.01 * float(np.mean([r["val"][-1] for r in runs[k("cosine", best["cosine"])]]))
        targets[wname] = target
        for a in ALGOS:
            rs = runs[k(a, best[a])]
            curve = np.mean([r["val"] for r in rs], axis=0)
            sec = np.mean([r["secs"] for r in rs], axis=0)
            st = rs[0]["steps"]
            hit = np.nonzero(curve <= target)[0]
            steps_t[a][wname] = float(st[hit[0]]) if len(hit) else math.inf
            secs_t[a][wname] = float(sec[hit[0]]) if len(hit) else math.inf
            finals[a][wname] = float(curve[-1])
    wnames = list(results)
    lines.append(
        "Final validation loss (mean over seeds; LR tuned per algorithm where marked; "
        "target = 1.01 x tuned cosine)\n"
    )
    lines.append("| algorithm | " + " | ".join(wnames) + " |")
    lines.append("|---|" + "---|" * len(wnames))
    lines.append("| target | " + " | ".join(f"{targets[w]:.4f}" for w in wnames) + " |")
    for a in ALGOS:
        lr = [results[w]["best"][a] for w in wnames]
        lines.append(
            f"| {LABEL[a]} | "
            + " | ".join(
                f"{finals[a][w]:.4f}" + (f" (lr {x:g})" if x else "")
                for w, x in zip(wnames, lr, strict=True)
            )
            + " |"
        )
    for unit, table in (("steps", steps_t), ("seconds", secs_t)):
        prof = performance_profile(table, r_max=4.0)
        lines.append(f"\nTime to target in {unit} (inf: missed) and AlgoPerf score (r_max = 4)\n")
        lines.append("| algorithm | " + " | ".join(wnames) + " | score |")
        lines.append("|---|" + "---|" * (len(wnames) + 1))
        for a in ALGOS:
            cells = [
                (
                    "inf"
                    if math.isinf(table[a][w])
                    else (f"{table[a][w]:.0f}" if unit == "steps" else f"{table[a][w]:.1f}")
                )
                for w in wnames
            ]
            lines.append(f"| {LABEL[a]} | " + " | ".join(cells) + f" | {prof.scores[a]:.3f} |")
        if unit == "steps":
            taus = [1.0, 1.25, 1.5, 2.0, 3.0, 4.0]
            lines.append(
                "\nPerformance profile rho(tau) (share of workloads within tau x best), steps\n"
            )
            lines.append("| algorithm | " + " | ".join(f"tau={t:g}" for t in taus) + " |")
            lines.append("|---|" + "---|" * len(taus))
            for a in ALGOS:
                lines.append(
                    f"| {LABEL[a]} | " + " | ".join(f"{prof.rho_at(a, t):.2f}" for t in taus) + " |"
                )
    # goals
    tuned_best = {w: min(finals[a][w] for a in TUNED) for w in wnames}
    lines.append("\nScheduleFree+ against the best tuned AdamW schedule (cosine/WSD/linear)\n")
    lines.append("| workload | setting | SF+ final | best tuned | gap % | reached target |")
    lines.append("|---|---|---|---|---|---|")
    for a in ("sf+", "sf+lowo"):
        for w in wnames:
            gap = 100 * (finals[a][w] / tuned_best[w] - 1)
            setting = "defaults" if a == "sf+" else f"LOWO: {chosen[w]}"
            lines.append(
                f"| {w} | {setting} | {finals[a][w]:.4f} | {tuned_best[w]:.4f} | {gap:+.2f} | "
                f"{'yes' if math.isfinite(steps_t[a][w]) else 'no'} |"
            )
    lines.append(
        "\nScheduleFree+'s grid, leave one workload out (2 seeds; each workload's chosen point "
        "was picked on the other three)\n"
    )
    lines += lowo_lines
    lines.append(
        "\nAnytime: ScheduleFree+ x at a share of the budget against cosine tuned for "
        "exactly that length\n"
    )
    lines.append("| workload | share | SF+ x | tuned cosine | gap % | SF+ x (LOWO) | gap % |")
    lines.append("|---|---|---|---|---|---|---|")
    for w in wnames:
        res = results[w]
        T, runs = res["T"], res["runs"]
        sf_curve = _seed_mean(runs["sf+|None|" + str(T)])
        lo_curve = _seed_mean(runs["sf+lowo|None|" + str(T)])
        st = runs["sf+|None|" + str(T)][0]["steps"]
        for frac in (0.25, 0.5, 0.75):
            n = int(T * frac)
            cos = min(
                float(np.mean([r["val"][-1] for r in runs[f"cosine|{lr}|{n}"]]))
                for lr in res["short_grid"]
            )
            i = int(np.argmin(np.abs(np.asarray(st) - n)))
            lines.append(
                f"| {w} | {frac:.0%} | {sf_curve[i]:.4f} | {cos:.4f} | "
                f"{100 * (sf_curve[i] / cos - 1):+.2f} | {lo_curve[i]:.4f} | "
                f"{100 * (lo_curve[i] / cos - 1):+.2f} |"
            )
    return "\n".join(lines)


def overhead(steps: int, reps: int = 300) -> str:
    """Optimizer step time on each workload's parameters and on large tensors, the optimizers
    interleaved step by step (so load on the machine hits them alike); medians in microseconds
    (milliseconds for the large tensors)."""
    import statistics

    import schedulefree

    from runcast.optim import ScheduleFreePlus

    makers: dict[str, Callable[[list[Any]], Any]] = {
        "AdamW (foreach)": lambda ps: torch.optim.AdamW(ps, lr=1e-3, foreach=True),
        "Schedule-Free AdamW": lambda ps: schedulefree.AdamWScheduleFree(ps, lr=1e-3),
        # warmup and warm start short, so the timed steps are the averaging ones
        "ScheduleFree+ fast": lambda ps: ScheduleFreePlus(ps, warmup_steps=5),
        "ScheduleFree+ reference": lambda ps: ScheduleFreePlus(ps, warmup_steps=5, foreach=False),
    }

    def workload_params(w: Workload) -> Callable[[], list[Any]]:
        def make() -> list[Any]:
            torch.manual_seed(0)
            model = w.make()
            w.loss(model, w.batch(np.random.default_rng(0))).backward()
            return list(model.parameters())

        return make

    def tensors(count: int, side: int) -> Callable[[], list[Any]]:
        def make() -> list[Any]:
            torch.manual_seed(0)
            ps = [nn.Parameter(torch.randn(side, side) * 0.02) for _ in range(count)]
            for p in ps:
                p.grad = torch.randn_like(p) * 1e-3
            return ps

        return make

    cases: list[tuple[str, Callable[[], list[Any]], int, float]] = [
        (w.name, workload_params(w), reps, 1e6) for w in workloads(steps)
    ]
    cases += [
        ("16 x 512x512", tensors(16, 512), 60, 1e3),
        ("4 x 2048x2048", tensors(4, 2048), 20, 1e3),
    ]
    lines = ["| parameters | count | " + " | ".join(makers) + " | SF+ fast / AdamW |"]
    lines.append("|---|---|" + "---|" * (len(makers) + 1))
    for name, make_params, n_reps, unit in cases:
        opts = {}
        for label, make in makers.items():
            params = make_params()
            opt = make(params)
            if hasattr(opt, "train"):
                opt.train()
            opts[label] = opt
        n = sum(p.numel() for p in params)
        times: dict[str, list[float]] = {k: [] for k in makers}
        for _ in range(n_reps):
            for label, opt in opts.items():
                t0 = time.perf_counter()
                opt.step(loss=1.0) if "ScheduleFree+" in label else opt.step()
                times[label].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * unit for k, v in times.items()}
        ratio = med["ScheduleFree+ fast"] / med["AdamW (foreach)"]
        fmt = "{:.0f}" if unit == 1e6 else "{:.1f} ms"
        lines.append(
            f"| {name} | {n} | "
            + " | ".join(fmt.format(med[k]) for k in makers)
            + f" | {ratio:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400, help="step budget T of every workload")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", default="/tmp/runcast_time_to_result.json")
    ap.add_argument("--only", default=None, help="comma-separated workload names")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--overhead", action="store_true", help="only time the optimizer steps")
    args = ap.parse_args()
    if args.overhead:
        print(overhead(args.steps))
        return
    out = Path(args.out)
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if not args.table_only:
        t0 = time.time()
        for w in workloads(args.steps):
            if args.only and w.name not in args.only.split(","):
                continue
            run_workload(
                w,
                list(range(args.seeds)),
                lambda m: print(m, file=sys.stderr, flush=True),
                results.setdefault(w.name, {}),
                lambda: out.write_text(json.dumps(results)),
            )
            out.write_text(json.dumps(results))
        print(f"trained in {time.time() - t0:.0f}s", file=sys.stderr)
    print(tables(results))


if __name__ == "__main__":
    main()
