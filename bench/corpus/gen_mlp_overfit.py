"""Family mlp_overfit: wide MLPs on small subsets (40-300 training examples) of scikit-learn
data, no weight decay, long runs: the validation loss bottoms out and rises (the early-stopping
benchmark needs these). Classification and regression."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from corpus import common
from corpus.common import Record

FAMILY = "mlp_overfit"
# (dataset, training examples)
SETS = (
    ("digits", 150),
    ("digits", 300),
    ("breast_cancer", 60),
    ("wine", 40),
    ("synth_cls", 200),
    ("friedman1", 100),
    ("diabetes", 80),
    ("regression", 120),
)


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1304)
    out = []
    for i in range(24):
        c = common.sample_common(
            rng,
            i,
            [800, 1500, 2500],
            [16, 32, 64],
            optimizers=("adamw", "adam", "sgd", "schedulefree"),
        )
        c["wd"] = 0.0
        ds, n = SETS[i % len(SETS)]
        c.update(
            {
                "dataset": ds,
                "n_train": n,
                "model": "mlp",
                "width": int(rng.choice([128, 256])),
                "depth": 2,
                "act": "relu",
            }
        )
        if ds in ("friedman1", "diabetes", "regression"):
            c["peak_lr"] = common.sig(c["peak_lr"] * 0.5)
            if c["optimizer"] == "sgd":
                c["clip"] = 5.0
        c["eval_every"] = max(c["total"] // 100, 1)
        c["schedule"] = common.spec_of(c)
        c["id"] = common.run_id(FAMILY, c)
        out.append(c)
    return out


def run(cfg: dict[str, Any]) -> Record:
    common.seed_all(cfg["seed"])
    xtr, ytr, xva, yva, classify = common.sklearn_data(
        cfg["dataset"], seed=cfg["seed"] % 3, n_train=cfg["n_train"]
    )
    task = common.ArrayTask(xtr, ytr, xva, yva, classify=classify)
    d_out = int(ytr.max()) + 1 if classify else 1
    model = common.mlp(xtr.shape[1], cfg["width"], cfg["depth"], d_out, cfg["act"])
    return common.run_array_task(cfg, model, task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
