"""Print the corpus's family and sweep tables (markdown); --readme writes them into README.md.

.venv/bin/python bench/corpus/summary.py [--readme]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from corpus import load

WHAT = {
    "mlp_cls": "MLPs, 4 classification sets, all optimizers and schedules, batch 16-256",
    "linear": "softmax/logistic regression: convex, no plateau",
    "mlp_reg": "MLP regression (MSE), 3 sets, val R^2",
    "mlp_overfit": "wide MLPs on 40-300 examples, no weight decay",
    "autoenc": "digits autoencoders, reconstruction MSE, 2-16 unit bottleneck",
    "cnn": "2-layer CNNs on 8x8 digits",
    "finetune_mlp": "pretrain on task A, train on task B (new head; some frozen bodies)",
    "chartf": "byte-level transformers, 3 sizes, 3 texts (stdlib source, licences, pydoc)",
    "rnn": "byte-level GRU / LSTM LMs, 3 texts",
    "chartf_overfit": "the transformers on 4-16 KB of text, dozens of epochs",
    "finetune_lm": "tiny transformer pretrained on Python source/pydoc, trained on licences",
    "long": "MLP / linear models for 8,000-20,000 steps",
    "mpl": "public: LLaMA 25M-400M val loss, 9 schedules (MPL paper)",
    "tdlt": "public: GPT-100M per-step train loss, recorded LR",
    "pythia": "public: Pythia 14M-160M per-step train loss, cosine",
    "olmo": "public: OLMo 1B/7B val loss at checkpoints, no schedule",
    "t5": "public: T5 base-xxl on the Pile, loss and accuracy, no schedule",
    "opt": "public: OPT 125M-175B log perplexity, no schedule",
}


def family_table() -> str:
    rows = defaultdict(list)
    for r in load.runs():
        rows[r.family].append(r)
    man = load.manifest()
    sizes: dict[str, int] = defaultdict(int)
    for e in man["runs"].values():
        sizes[e["family"]] += e["bytes"]
    out = [
        "| family | runs | steps | optimizers | schedule kinds | overfit | diverged | "
        "MB | what it exercises |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fam in load.families():
        rs = rows.get(fam, [])
        if not rs:
            continue
        if rs[0].source == "public":
            lasts = [r.arrays(r.metrics[0])[0][-1] for r in rs]
            steps = f"{min(lasts):,}-{max(lasts):,}"
            opts = kinds = over = div = "-"
            mb = "(shared)"
        else:
            tot = [r.config["total"] for r in rs]
            steps = f"{min(tot):,}-{max(tot):,}"
            opts = str(len({r.config["optimizer"] for r in rs}))
            kinds = str(len({r.schedule.kind for r in rs if r.schedule}))
            over = f"{sum(bool(r.facts.get('overfits')) for r in rs)}"
            div = f"{sum(bool(r.facts.get('diverged')) for r in rs)}"
            mb = f"{sizes[fam] / 2**20:.2f}"
        out.append(
            f"| {fam} | {len(rs)} | {steps} | {opts} | {kinds} | {over} | {div} | "
            f"{mb} | {WHAT.get(fam, '')} |"
        )
    return "\n".join(out)


def sweep_table() -> str:
    out = [
        "| sweep | trials | model | objective | budget | reports | diverged (NaN) | divergent "
        "| late bloomers "
        "| best's rank at 25% | MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in load.sweeps():
        f = s.facts
        budget = f"{f['budget']} epochs" if s.unit == "epoch" else f"{s.total_steps} steps"
        out.append(
            f"| {s.name} | {len(s.trials)} | {f['model']} on {f['dataset']} | "
            f"{s.metric} ({s.direction[:3]}) | {budget} | {s.n_reports} | "
            f"{len(f['diverged_trials'])} | {len(f['divergent_trials'])} | "
            f"{len(f['late_bloomers'])} | "
            f"{f['best_rank_at_quarter'] + 1} of {len(s.trials)} | "
            f"{f['bytes'] / 2**20:.2f} |"
        )
    return "\n".join(out)


def totals() -> str:
    root = Path(load.__file__).parent
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    man = load.manifest()
    n_trials = sum(len(e["trials"]) for e in man["sweeps"].values())
    steps = sum(e["n_steps"] for e in man["runs"].values())
    secs = sum(e["seconds"] for e in man["runs"].values()) + sum(
        t["seconds"] for e in man["sweeps"].values() for t in e["trials"]
    )
    fams = len(load.families(public=False))
    return (
        f"{len(man['runs'])} generated runs in {fams} families ({steps:,} recorded steps), "
        f"{len(man['sweeps'])} sweeps with {n_trials} trials; bench/corpus takes "
        f"{size / 2**20:.1f} MB; generation took {secs / 3600:.1f} h of wall time on a "
        f"shared 2-core machine."
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readme", action="store_true")
    args = ap.parse_args()
    text = f"{totals()}\n\n{family_table()}\n\n### Sweeps\n\n{sweep_table()}\n"
    print(text)
    if args.readme:
        readme = Path(load.__file__).with_name("README.md")
        body = readme.read_text()
        head = body.split("## Families")[0]
        readme.write_text(f"{head}## Families\n\n<!-- written by summary.py -->\n{text}")
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
