"""Family chartf_overfit: the chartf transformers on 6-24 KB of text (the licence texts), for
1500-3000 steps (dozens of epochs): validation loss bottoms out and rises."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from corpus import common
from corpus.common import Record

FAMILY = "chartf_overfit"


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1312)
    out = []
    for i in range(8):
        c = common.sample_common(
            rng,
            i,
            [1000, 1200],
            [16, 32],
            optimizers=("adamw", "adam", "schedulefree", "sgd"),
            lr_scale=0.7,
        )
        c["wd"] = 0.0
        c.update(
            {
                "text": ("licenses", "pysrc")[i % 2],
                "model": "transformer",
                "size": ("tiny", "small")[(i // 2) % 2],
                "ctx": 32,
                "clip": 1.0,
                "train_limit": int(rng.choice([4000, 8000, 16000])),
            }
        )
        c["d"], c["layers"], c["heads"] = {"tiny": (32, 2, 2), "small": (48, 3, 4)}[c["size"]]
        c["text_sha"] = common.text(c["text"])[1]
        c["eval_every"] = max(c["total"] // 60, 1)
        c["schedule"] = common.spec_of(c)
        c["id"] = common.run_id(FAMILY, c)
        out.append(c)
    return out


def run(cfg: dict[str, Any]) -> Record:
    common.seed_all(cfg["seed"])
    data, _ = common.text(cfg["text"])
    task = common.TextTask(data, cfg["ctx"], n_val=48, train_limit=cfg["train_limit"])
    return common.run_text_task(cfg, common.lm_model(cfg), task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
