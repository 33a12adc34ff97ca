"""Family long: the cheap models (MLP, softmax regression, autoencoder) trained for 8,000 to
20,000 steps, so the corpus holds long curves under every schedule kind."""

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

FAMILY = "long"
SETS = ("digits", "friedman1", "synth_cls", "diabetes", "breast_cancer")


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1314)
    out = []
    for i in range(6):
        c = common.sample_common(rng, i, [8000, 20000], [32, 64], lr_scale=0.3)
        ds = SETS[i % len(SETS)]
        c.update(
            {
                "dataset": ds,
                "model": ("mlp", "linear")[i % 2],
                "width": 64,
                "depth": 2,
                "act": "relu",
            }
        )
        if ds in ("friedman1", "diabetes") and c["optimizer"] == "sgd":
            c["clip"] = 5.0
        c["eval_every"] = max(c["total"] // 100, 1)
        c["schedule"] = common.spec_of(c)
        c["id"] = common.run_id(FAMILY, c)
        out.append(c)
    return out


def run(cfg: dict[str, Any]) -> Record:
    common.seed_all(cfg["seed"])
    xtr, ytr, xva, yva, classify = common.sklearn_data(cfg["dataset"], seed=cfg["seed"] % 3)
    task = common.ArrayTask(xtr, ytr, xva, yva, classify=classify)
    d_out = int(ytr.max()) + 1 if classify else 1
    if cfg["model"] == "linear":
        model: torch.nn.Module = torch.nn.Linear(xtr.shape[1], d_out)
    else:
        model = common.mlp(xtr.shape[1], cfg["width"], cfg["depth"], d_out, cfg["act"])
    return common.run_array_task(cfg, model, task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
