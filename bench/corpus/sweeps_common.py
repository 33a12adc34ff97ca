"""What the sweep generators share: drawing a sweep's configurations and the facts about it.

A sweep is a list of trial configs over one task, each trained for the same budget with its
objective reported every ``report_every`` steps (every epoch for an epoch budget). The spaces are
wide on purpose: the highest learning rates diverge (a diverged trial's reports stop with NaN),
and slow starters (SGD, low LR with a long warmup, high LR under a decaying schedule) are in the
space, so a sweep has late bloomers: trials that rank low early and end among the best.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from corpus import common

# wide peak-LR ranges: the top decade diverges for most models
SWEEP_LR = {
    "adamw": (1e-4, 0.3),
    "adam": (1e-4, 0.3),
    "sgd": (1e-3, 3.0),
    "schedulefree": (1e-4, 0.2),
}
SWEEP_SCHEDULES = ("constant", "cosine", "wsd", "linear", "step811")


def sample_trials(
    seed: int,
    n: int,
    total: int,
    space: dict[str, list[Any]],
    optimizers: tuple[str, ...] = ("adamw", "sgd", "schedulefree"),
    lr_shift: float = 1.0,
    slow_every: int = 8,
) -> list[dict[str, Any]]:
    """``n`` random configs: optimizer, LR (log-uniform, wide), schedule, warmup, + ``space``.

    Every ``slow_every``-th trial is a deliberate slow starter (30% warmup, then a decay)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        opt = optimizers[int(rng.integers(len(optimizers)))]
        lo, hi = SWEEP_LR[opt]
        c: dict[str, Any] = {
            "optimizer": opt,
            "peak_lr": common.sig(common.log_uniform(rng, lo * lr_shift, hi * lr_shift)),
            "schedule_name": SWEEP_SCHEDULES[int(rng.integers(len(SWEEP_SCHEDULES)))],
            "warmup_frac": [0.0, 0.0, 0.05, 0.1, 0.3][int(rng.integers(5))],
            "wd": [0.0, 1e-4, 1e-2][int(rng.integers(3))],
        }
        for k, vals in space.items():
            c[k] = vals[int(rng.integers(len(vals)))]
            if isinstance(c[k], np.generic):
                c[k] = c[k].item()
        # deliberate slow starters: SGD or AdamW, long warmup, cosine (or WSD) decay
        if i % slow_every == slow_every - 1:
            k = i // slow_every
            c.update(
                {
                    "optimizer": "sgd" if k % 2 == 0 else "adamw",
                    "schedule_name": "wsd" if slow_every != 8 and k % 3 == 1 else "cosine",
                    "warmup_frac": 0.3,
                }
            )
            lo, hi = SWEEP_LR[c["optimizer"]]
            c["peak_lr"] = common.sig(float(np.sqrt(lo * hi)) * lr_shift * rng.uniform(0.5, 2))
        c["seed"] = int(rng.integers(0, 1000))
        c["total"] = total
        c["warmup"] = int(c["warmup_frac"] * total)
        c["schedule"] = common.schedule_spec(c["schedule_name"], c["peak_lr"], total, c["warmup"])
        out.append(c)
    return out


def late_bloomers(values: np.ndarray, direction: str, top: int | None = None) -> dict[int, int]:
    """Trials in the final top ``top`` (default: the best quarter) that, at some report in the
    first half of the budget, ranked in the worse half (where a median rule would have stopped
    them): index -> that worst rank (0 = best). ``values`` is ``(trials, reports)``; NaN ranks
    last."""
    sign = 1.0 if direction == "minimize" else -1.0
    v = np.where(np.isfinite(values), values * sign, np.inf)
    n, r = v.shape
    top = max(n // 4, 1) if top is None else top
    finals = v[:, -1]
    ranks = np.argsort(np.argsort(v[:, : max(r // 2, 1)], axis=0, kind="stable"), axis=0)
    out = {}
    for i in np.argsort(finals, kind="stable")[:top]:
        worst = int(ranks[i].max())
        if np.isfinite(finals[i]) and worst >= n / 2:
            out[int(i)] = worst
    return out


def sweep_facts(entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Best trial, diverged trials and late bloomers (see :func:`late_bloomers`)."""
    metric, sign = entry["metric"], (1.0 if entry["direction"] == "minimize" else -1.0)
    n = len(entry["trials"])
    values = np.stack([arrays[f"t{i:03d}__{metric}"].astype(np.float64) for i in range(n)])
    finals = np.where(np.isfinite(values[:, -1]), values[:, -1] * sign, np.inf)
    q = max(entry["n_reports"] // 4 - 1, 0)
    early = np.where(np.isfinite(values[:, q]), values[:, q] * sign, np.inf)
    early_rank = np.argsort(np.argsort(early, kind="stable"), kind="stable")
    best = int(np.argmin(finals))
    late = late_bloomers(values, entry["direction"])
    # divergent: non-finite, or ending with a training loss above the one it started with
    # (a too-high LR that blew the model up without producing NaN)
    divergent = []
    for i in range(n):
        tl = arrays[f"t{i:03d}__train_loss"].astype(np.float64)
        tail = tl[-max(len(tl) // 10, 1) :]
        if entry["trials"][i]["diverged"] or not np.isfinite(tl).all() or tail.mean() > tl[0]:
            divergent.append(i)
    return {
        "best_trial": best,
        "best_value": float(finals[best] * sign),
        "diverged_trials": [int(i) for i in range(n) if entry["trials"][i]["diverged"]],
        "divergent_trials": divergent,
        "late_bloomers": sorted(late),
        "late_bloomer_worst_ranks": [late[i] for i in sorted(late)],
        "best_rank_at_quarter": int(early_rank[best]),
    }


def pad_reports(rec: common.Record, names: tuple[str, ...], steps: list[int]) -> None:
    """Give a diverged trial all its reports: NaN from where it stopped, for every metric."""
    n = len(steps)
    for k in names:
        v = rec.evals.get(k, np.zeros(0))
        rec.evals[k] = np.concatenate([v, np.full(n - len(v), np.nan)])
    rec.eval_step = np.asarray(steps, dtype=np.int64)
