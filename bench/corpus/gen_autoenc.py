"""Family autoenc: MLP autoencoders on the digits images (reconstruction MSE through a 2-16
unit bottleneck): an unsupervised loss with a floor set by the bottleneck."""

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

FAMILY = "autoenc"


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1305)
    out = []
    for i in range(24):
        c = common.sample_common(rng, i, [500, 1000, 1500], [16, 64, 256])
        c.update(
            {
                "dataset": "digits",
                "model": "autoencoder",
                "width": int(rng.choice([64, 128])),
                "bottleneck": int(rng.choice([2, 4, 8, 16])),
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
    xtr, _, xva, _, _ = common.sklearn_data("digits", seed=cfg["seed"] % 3)
    task = common.ArrayTask(xtr, xtr, xva, xva, classify=False, loss_kind="recon")
    task.ytr = task.xtr
    task.yva = task.xva
    w, b = cfg["width"], cfg["bottleneck"]
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}[cfg["act"]]
    model = torch.nn.Sequential(
        torch.nn.Linear(64, w),
        act(),
        torch.nn.Linear(w, b),
        act(),
        torch.nn.Linear(b, w),
        act(),
        torch.nn.Linear(w, 64),
    )
    return common.run_array_task(cfg, model, task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
