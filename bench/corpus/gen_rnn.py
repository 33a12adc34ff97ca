"""Family rnn: byte-level GRU and LSTM language models (hidden 48-128) on the same texts as
chartf: recurrent curves (slower start, different plateau) under every optimizer and schedule."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from corpus import common
from corpus.common import Record

FAMILY = "rnn"
TEXTS = ("pysrc", "licenses", "pydoc")


def configs() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1311)
    out = []
    for i in range(12):
        c = common.sample_common(rng, i, [500, 800], [8, 16, 32], lr_scale=0.7)
        c.update(
            {
                "text": TEXTS[i % 3],
                "model": ("gru", "lstm")[(i // 3) % 2],
                "ctx": 32,
                "d_emb": 24,
                "hidden": int(rng.choice([48, 64, 96, 128])),
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
    task = common.TextTask(data, cfg["ctx"], n_val=48)
    return common.run_text_task(cfg, common.lm_model(cfg), task)


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
