"""Family linear: softmax / logistic regression (one linear layer) on scikit-learn data: convex
problems, whose curves have no plateau or phase change; every optimizer and schedule kind."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from corpus import common
from corpus.common import Record

FAMILY = "linear"
DATASETS = ("digits", "breast_cancer", "wine", "synth_cls", "iris")


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1302)
    out = []
    for i in range(72):
        c = common.sample_common(rng, i, [500, 800, 1200], [8, 32, 128, 512])
        c.update({"dataset": DATASETS[i % len(DATASETS)], "model": "linear"})
        c["eval_every"] = max(c["total"] // 100, 1)
        c["schedule"] = common.spec_of(c)
        c["id"] = common.run_id(FAMILY, c)
        out.append(c)
    return out


def run(cfg: dict[str, Any]) -> Record:
    common.seed_all(cfg["seed"])
    xtr, ytr, xva, yva, _ = common.sklearn_data(cfg["dataset"], seed=cfg["seed"] % 3)
    task = common.ArrayTask(xtr, ytr, xva, yva, classify=True)
    model = torch.nn.Linear(xtr.shape[1], int(ytr.max()) + 1)
    return common.run_array_task(cfg, model, task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
