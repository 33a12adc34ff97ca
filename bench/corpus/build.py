"""Build or extend the corpus: train every run and sweep not yet in manifest.json.

    .venv/bin/python bench/corpus/build.py                      # everything, fast families first
    .venv/bin/python bench/corpus/build.py --family mlp_cls     # one family (repeatable)
    .venv/bin/python bench/corpus/build.py --list               # what is built and what is left

Cached and resumable: a run whose id is in the manifest is skipped, and the manifest is
rewritten after every run. One thread per process (``--jobs N`` trains N runs at once).
CI never runs this; the tests read what it stored.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from corpus import store

# the generator modules, fastest first: a partial build still covers many families
GENERATORS = (
    "gen_mlp_cls",
    "gen_sweeps_fast",
    "gen_mlp_overfit",
    "gen_chartf",
    "gen_linear",
    "gen_mlp_reg",
    "gen_long",
    "gen_autoenc",
    "gen_cnn",
    "gen_finetune_mlp",
    "gen_rnn",
    "gen_chartf_overfit",
    "gen_finetune_lm",
    "gen_sweeps_lm",
)


def generator(name: str) -> Any:
    return importlib.import_module(f"corpus.{name}")


def _summary(rec: Any) -> dict[str, Any]:
    """Facts about a run for the manifest: lengths, final and best values, overfitting."""
    out: dict[str, Any] = {
        "n_steps": len(rec.train_loss),
        "n_evals": len(rec.eval_step),
        "diverged": rec.diverged,
        "seconds": round(rec.seconds, 2),
    }
    vl = rec.evals.get("val_loss")
    if vl is not None and len(vl) and np.isfinite(vl).any():
        i = int(np.nanargmin(vl))
        fin = float(vl[-1])
        out["final_val_loss"] = fin if math.isfinite(fin) else None
        out["best_val_loss"] = float(vl[i])
        out["best_val_step"] = int(rec.eval_step[i])
        # overfits: the best validation loss comes before 70% of the run and the last is
        # at least 2% (relative) above it
        out["overfits"] = bool(
            not rec.diverged
            and rec.eval_step[i] < 0.7 * rec.eval_step[-1]
            and fin > vl[i] + 0.02 * abs(vl[i])
        )
    va = rec.evals.get("val_acc")
    if va is not None and len(va):
        out["final_val_acc"] = float(va[-1])
    out.update(rec.info)
    return out


def build_run(gen: Any, cfg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rec = gen.run(cfg)
    rel = f"{gen.FAMILY}/{cfg['id']}.npz"
    size = store.write_arrays(rel, rec.arrays())
    entry = {
        "id": cfg["id"],
        "family": gen.FAMILY,
        "config": cfg,
        "file": rel,
        "bytes": size,
        "metrics": ["train_loss", "lr", "grad_norm", *rec.evals],
        **_summary(rec),
    }
    return cfg["id"], entry


def build_sweep(gen: Any, sweep: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    trials = []
    arrays: dict[str, np.ndarray] = {}
    for i, cfg in enumerate(sweep["trials"]):
        rec = gen.run_trial(sweep, cfg)
        arrays.update(rec.arrays(prefix=f"t{i:03d}__"))
        trials.append({"index": i, "config": cfg, **_summary(rec)})
    rel = f"sweeps/{sweep['id']}.npz"
    size = store.write_arrays(rel, arrays)
    meta = {k: v for k, v in sweep.items() if k != "trials"}
    names = sorted({k.split("__", 1)[1] for k in arrays} - {"eval_step"})
    entry = {**meta, "file": rel, "bytes": size, "metrics": names, "trials": trials}
    entry.update(gen.sweep_facts(entry, arrays))
    return sweep["id"], entry


def _drop_unlisted(man: dict[str, Any]) -> None:
    """Delete data files no manifest entry names (left by a build killed mid-write)."""
    listed = {e["file"] for e in man["runs"].values()} | {e["file"] for e in man["sweeps"].values()}
    for p in store.DATA.rglob("*.npz"):
        if str(p.relative_to(store.DATA)) not in listed:
            p.unlink()


def _refresh_sweep_facts(man: dict[str, Any]) -> None:
    """Recompute every stored sweep's facts with the current rule (no training)."""
    from corpus import sweeps_common

    for entry in man["sweeps"].values():
        with np.load(store.DATA / entry["file"]) as z:
            arrays = {k: z[k] for k in z.files}
        entry.update(sweeps_common.sweep_facts(entry, arrays))
    store.write_manifest(man)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", action="append", help="a generator family (repeatable)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--limit", type=int, default=None, help="at most this many new runs")
    ap.add_argument(
        "--loop",
        action="store_true",
        help="when done, look again for new generators and runs, until none is left",
    )
    ap.add_argument(
        "--refresh",
        action="store_true",
        help="only recompute the stored sweeps' facts and drop unlisted data files",
    )
    args = ap.parse_args(argv)
    if args.refresh:
        man = store.read_manifest()
        _drop_unlisted(man)
        _refresh_sweep_facts(man)
        return
    while True:
        n = _build_once(args)
        if not args.loop or n == 0 or args.list:
            return
        importlib.invalidate_caches()


def _build_once(args: argparse.Namespace) -> int:
    man = store.read_manifest()
    if not args.list:
        _drop_unlisted(man)
        _refresh_sweep_facts(man)
    todo: list[tuple[Any, str, dict[str, Any]]] = []
    for name in GENERATORS:
        try:
            gen = generator(name)
        except ModuleNotFoundError as err:
            if err.name == f"corpus.{name}":
                continue
            raise
        if args.family and gen.FAMILY not in args.family and name not in args.family:
            continue
        if hasattr(gen, "sweeps"):
            for sw in gen.sweeps():
                if sw["id"] not in man["sweeps"]:
                    todo.append((gen, "sweep", sw))
        else:
            for cfg in gen.configs():
                if cfg["id"] not in man["runs"]:
                    todo.append((gen, "run", cfg))
    if args.list:
        print(f"built: {len(man['runs'])} runs, {len(man['sweeps'])} sweeps; to do: {len(todo)}")
        for gen, kind, cfg in todo:
            print(f"  {gen.FAMILY:18s} {kind:5s} {cfg['id']}")
        return 0
    if args.limit is not None:
        todo = todo[: args.limit]
    t0 = time.time()
    for k, (gen, kind, cfg) in enumerate(todo):
        if kind == "run":
            rid, entry = build_run(gen, cfg)
            man["runs"][rid] = entry
        else:
            rid, entry = build_sweep(gen, cfg)
            man["sweeps"][rid] = entry
        store.write_manifest(man)
        print(
            f"[{k + 1}/{len(todo)} {time.time() - t0:7.0f}s] {gen.FAMILY} {rid} "
            f"{entry.get('seconds', '')}",
            flush=True,
        )
    return len(todo)


if __name__ == "__main__":
    main()
