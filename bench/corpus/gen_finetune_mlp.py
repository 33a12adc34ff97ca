"""Family finetune_mlp: pretrain an MLP on one task, then train it on a second one with a new
head (the recorded run is the second stage). Tasks: digits 0-4 -> digits 5-9, and the synthetic
5-class set -> the same inputs with permuted, partly re-drawn labels. Full fine-tuning or a frozen
body (linear probe)."""

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

FAMILY = "finetune_mlp"
PAIRS = ("digits_lo_hi", "synth_relabel")
_PRETRAINED: dict[tuple[Any, ...], dict[str, torch.Tensor]] = {}


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1307)
    out = []
    for i in range(24):
        c = common.sample_common(rng, i, [500, 1000, 1500], [16, 32, 64], lr_scale=0.5)
        c.update(
            {
                "pair": PAIRS[i % 2],
                "model": "mlp",
                "width": int(rng.choice([64, 128])),
                "depth": 2,
                "act": "relu",
                "pretrain_steps": int(rng.choice([300, 1000, 2000])),
                "pretrain_lr": 3e-3,
                "pretrain_seed": int(rng.integers(0, 3)),
                "freeze_body": bool(rng.random() < 0.25),
            }
        )
        c["eval_every"] = max(c["total"] // 100, 1)
        c["schedule"] = common.spec_of(c)
        c["id"] = common.run_id(FAMILY, c)
        out.append(c)
    return out


def _tasks(pair: str, seed: int) -> tuple[common.ArrayTask, common.ArrayTask]:
    name = "digits" if pair == "digits_lo_hi" else "synth_cls"
    xtr, ytr, xva, yva, _ = common.sklearn_data(name, seed=seed)
    if pair == "digits_lo_hi":
        a_tr, a_va, b_tr, b_va = ytr < 5, yva < 5, ytr >= 5, yva >= 5
        first = common.ArrayTask(xtr[a_tr], ytr[a_tr], xva[a_va], yva[a_va], classify=True)
        second = common.ArrayTask(xtr[b_tr], ytr[b_tr] - 5, xva[b_va], yva[b_va] - 5, True)
        return first, second
    g = np.random.default_rng(5)
    perm = g.permutation(5)
    ytr2, yva2 = perm[ytr], perm[yva]
    # 30% of the second task's labels follow a new rule (the sign of feature 0 shifts the class)
    flip_tr, flip_va = xtr[:, 0] > 0.5, xva[:, 0] > 0.5
    ytr2[flip_tr] = (ytr2[flip_tr] + 1) % 5
    yva2[flip_va] = (yva2[flip_va] + 1) % 5
    first = common.ArrayTask(xtr, ytr, xva, yva, classify=True)
    return first, common.ArrayTask(xtr, ytr2, xva, yva2, classify=True)


def _body(cfg: dict[str, Any], d_in: int) -> torch.nn.Sequential:
    return common.mlp(d_in, cfg["width"], cfg["depth"], 5, cfg["act"])  # type: ignore[return-value]


def run(cfg: dict[str, Any]) -> Record:
    first, second = _tasks(cfg["pair"], cfg["pretrain_seed"])
    key = (
        cfg["pair"],
        cfg["width"],
        cfg["depth"],
        cfg["act"],
        cfg["pretrain_steps"],
        cfg["pretrain_lr"],
        cfg["pretrain_seed"],
    )
    d_in = first.xtr.shape[1]
    if key not in _PRETRAINED:
        common.seed_all(1000 + cfg["pretrain_seed"])
        model = _body(cfg, d_in)
        spec = common.schedule_spec(
            "cosine", cfg["pretrain_lr"], cfg["pretrain_steps"], cfg["pretrain_steps"] // 20
        )
        common.train(
            first,
            model,
            optimizer="adamw",
            schedule=spec,
            total=cfg["pretrain_steps"],
            batch_size=64,
            seed=cfg["pretrain_seed"],
            eval_every=cfg["pretrain_steps"],
        )
        _PRETRAINED[key] = {k: v.clone() for k, v in model.state_dict().items()}
    common.seed_all(cfg["seed"])
    model = _body(cfg, d_in)
    model.load_state_dict(_PRETRAINED[key])
    head = model[-1]
    assert isinstance(head, torch.nn.Linear)
    model[-1] = torch.nn.Linear(head.in_features, 5)
    if cfg["freeze_body"]:
        for p in list(model.parameters())[:-2]:
            p.requires_grad_(False)
    return common.run_array_task(cfg, model, second)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
