"""The corpus on disk: bench/corpus/manifest.json plus one compressed .npz per run or sweep.

Only build.py writes; it rewrites the manifest atomically after every run, so an interrupted
build keeps everything finished so far and a rebuild skips it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
MANIFEST = ROOT / "manifest.json"
DATA = ROOT / "data"
FORMAT = 1


def read_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    if not path.exists():
        return {"format": FORMAT, "runs": {}, "sweeps": {}}
    return json.loads(path.read_text())


def write_manifest(man: dict[str, Any], path: Path = MANIFEST) -> None:
    tmp = path.with_suffix(".json.tmp")
    man = {
        "format": FORMAT,
        "runs": dict(sorted(man["runs"].items())),
        "sweeps": dict(sorted(man["sweeps"].items())),
    }
    tmp.write_text(json.dumps(man, indent=1, sort_keys=False, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON: {type(o)}")


def write_arrays(rel: str, arrays: dict[str, np.ndarray]) -> int:
    """Write ``data/<rel>`` (float32/int32 arrays, compressed); return its size in bytes."""
    path = DATA / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path.stat().st_size
