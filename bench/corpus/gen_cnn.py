"""Family cnn: small two-layer CNNs on the 8x8 digits images: every optimizer and schedule
kind, batch 16-128, 500-4000 steps."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from corpus import common
from corpus.common import Record

FAMILY = "cnn"


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1306)
    out = []
    for i in range(20):
        c = common.sample_common(rng, i, [500, 800, 1000], [16, 32, 64, 128])
        c.update(
            {
                "dataset": "digits",
                "model": "cnn",
                "c1": int(rng.choice([4, 8])),
                "c2": int(rng.choice([8, 16])),
            }
        )
        c["eval_every"] = max(c["total"] // 100, 1)
        c["schedule"] = common.spec_of(c)
        c["id"] = common.run_id(FAMILY, c)
        out.append(c)
    return out


def run(cfg: dict[str, Any]) -> Record:
    common.seed_all(cfg["seed"])
    xtr, ytr, xva, yva, _ = common.sklearn_data("digits", seed=cfg["seed"] % 3)
    task = common.ArrayTask(xtr, ytr, xva, yva, classify=True)
    model = common.SmallCNN(cfg["c1"], cfg["c2"])
    return common.run_array_task(cfg, model, task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
