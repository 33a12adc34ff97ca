"""Family finetune_lm: a tiny transformer pretrained on Python source (300-1500 steps), then
trained on the licence texts (the recorded second stage: a fast drop, then a slow tail)."""

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

FAMILY = "finetune_lm"
_PRETRAINED: dict[tuple[Any, ...], dict[str, torch.Tensor]] = {}


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1313)
    out = []
    for i in range(6):
        c = common.sample_common(rng, i, [500, 800], [16, 32], lr_scale=0.3)
        c.update(
            {
                "text": "licenses",
                "pretrain_text": ("pysrc", "pydoc")[i % 2],
                "model": "transformer",
                "size": "tiny",
                "d": 32,
                "layers": 2,
                "heads": 2,
                "ctx": 32,
                "clip": 1.0,
                "pretrain_steps": int(rng.choice([300, 600])),
                "pretrain_lr": 3e-3,
                "pretrain_seed": 0,
            }
        )
        c["eval_every"] = max(c["total"] // 60, 1)
        c["schedule"] = common.spec_of(c)
        c["id"] = common.run_id(FAMILY, c)
        out.append(c)
    return out


def run(cfg: dict[str, Any]) -> Record:
    key = (cfg["pretrain_text"], cfg["pretrain_steps"], cfg["pretrain_lr"], cfg["pretrain_seed"])
    if key not in _PRETRAINED:
        common.seed_all(2000 + cfg["pretrain_seed"])
        model = common.lm_model(cfg)
        pre = common.TextTask(common.text(cfg["pretrain_text"])[0], cfg["ctx"], n_val=8)
        spec = common.schedule_spec(
            "cosine", cfg["pretrain_lr"], cfg["pretrain_steps"], cfg["pretrain_steps"] // 20
        )
        common.train(
            pre,
            model,
            optimizer="adamw",
            schedule=spec,
            total=cfg["pretrain_steps"],
            batch_size=16,
            seed=cfg["pretrain_seed"],
            eval_every=cfg["pretrain_steps"],
            clip=1.0,
        )
        _PRETRAINED[key] = {k: v.clone() for k, v in model.state_dict().items()}
    common.seed_all(cfg["seed"])
    model = common.lm_model(cfg)
    model.load_state_dict(_PRETRAINED[key])
    task = common.TextTask(common.text(cfg["text"])[0], cfg["ctx"], n_val=48)
    return common.run_text_task(cfg, model, task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
