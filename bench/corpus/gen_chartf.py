"""Family chartf: byte-level decoder-only transformers in three sizes (tiny 35k, small 99k,
medium 215k parameters) on three texts that ship with Python or Debian (Python stdlib source,
the Debian licence texts, pydoc topics), context 32, every optimizer and schedule kind, 500-2000
steps. Plenty of text per parameter: these keep improving."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from corpus import common
from corpus.common import Record

FAMILY = "chartf"
SIZES = {"tiny": (32, 2, 2), "small": (48, 3, 4), "medium": (64, 4, 4)}
TEXTS = ("pysrc", "licenses", "pydoc")


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1310)
    out = []
    for i in range(24):
        c = common.sample_common(rng, i, [500, 800, 1200, 2000], [8, 16, 32], lr_scale=0.5)
        size = list(SIZES)[i % 3]
        d, layers, heads = SIZES[size]
        c.update(
            {
                "text": TEXTS[(i // 3) % 3],
                "model": "transformer",
                "size": size,
                "d": d,
                "layers": layers,
                "heads": heads,
                "ctx": 32,
                "clip": 1.0,
            }
        )
        c["text_sha"] = common.text(c["text"])[1]
        c["eval_every"] = max(c["total"] // 60, 1)
        c["schedule"] = common.spec_of(c)
        c["id"] = common.run_id(FAMILY, c)
        out.append(c)
    return out


def run(cfg: dict[str, Any]) -> Record:
    common.seed_all(cfg["seed"])
    data, _ = common.text(cfg["text"])
    task = common.TextTask(data, cfg["ctx"], n_val=48, train_limit=cfg.get("train_limit"))
    return common.run_text_task(cfg, common.lm_model(cfg), task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
