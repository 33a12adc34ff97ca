"""Loaders of the scaling-law data in ../shared/data/scaling, as curves of (N, D, loss) points.

Each loader returns ``Run``s: one training run of one model size, with its checkpoints. The
families and what is assumed where a file does not say:

- misfitting: 240 runs of 11 sizes with several learning rates; for each (size, planned length)
  the run with the lowest final loss is kept (a law describes tuned models). N, D as given.
- t5 (Pile): loss is stored negated (higher is better in that file), so loss = -value; step 0
  and diverged points (loss > 5) are dropped. N: Pile-T5 base 248M, large 783M, xl 2.85B,
  xxl 11.1B; D = step x 2^20 tokens (the same batch for every size, so its value only rescales B).
- opt: loss = ln(perplexity); D = 10^num_token; N from the size name.
- datablations: c4 and oscar are separate groups (different evaluation data, different E); U =
  tokens_per_epoch (unique tokens); N from the size name.
- olmo: one smaller size only (1B against 7B), so no law can be fitted on smaller sizes; kept for
  the curve forecasts. Loss: mc4_en validation cross-entropy; D = step x 4M tokens (2048 x 2048).
"""

from __future__ import annotations

import csv
import gzip
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = (
    Path(
        os.environ.get(
            "RUNCAST_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
        )
    )
    / "scaling"
)


@dataclass
class Run:
    family: str
    group: str  # runs of one group share a law (same data, same evaluation)
    name: str
    n: float
    d: np.ndarray
    loss: np.ndarray
    unique: float | None = None


def _rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
        return list(csv.DictReader(fh))


def _size(text: str) -> float:
    t = text.strip().lower()
    mult = {"m": 1e6, "b": 1e9}[t[-1]]
    return float(t[:-1]) * mult


def _run(
    family: str,
    group: str,
    name: str,
    n: float,
    d: list[float],
    y: list[float],
    unique: float | None = None,
) -> Run:
    d_arr, y_arr = np.asarray(d, float), np.asarray(y, float)
    order = np.argsort(d_arr)
    d_arr, y_arr = d_arr[order], y_arr[order]
    keep = np.isfinite(y_arr) & (y_arr > 0) & (d_arr > 0)
    # one point per D (the last written)
    d_arr, y_arr = d_arr[keep], y_arr[keep]
    _, idx = np.unique(d_arr[::-1], return_index=True)
    idx = d_arr.size - 1 - idx
    return Run(family, group, name, n, d_arr[idx], y_arr[idx], unique)


def misfitting() -> list[Run]:
    runs: dict[tuple[str, str, str, str], list[dict[str, str]]] = defaultdict(list)
    for r in _rows(DATA / "misfitting_runs.csv"):
        runs[(r["model"], r["sweep"], r["peak_lr"], r["total_steps"])].append(r)
    best: dict[tuple[str, str], Run] = {}
    for (model, _sweep, lr, total), rows in runs.items():
        rows.sort(key=lambda r: float(r["D"]))
        if abs(float(rows[-1]["portion_steps_elapsed"]) - 1.0) > 1e-9:
            continue
        run = _run(
            "misfitting",
            "misfitting",
            f"{model} T={total} lr={lr}",
            float(rows[0]["N"]),
            [float(r["D"]) for r in rows],
            [float(r["loss"]) for r in rows],
        )
        key = (model, total)
        if key not in best or run.loss[-1] < best[key].loss[-1]:
            best[key] = run
    return sorted(best.values(), key=lambda r: (r.n, r.d[-1]))


T5_PARAMS = {"base": 248e6, "large": 783e6, "xl": 2.85e9, "xxl": 11.1e9}


def t5() -> list[Run]:
    by: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in _rows(DATA / "hitchhiker" / "t5_pile.csv.gz"):
        step, loss = float(r["steps"]), -float(r["loss_per_nonpadding_target_token"])
        if step > 0 and 0 < loss < 5:
            by[r["model_name"]].append((step * 2.0**20, loss))
    return [
        _run("t5", "t5", f"T5-{m}", T5_PARAMS[m], [p[0] for p in by[m]], [p[1] for p in by[m]])
        for m in T5_PARAMS
    ]


def opt() -> list[Run]:
    by: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in _rows(DATA / "hitchhiker" / "opt_trajectories.csv"):
        by[r["model_size"]].append((10 ** float(r["num_token"]), float(np.log(float(r["ppl"])))))
    return sorted(
        (
            _run("opt", "opt", f"OPT-{m}", _size(m), [p[0] for p in v], [p[1] for p in v])
            for m, v in by.items()
        ),
        key=lambda r: r.n,
    )


def datablations() -> list[Run]:
    by: dict[tuple[str, str, str], list[dict[str, str]]] = defaultdict(list)
    for r in _rows(DATA / "hitchhiker" / "datablations.csv.gz"):
        by[(r["num_params"], r["data"], r["epochs"])].append(r)
    out = []
    for (size, data, epochs), rows in by.items():
        out.append(
            _run(
                "datablations",
                f"datablations-{data}",
                f"{size} {data} {epochs}ep",
                _size(size),
                [float(r["token_num"]) for r in rows],
                [float(r["loss"]) for r in rows],
                float(rows[0]["tokens_per_epoch"]),
            )
        )
    return sorted(out, key=lambda r: (r.group, r.n, r.unique or 0))


OLMO_COLUMNS = {
    "OLMo-1B": "v2-small-mc4_en-validation/CrossEntropyLoss",
    "OLMo-7B": "mc4_en-validation/CrossEntropyLoss",
    "OLMo-7B-Twin-2T": "mc4_en-validation/CrossEntropyLoss",
}
OLMO_PARAMS = {"OLMo-1B": 1.18e9, "OLMo-7B": 6.89e9, "OLMo-7B-Twin-2T": 6.89e9}


def olmo() -> list[Run]:
    by: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in _rows(DATA / "hitchhiker" / "olmo.csv.gz"):
        m = r["model_name"].strip()
        v = r.get(OLMO_COLUMNS[m], "")
        if v:
            by[m].append((float(r["Step"]) * 2048 * 2048, float(v)))
    return [
        _run("olmo", "olmo", m, OLMO_PARAMS[m], [p[0] for p in v], [p[1] for p in v])
        for m, v in by.items()
    ]


FAMILIES = {"misfitting": misfitting, "t5": t5, "opt": opt, "datablations": datablations}
