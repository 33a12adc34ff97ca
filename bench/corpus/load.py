"""Read the corpus: generated runs and sweeps (manifest.json + data/), and the public curves of
../shared/data (read from there at load time, never copied), all as :class:`CorpusRun`.

Example (with ``bench/`` on ``sys.path``)::

    from corpus import load
    for run in load.runs(family="chartf"):
        c = run.curve("val_loss")          # a runcast.Curve carrying the run's Schedule
    sw = load.sweeps()[0]
    values = sw.values()                   # (trials, reports) array of the sweep's objective

Step convention: update ``t`` (0-based) of a generated run uses ``schedule.array()[t]``;
``train_loss``/``grad_norm``/``lr`` at step ``t`` belong to that update, a validation point at
step ``t`` is measured right after it (the last at ``total - 1``). Public curves keep their own
steps. Format and families: bench/corpus/README.md.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runcast import Curve
from runcast.schedules import Schedule

ROOT = Path(__file__).resolve().parent
MANIFEST = ROOT / "manifest.json"
DATA = ROOT / "data"
SHARED = Path(os.environ.get("RUNCAST_SHARED_DATA", ROOT.parents[2] / "shared" / "data")).resolve()

PUBLIC_FAMILIES = ("mpl", "tdlt", "pythia", "olmo", "t5", "opt")
PER_STEP = ("train_loss", "lr", "grad_norm")

__all__ = ["PUBLIC_FAMILIES", "CorpusRun", "Sweep", "families", "manifest", "run", "runs", "sweeps"]


@dataclass(frozen=True, eq=False)
class CorpusRun:
    """One run: its id, family, config and metrics; ``curve(metric)`` reads one metric.

    ``source`` is ``"generated"`` (bench/corpus), ``"sweep"`` (a sweep's trial) or ``"public"``
    (../shared/data). ``facts`` holds the manifest's summary (final/best values, ``overfits``,
    ``diverged``, ``params`` ...). ``schedule`` is the run's :class:`runcast.Schedule` (None for
    public curves whose schedule was not published).
    """

    id: str
    family: str
    config: dict[str, Any]
    metrics: tuple[str, ...]
    source: str
    facts: dict[str, Any] = field(default_factory=dict)
    _read: Callable[[str], tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)
    _schedule: Callable[[], Schedule | None] | None = field(default=None, repr=False)

    @property
    def schedule(self) -> Schedule | None:
        return None if self._schedule is None else self._schedule()

    @property
    def total_steps(self) -> int | None:
        """The planned length (the schedule's total), or None when unknown."""
        t = self.config.get("total")
        if t is not None:
            return int(t)
        s = self.schedule
        return None if s is None else s.total

    def arrays(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of one metric as numpy arrays (NaN = missing or diverged)."""
        if metric not in self.metrics:
            raise KeyError(f"run {self.id} has no metric {metric!r}; it has {self.metrics}")
        assert self._read is not None
        return self._read(metric)

    def curve(self, metric: str = "val_loss", *, schedule: bool = True) -> Curve:
        """One metric as a :class:`runcast.Curve` carrying the run's schedule (if known)."""
        steps, values = self.arrays(metric)
        v = np.where(np.isfinite(values), values, np.nan)
        return Curve(steps, v, schedule=self.schedule if schedule else None, name=metric)

    def __repr__(self) -> str:
        return f"CorpusRun({self.id!r}, family={self.family!r}, metrics={list(self.metrics)})"


@dataclass(frozen=True, eq=False)
class Sweep:
    """A sweep: trials over one task with one objective, reported every ``report_every`` steps.

    ``metric`` is the objective (e.g. ``val_loss``), ``direction`` ``minimize``/``maximize``,
    ``unit`` ``epoch`` or ``step`` (the budget's unit; for epochs ``report_every`` is the steps
    of one epoch), ``n_reports`` reports per trial at ``report_steps``; a diverged trial's
    reports are NaN from where it stopped. ``trials[i]`` is a :class:`CorpusRun`.
    """

    id: str
    name: str
    metric: str
    direction: str
    unit: str
    report_every: int
    n_reports: int
    total_steps: int
    trials: tuple[CorpusRun, ...]
    facts: dict[str, Any]

    @property
    def report_steps(self) -> np.ndarray:
        return self.trials[0].arrays(self.metric)[0]

    def values(self, metric: str | None = None) -> np.ndarray:
        """``(n_trials, n_reports)`` array of every trial's reports of ``metric`` (objective)."""
        m = metric or self.metric
        return np.stack([t.arrays(m)[1] for t in self.trials])

    @property
    def best_trial(self) -> int:
        return int(self.facts["best_trial"])

    def __repr__(self) -> str:
        return (
            f"Sweep({self.name!r}, {len(self.trials)} trials, {self.metric} "
            f"{self.direction}, {self.n_reports} reports every {self.report_every} steps)"
        )


# --- generated runs ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _manifest_cached(mtime: float) -> dict[str, Any]:
    if not MANIFEST.exists():
        return {"format": 1, "runs": {}, "sweeps": {}}
    data: dict[str, Any] = json.loads(MANIFEST.read_text())
    return data


def manifest() -> dict[str, Any]:
    """The manifest (re-read when the file changes, e.g. while a build is running)."""
    mtime = MANIFEST.stat().st_mtime if MANIFEST.exists() else 0.0
    return _manifest_cached(mtime)


@functools.lru_cache(maxsize=64)
def _npz(rel: str) -> dict[str, np.ndarray]:
    with np.load(DATA / rel) as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=4096)
def _spec_schedule(spec_json: str) -> Schedule:
    return Schedule.from_spec(json.loads(spec_json))


def _generated(
    entry: dict[str, Any],
    *,
    prefix: str = "",
    rid: str | None = None,
    family: str | None = None,
    source: str = "generated",
    file: str | None = None,
) -> CorpusRun:
    rel = file or entry["file"]
    cfg = entry["config"]

    def read(metric: str) -> tuple[np.ndarray, np.ndarray]:
        z = _npz(rel)
        v = z[prefix + metric].astype(np.float64)
        if metric in PER_STEP:
            return np.arange(v.size, dtype=np.int64), v
        return z[prefix + "eval_step"].astype(np.int64), v

    spec = json.dumps(cfg["schedule"], sort_keys=True)
    metrics = tuple(entry.get("metrics") or ())
    facts = {k: v for k, v in entry.items() if k not in ("config", "metrics")}
    return CorpusRun(
        id=rid or entry["id"],
        family=family or entry["family"],
        config=cfg,
        metrics=metrics,
        source=source,
        facts=facts,
        _read=read,
        _schedule=lambda: _spec_schedule(spec),
    )


def _sweep(entry: dict[str, Any]) -> Sweep:
    trials = []
    for t in entry["trials"]:
        i = t["index"]
        names = ["train_loss", "lr", "grad_norm", *_sweep_metrics(entry)]
        trials.append(
            _generated(
                {**t, "metrics": names},
                prefix=f"t{i:03d}__",
                rid=f"{entry['id']}/t{i:03d}",
                family=entry["family"],
                source="sweep",
                file=entry["file"],
            )
        )
    keys = (
        "id",
        "name",
        "metric",
        "direction",
        "unit",
        "report_every",
        "n_reports",
        "total_steps",
        "trials",
    )
    return Sweep(
        id=entry["id"],
        name=entry["name"],
        metric=entry["metric"],
        direction=entry["direction"],
        unit=entry["unit"],
        report_every=int(entry["report_every"]),
        n_reports=int(entry["n_reports"]),
        total_steps=int(entry["total_steps"]),
        trials=tuple(trials),
        facts={k: v for k, v in entry.items() if k not in keys},
    )


def _sweep_metrics(entry: dict[str, Any]) -> list[str]:
    if entry.get("metrics"):
        return [m for m in entry["metrics"] if m not in PER_STEP]
    if entry.get("model") == "autoencoder":
        return ["val_loss"]
    if entry["metric"] == "val_r2" or entry.get("dataset") in (
        "diabetes",
        "friedman1",
        "regression",
    ):
        return ["val_loss", "val_r2"]
    return ["val_loss", "val_acc"]


# --- public curves ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _table(rel: str) -> dict[str, np.ndarray]:
    """A CSV of ../shared/data as columns (numeric where they parse)."""
    import pandas as pd

    df = pd.read_csv(SHARED / rel)
    return {str(c): df[c].to_numpy() for c in df.columns}


def _dedupe(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = Curve.from_unsorted(steps.astype(np.int64), values)
    return np.array(c.step), np.array(c.value)


def _public_catalog_runs() -> list[CorpusRun]:
    cat = json.loads((SHARED / "catalog.json").read_text())
    out = []
    for e in cat["curves"]:
        fam, rel = e["family"], e["file"]
        spec = e["schedule"]
        name = Path(rel).name.split(".")[0]
        rid = f"{fam}-{e['model'].split()[0]}-{name}" if fam != "pythia" else f"{fam}-{name}"
        loss = "val_loss" if e["loss_kind"] == "validation" else "train_loss"
        has_lr = "lr" in e["columns"]

        def read(metric: str, rel: str = rel, loss: str = loss) -> tuple[np.ndarray, np.ndarray]:
            t = _table(rel)
            return _dedupe(t["step"], t["loss" if metric == loss else "lr"])

        def sched(spec: dict[str, Any] = spec, rel: str = rel) -> Schedule:
            if spec["kind"] == "recorded":
                return _recorded(rel)
            return _spec_schedule(json.dumps(spec, sort_keys=True))

        cfg = {
            "model": e["model"],
            "file": rel,
            "loss_kind": e["loss_kind"],
            "schedule": spec,
            "role": e.get("role"),
        }
        if spec.get("total") is not None:
            cfg["total"] = int(spec["total"])
        out.append(
            CorpusRun(
                id=rid,
                family=fam,
                config=cfg,
                metrics=(loss, "lr") if has_lr else (loss,),
                source="public",
                _read=read,
                _schedule=sched,
            )
        )
    return out


@functools.lru_cache(maxsize=8)
def _recorded(rel: str) -> Schedule:
    t = _table(rel)
    steps, lrs = _dedupe(t["step"], t["lr"])
    full = np.interp(np.arange(int(steps[-1]) + 1), steps, lrs)
    return Schedule.from_array(full)


def _olmo_runs() -> list[CorpusRun]:
    rel = "scaling/hitchhiker/olmo.csv.gz"
    t = _table(rel)
    out = []
    for model in sorted(set(t["model_name"].tolist())):
        rows = t["model_name"] == model
        cols = [
            c
            for c in t
            if c.endswith("CrossEntropyLoss") and np.isfinite(t[c][rows].astype(float)).sum() > 20
        ]
        # val_loss: the corpus measured at the most checkpoints (C4 / mC4 preferred on ties)
        main = max(cols, key=lambda c: (np.isfinite(t[c][rows].astype(float)).sum(), "c4" in c))
        names = {"val_loss": main, **{f"val_loss:{c.split('/')[0]}": c for c in cols}}

        def read(
            metric: str, rows: np.ndarray = rows, names: dict[str, str] = names
        ) -> tuple[np.ndarray, np.ndarray]:
            tt = _table(rel)
            v = tt[names[metric]][rows].astype(float)
            ok = np.isfinite(v)
            return _dedupe(tt["Step"][rows][ok], v[ok])

        out.append(
            CorpusRun(
                id=f"olmo-{model}",
                family="olmo",
                config={
                    "model": model,
                    "file": rel,
                    "val_loss_column": main,
                    "loss_kind": "validation",
                },
                metrics=tuple(names),
                source="public",
                _read=read,
            )
        )
    return out


def _t5_runs() -> list[CorpusRun]:
    rel = "scaling/hitchhiker/t5_pile.csv.gz"
    t = _table(rel)
    cols = {"val_loss": "cross_ent_loss_per_all_target_tokens", "val_acc": "accuracy"}
    out = []
    for model in sorted(set(t["model_name"].tolist())):
        rows = t["model_name"] == model

        def read(metric: str, rows: np.ndarray = rows) -> tuple[np.ndarray, np.ndarray]:
            tt = _table(rel)
            # the source stores every value after step 0 negated: take magnitudes; a loss of
            # more than 12 nats (above the step-0 value) or an accuracy > 1 is a broken row
            v = np.abs(tt[cols[metric]][rows].astype(float))
            v[v > (12.0 if metric == "val_loss" else 1.0)] = np.nan
            return _dedupe(tt["steps"][rows], v)

        out.append(
            CorpusRun(
                id=f"t5-{model}",
                family="t5",
                config={"model": f"t5-{model}", "file": rel, "loss_kind": "validation"},
                metrics=("val_loss", "val_acc"),
                source="public",
                _read=read,
            )
        )
    return out


def _opt_runs() -> list[CorpusRun]:
    rel = "scaling/hitchhiker/opt_trajectories.csv"
    t = _table(rel)
    out = []
    for size in sorted(
        set(t["model_size"].tolist()), key=lambda s: float(s[:-1]) * (1e3 if s.endswith("b") else 1)
    ):
        rows = t["model_size"] == size

        def read(metric: str, rows: np.ndarray = rows) -> tuple[np.ndarray, np.ndarray]:
            tt = _table(rel)
            ppl = tt["ppl"][rows].astype(float)
            return _dedupe(tt["steps"][rows], np.log(ppl) if metric == "val_loss" else ppl)

        out.append(
            CorpusRun(
                id=f"opt-{size}",
                family="opt",
                config={
                    "model": f"opt-{size}",
                    "file": rel,
                    "loss_kind": "validation (log perplexity)",
                },
                metrics=("val_loss", "val_ppl"),
                source="public",
                _read=read,
            )
        )
    return out


@functools.lru_cache(maxsize=1)
def _public() -> tuple[CorpusRun, ...]:
    if not (SHARED / "catalog.json").exists():
        raise FileNotFoundError(
            f"the public curves are not at {SHARED}; set RUNCAST_SHARED_DATA to the folder of "
            "shared/data, or call runs(public=False)"
        )
    return (*_public_catalog_runs(), *_olmo_runs(), *_t5_runs(), *_opt_runs())


# --- the API ----------------------------------------------------------------------------------
def runs(
    family: str | Iterable[str] | None = None, *, public: bool = True, include_sweeps: bool = False
) -> list[CorpusRun]:
    """Every run of the corpus (or of ``family``: one name or several), generated first.

    ``public=False`` leaves out ../shared/data; ``include_sweeps=True`` adds every sweep trial
    (family ``sweeps``).
    """
    want = None if family is None else ({family} if isinstance(family, str) else set(family))
    man = manifest()
    out = [_generated(e) for e in man["runs"].values() if want is None or e["family"] in want]
    if include_sweeps and (want is None or "sweeps" in want):
        for sw in sweeps():
            out.extend(sw.trials)
    if public and (want is None or want & set(PUBLIC_FAMILIES)):
        out.extend(r for r in _public() if want is None or r.family in want)
    return out


def run(run_id: str) -> CorpusRun:
    """One run by id (generated or public)."""
    man = manifest()
    if run_id in man["runs"]:
        return _generated(man["runs"][run_id])
    for r in _public():
        if r.id == run_id:
            return r
    raise KeyError(f"no run {run_id!r} in the corpus")


def families(*, public: bool = True) -> list[str]:
    """The generated families present in the manifest, then the public ones."""
    gen = sorted({e["family"] for e in manifest()["runs"].values()})
    return gen + (list(PUBLIC_FAMILIES) if public else [])


def sweeps(name: str | None = None) -> list[Sweep]:
    """Every recorded sweep (or the one called ``name``)."""
    return [
        _sweep(e)
        for e in manifest()["sweeps"].values()
        if name is None or e["name"] == name or e["id"] == name
    ]
