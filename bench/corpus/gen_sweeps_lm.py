"""A language-model sweep: 40 byte-level GRU configurations on the licence texts, validation
loss every 10 steps for 200 steps (the slow family, so it is built last)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import common, sweeps_common
from corpus.common import Record

FAMILY = "sweeps"
sweep_facts = sweeps_common.sweep_facts
TOTAL, EVERY, BATCH, CTX = 200, 10, 16, 32


def sweeps() -> list[dict[str, Any]]:
    space = {"hidden": [32, 64, 96], "d_emb": [16, 32]}
    trials = sweeps_common.sample_trials(1450, 40, TOTAL, space, slow_every=5)
    meta = {
        "id": "sweep-licenses_gru",
        "name": "licenses_gru",
        "family": FAMILY,
        "dataset": "licenses",
        "model": "gru",
        "metric": "val_loss",
        "unit": "step",
        "budget": TOTAL,
        "every": EVERY,
        "batch": BATCH,
        "space": space,
        "direction": "minimize",
        "report_every": EVERY,
        "total_steps": TOTAL,
        "n_reports": TOTAL // EVERY,
        "text_sha": common.text("licenses")[1],
    }
    return [{**meta, "trials": [{**t, "batch_size": BATCH, "clip": 1.0} for t in trials]}]


def run_trial(s: dict[str, Any], cfg: dict[str, Any]) -> Record:
    common.seed_all(cfg["seed"])
    task = common.TextTask(common.text("licenses")[0], CTX, n_val=32)
    model = common.CharRNN("gru", cfg["d_emb"], cfg["hidden"], 1)
    when = set(range(EVERY - 1, TOTAL, EVERY))
    rec = common.train(
        task,
        model,
        optimizer=cfg["optimizer"],
        schedule=cfg["schedule"],
        total=TOTAL,
        batch_size=BATCH,
        seed=cfg["seed"],
        eval_every=EVERY,
        wd=cfg["wd"],
        clip=cfg["clip"],
        eval_at=when,
    )
    sweeps_common.pad_reports(rec, task.metric_names(), sorted(when))
    rec.info.update({"params": common.n_params(model), "tokens_per_step": BATCH * CTX})
    return rec


if __name__ == "__main__":
    from corpus import build

    build.main(["--family", FAMILY, *sys.argv[1:]])
