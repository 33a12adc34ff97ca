"""Family mlp_cls: MLPs classifying scikit-learn datasets (digits, breast_cancer, wine, a
synthetic 5-class set), every optimizer and schedule kind, batch 16-256, 500-5000 steps.

Run it alone: ``.venv/bin/python bench/corpus/gen_mlp_cls.py`` (same as build.py --family).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from corpus import common
from corpus.common import Record

FAMILY = "mlp_cls"
DATASETS = ("digits", "breast_cancer", "wine", "synth_cls")


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1301)
    out = []
    for i in range(48):
        c = common.sample_common(rng, i, [500, 1000, 1500, 2000, 3000], [16, 32, 64, 128, 256])
        c.update(
            {
                "dataset": DATASETS[i % len(DATASETS)],
                "model": "mlp",
                "width": int(rng.choice([32, 64, 128, 256])),
                "depth": int(rng.integers(1, 4)),
                "act": str(rng.choice(["relu", "tanh", "gelu"])),
            }
        )
        c["eval_every"] = max(c["total"] // 100, 1)
        c["schedule"] = common.spec_of(c)
        c["id"] = common.run_id(FAMILY, c)
        out.append(c)
    return out


def run(cfg: dict[str, Any]) -> Record:
    common.seed_all(cfg["seed"])
    xtr, ytr, xva, yva, _ = common.sklearn_data(cfg["dataset"], seed=cfg["seed"] % 3)
    task = common.ArrayTask(xtr, ytr, xva, yva, classify=True)
    model = common.mlp(xtr.shape[1], cfg["width"], cfg["depth"], int(ytr.max()) + 1, cfg["act"])
    return common.run_array_task(cfg, model, task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
