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
) -> list[dict[str, Any]]:
    """``n`` random configs: optimizer, LR (log-uniform, wide), schedule, warmup, + ``space``."""
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
        # every 8th trial is a deliberate slow starter: SGD or a low LR, long warmup, decay
        if i % 8 == 7:
            c.update(
                {
                    "optimizer": "sgd" if i % 16 == 7 else "adamw",
                    "schedule_name": "cosine",
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


def sweep_facts(entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Best trial, diverged trials, and late bloomers (in the final top 5 but in the worse half
    after a quarter of the budget), for the manifest."""
    metric, sign = entry["metric"], (1.0 if entry["direction"] == "minimize" else -1.0)
    n = len(entry["trials"])
    finals = np.full(n, np.inf)
    early = np.full(n, np.inf)
    q = max(entry["n_reports"] // 4 - 1, 0)
    for i in range(n):
        v = arrays[f"t{i:03d}__{metric}"].astype(np.float64) * sign
        if len(v) == entry["n_reports"] and np.isfinite(v[-1]):
            finals[i] = v[-1]
        if len(v) > q and np.isfinite(v[q]):
            early[i] = v[q]
    order_final = np.argsort(finals)
    early_rank = np.argsort(np.argsort(early))
    top5 = [int(i) for i in order_final[:5] if np.isfinite(finals[i])]
    late = [i for i in top5 if early_rank[i] >= n / 2]
    best = int(order_final[0])
    return {
        "best_trial": best,
        "best_value": float(finals[best] * sign),
        "diverged_trials": [int(i) for i in range(n) if entry["trials"][i]["diverged"]],
        "late_bloomers": late,
        "best_rank_at_quarter": int(early_rank[best]),
    }


def pad_reports(rec: common.Record, names: tuple[str, ...], steps: list[int]) -> None:
    """Give a diverged trial all its reports: NaN from where it stopped, for every metric."""
    n = len(steps)
    for k in names:
        v = rec.evals.get(k, np.zeros(0))
        rec.evals[k] = np.concatenate([v, np.full(n - len(v), np.nan)])
    rec.eval_step = np.asarray(steps, dtype=np.int64)
