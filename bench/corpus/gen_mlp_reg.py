"""Family mlp_reg: MLP regression (MSE on a standardised target) on diabetes, Friedman #1 and a
make_regression set: every optimizer and schedule kind, batch 16-256, 500-8000 steps; reports val
R^2 beside the loss."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from corpus import common
from corpus.common import Record

FAMILY = "mlp_reg"
DATASETS = ("diabetes", "friedman1", "regression")


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1303)
    out = []
    for i in range(40):
        c = common.sample_common(rng, i, [500, 1000, 1500, 2000], [16, 32, 64, 256], lr_scale=0.5)
        c.update(
            {
                "dataset": DATASETS[i % len(DATASETS)],
                "model": "mlp",
                "width": int(rng.choice([32, 64, 128])),
                "depth": int(rng.integers(1, 4)),
                "act": str(rng.choice(["relu", "tanh", "gelu"])),
            }
        )
        if c["optimizer"] == "sgd":
            c["clip"] = 5.0  # MSE with SGD at these LRs needs a clip to stay finite
        c["eval_every"] = max(c["total"] // 100, 1)
        c["schedule"] = common.spec_of(c)
        c["id"] = common.run_id(FAMILY, c)
        out.append(c)
    return out


def run(cfg: dict[str, Any]) -> Record:
    common.seed_all(cfg["seed"])
    xtr, ytr, xva, yva, _ = common.sklearn_data(cfg["dataset"], seed=cfg["seed"] % 3)
    task = common.ArrayTask(xtr, ytr, xva, yva, classify=False)
    model = common.mlp(xtr.shape[1], cfg["width"], cfg["depth"], 1, cfg["act"])
    return common.run_array_task(cfg, model, task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
