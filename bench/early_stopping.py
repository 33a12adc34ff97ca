"""Early stopping on the corpus of real runs, judged leave-one-family-out (nested).

Every run of the corpus (bench/corpus: generated families, the sweeps' trials with a
``val_loss`` objective and at least 20 reports, each sweep its own family, and the public ``mpl``
validation curves) is replayed evaluation by evaluation through each rule:

- ``runcast``: :class:`runcast.steer.EarlyStopper` (the smoothed turn test and the stall test,
  with the run's schedule and budget);
- ``patience``: Keras/Lightning ``EarlyStopping`` (``restore_best_weights``);
- ``train-only``: :class:`runcast.steer.TrainingPlateau` on the training loss (blocks of 5% of
  the budget), keeping the latest weights (no validation set);
- ``StopRule`` alone, as the issue measured it (tolerance 1% relative, confidence 0.9).

Selection. A setting is *feasible* on a set of families when, there, improving runs keep weights
<= 0.3% worse than the end on average and <= 1% on every run, overfitting runs keep weights
within 0.5% of the best, and (``runcast`` only) pooled, it saves at least the compute of the
patience rule chosen on the same families with a kept value at least as close to the best. It is
*robust* when, besides, every setting one grid step more reckless in one threshold (``z``,
``train_z``, ``min_rise``, ``patience``, ``lr_drop``) is feasible too; a setting on the grid's
reckless edge has no such neighbour and is not robust. Among the feasible (margin 0) or robust
(margin 1) settings, the one with the largest share of the oracle's saving on overfitting runs is
chosen (none: the smallest shortfall). The margin itself is chosen by an inner
leave-one-family-out on the training families only: the smaller margin whose inner held-out runs
meet the goals. So nothing about the held-out family, and no floor set with it in view, enters
its setting. The turn and stall tests are computed once per run and window by the real class
(thresholds off, its numbers kept); every chosen setting is replayed through the class again and
must stop at the same evaluation.

A run overfits by the manifest's definition (best validation before 70% of the run and the last
evaluation >= 2% above it). Compute saved ``1 - (stop_step + 1) / total``; the kept weights are
those of the best evaluation up to the stop (the latest for ``train-only``); "vs end" is the kept
value against the last evaluation of the full run, "vs best" against its best evaluation.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/early_stopping.py > /tmp/early.md
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import load
from runcast.curve import Curve
from runcast.errors import RuncastError
from runcast.steer import EarlyStopper, PlateauDetector, StopRule, TrainingPlateau
from runcast.steer._early import _MEDIAN_SE
from runcast.steer._prune import default_forecaster

CACHE = Path(__file__).resolve().parent / "_cache" / "early_forecasts.pkl"
RULE_CACHE = Path(__file__).resolve().parent / "_cache" / "early_rule_decisions.pkl"
FORECASTS_PER_RUN = 20  # the StopRule is asked about every n_evals/20 evaluations
MIN_EVALS = 8  # EarlyStopper's default
# The grid, each threshold from its most reckless value up (no floor: the margin rule and the
# nested selection decide how close to the reckless edge a fold may go).
WINDOWS = (3, 4, 5, 6)
ZS = (1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
TRAIN_ZS = (0.0, 1.0, 2.0, 3.0, 4.0)
MIN_RISES = (0.0, 0.01, 0.02, 0.03, 0.04)
PATIENCES: tuple[int | None, ...] = (8, 12, 16, 20, None)  # None: no stall test
STALLS = (0.2, 0.25, 0.33, 0.5)
LR_DROPS = (0.1, 0.3, 0.5, 0.7, 0.9)
RECKLESS_AXES = (1, 2, 3, 4, 5, 6)  # config axes whose lower neighbour is more reckless
AXES: tuple[tuple[Any, ...], ...] = (WINDOWS, ZS, TRAIN_ZS, MIN_RISES, PATIENCES, STALLS, LR_DROPS)
PATIENCE_GRID = [1, 2, 3, 5, 8, 10, 15, 20, 30, 50]
PLATEAU_GRID = list(itertools.product((0.002, 0.005, 0.01, 0.02, 0.05), (1, 2, 3)))
GOAL_END_MEAN, GOAL_END_MAX, GOAL_BEST_MEAN, GOAL_SHARE = 0.003, 0.01, 0.005, 0.6
MARGINS = (0, 1, 2)


@dataclass
class Run:
    id: str
    family: str
    steps: np.ndarray  # evaluation steps
    val: np.ndarray
    train_iv: np.ndarray  # median training loss since the previous evaluation (NaN: none)
    train: np.ndarray | None  # per-step training loss
    total: int
    schedule: Any
    overfits: bool

    @property
    def best_index(self) -> int:
        return int(np.nanargmin(self.val))


def _overfits(steps: np.ndarray, val: np.ndarray) -> bool:
    i = int(np.nanargmin(val))
    return bool(steps[i] < 0.7 * steps[-1] and val[-1] > val[i] + 0.02 * abs(val[i]))


def _make(rid: str, family: str, r: Any, metric: str = "val_loss") -> Run | None:
    steps, val = r.arrays(metric)
    total = r.total_steps
    if total is None or len(val) < 20 or not np.isfinite(val).all():
        return None  # too short, or diverged (a guard's job, not early stopping's)
    if np.min(np.abs(val)) < 1e-6:
        return None  # a validation loss of 0 (float32): a relative regret means nothing
    train = None
    iv = np.full(len(val), np.nan)
    if "train_loss" in r.metrics:
        train = r.arrays("train_loss")[1]
        edges = np.concatenate([[-1], steps])
        for k in range(len(steps)):
            seg = train[edges[k] + 1 : edges[k + 1] + 1]
            seg = seg[np.isfinite(seg)]
            iv[k] = np.median(seg) if seg.size else np.nan
        if not np.isfinite(train).all():
            return None
    return Run(rid, family, steps, val, iv, train, int(total), r.schedule, _overfits(steps, val))


def corpus_runs() -> list[Run]:
    out = []
    for r in load.runs(public=False):
        if "val_loss" in r.metrics and "train_loss" in r.metrics:
            out.append(_make(r.id, r.family, r))
    for sw in load.sweeps():
        if sw.metric != "val_loss" or sw.n_reports < 20:
            continue
        out.extend(_make(t.id, f"sweep:{sw.name}", t) for t in sw.trials)
    with contextlib.suppress(FileNotFoundError):  # no shared data on this machine
        out.extend(_make(r.id, "mpl", r) for r in load.runs("mpl"))
    return [r for r in out if r is not None]


# --- the forecasts, made once and cached (they do not depend on the rules' settings) ----------
def forecasts(runs: list[Run]) -> dict[tuple[str, int], Any]:
    cache: dict[tuple[str, int], Any] = {}
    if CACHE.exists():
        cache = pickle.loads(CACHE.read_bytes())
    todo = [r for r in runs if (r.id, -1) not in cache]
    failures: list[str] = []
    t0 = time.time()
    for n, r in enumerate(todo):
        every = max(1, round(len(r.val) / FORECASTS_PER_RUN))
        fn = default_forecaster(r.schedule, "min")
        for k in range(every - 1, len(r.val) - 1, every):
            if k + 1 < 10:
                continue
            c = Curve(r.steps[: k + 1], r.val[: k + 1])
            try:
                cache[(r.id, k + 1)] = fn(c, r.total - 1)
            except (RuncastError, ValueError, ArithmeticError) as err:
                # a forecast that fails (numerically) is no evidence: the rule keeps training
                cache[(r.id, k + 1)] = None
                failures.append(f"{r.id}@{k + 1}: {type(err).__name__}: {err}")
        cache[(r.id, -1)] = every
        if n % 20 == 19:
            print(f"forecasts: {n + 1}/{len(todo)} runs, {time.time() - t0:.0f}s", file=sys.stderr)
            CACHE.parent.mkdir(exist_ok=True)
            CACHE.write_bytes(pickle.dumps(cache))
    CACHE.parent.mkdir(exist_ok=True)
    CACHE.write_bytes(pickle.dumps(cache))
    if failures:
        print(f"{len(failures)} forecast(s) failed, e.g. {failures[0]}", file=sys.stderr)
    return cache


def replay_patience(r: Run, patience: int) -> int | None:
    p = PlateauDetector(patience=patience)
    for k in range(len(r.val) - 1):
        if p.update(int(r.steps[k]), float(r.val[k])):
            return k
    return None


def block_medians(r: Run) -> np.ndarray:
    """Block medians of the training loss, through the real class (block = 5% of the budget)."""
    tp = TrainingPlateau(block=max(1, r.total // 20), tol=0.0, patience=10**9)
    assert r.train is not None
    for s, v in enumerate(r.train):
        tp.update(s, float(v))
    return np.asarray(tp.medians)


def replay_plateau(r: Run, meds: np.ndarray, cfg: tuple[float, int]) -> int | None:
    """Stop step of :class:`TrainingPlateau` (fed its block medians: the same decisions)."""
    tol, patience = cfg
    tp = TrainingPlateau(block=1, tol=tol, patience=patience)
    block = max(1, r.total // 20)
    for k, m in enumerate(meds):
        if tp.update(k, float(m)):
            return min((k + 1) * block - 1, r.total - 1)
    return None


def outcome(r: Run, stop_eval: int | None, *, stop_step: int | None = None) -> dict[str, float]:
    """Compute saved and the kept value's regrets for one run (stop at evaluation index)."""
    end, best = float(r.val[-1]), float(np.min(r.val))
    if stop_step is not None:  # train-only: keep the latest weights
        k = int(np.searchsorted(r.steps, stop_step, side="right")) - 1
        kept, used = float(r.val[max(k, 0)]), stop_step + 1
    elif stop_eval is None:
        kept, used = float(np.min(r.val)), r.total  # ran to the end; best weights restored
    else:
        kept, used = float(np.min(r.val[: stop_eval + 1])), int(r.steps[stop_eval]) + 1
    oracle_used = int(r.steps[r.best_index]) + 1
    return {
        "stopped": float(used < r.total),
        "saved": 1.0 - used / r.total,
        "oracle_saved": 1.0 - oracle_used / r.total,
        "vs_end": (kept - end) / abs(end),
        "vs_best": (kept - best) / abs(best),
    }


def summary(outs: list[dict[str, float]]) -> dict[str, float]:
    if not outs:
        return {}
    a = {k: np.array([o[k] for o in outs]) for k in outs[0]}
    osv = float(a["oracle_saved"].mean())
    return {
        "n": len(outs),
        "stopped": float(a["stopped"].sum()),
        "saved": float(a["saved"].mean()),
        "oracle_saved": osv,
        "share": float(a["saved"].mean() / osv) if osv > 0 else float("nan"),
        "vs_end": float(a["vs_end"].mean()),
        "vs_end_max": float(a["vs_end"].max()),
        "vs_best": float(a["vs_best"].mean()),
    }


def rule_decisions(runs: list[Run]) -> dict[tuple[str, int], str]:
    """The issue's StopRule (1% relative, confidence 0.9) at every forecast evaluation, kept in
    a small cache of its own (the forecasts behind it are a large one, made once)."""
    cache: dict[tuple[str, int], str] = {}
    if RULE_CACHE.exists():
        cache = pickle.loads(RULE_CACHE.read_bytes())
    todo = [r for r in runs if (r.id, -1) not in cache]
    if not todo:
        return cache
    fc = forecasts(todo)
    for r in todo:

        def cached(curve: Curve, until: int, r: Run = r) -> Any:
            f = fc.get((r.id, len(curve)))
            if f is None:
                raise RuncastError("no cached forecast")
            return f

        rule = StopRule(tolerance=0.01, relative=True, confidence=0.9, forecaster=cached)
        cache[(r.id, -1)] = fc[(r.id, -1)]
        for n in range(1, len(r.val)):
            if (r.id, n) in fc:
                d = rule.decide(Curve(r.steps[:n], r.val[:n]), r.total - 1)
                cache[(r.id, n)] = d.action
    RULE_CACHE.write_bytes(pickle.dumps(cache))
    return cache


def replay_stoprule(r: Run, rules: dict[tuple[str, int], Any]) -> int | None:
    """Where the StopRule alone stops (asked every ``n_evals / 20`` evaluations, as the
    EarlyStopper's ``forecast_every`` does)."""
    every = int(rules.get((r.id, -1)) or 1)
    for k in range(len(r.val) - 1):
        n = k + 1
        if n % every == 0 and r.steps[k] < r.total - 1 and rules.get((r.id, n)) == "stop":
            return k
    return None


# --- the stopper's tests, computed once per run and window by the real class ------------------
@dataclass
class Features:
    """Per evaluation: the turn test's numbers (NaN where it cannot judge yet) and the stall
    test's count of evaluations since the lowest running median."""

    rise: np.ndarray
    se: np.ndarray  # the running medians' standard error (z multiplies it)
    low: np.ndarray  # |lowest running median| (min_rise multiplies it)
    up: np.ndarray  # the last window's slope points up
    train_ok: np.ndarray  # train_fall / train_se (inf: no training loss or no noise to judge)
    since: np.ndarray


def features(r: Run, window: int) -> Features:
    # z and min_rise do not matter here (the numbers are read, not the decision)
    es = EarlyStopper(window=window, z=1.0, train_z=1.0, min_rise=0.0, patience=None)
    n = len(r.val) - 1
    f = Features(*(np.full(n, np.nan) for _ in range(5)), since=np.zeros(n, dtype=int))
    for k in range(n):
        d = es.evaluate(int(r.steps[k]), float(r.val[k]), train_loss=float(r.train_iv[k]))
        f.since[k] = k - es._low if es._low >= 0 else 0
        if "rise" not in d.numbers:
            continue
        nb = d.numbers
        f.rise[k] = nb["rise"]
        f.se[k] = _MEDIAN_SE * nb["noise"] * math.sqrt(2.0 / window)
        f.low[k] = abs(nb["level_low"])
        f.up[k] = float(nb["recent_slope"] > 0)
        has_train = math.isfinite(nb["train_now"])
        se_tr = nb["train_fall_needed"]  # train_z = 1: one standard error (0: not finite)
        if not has_train:
            f.train_ok[k] = math.inf
        elif se_tr > 0:
            f.train_ok[k] = nb["train_fall"] / se_tr
        else:  # the class asks for a fall > 0 when the noise is unknown
            f.train_ok[k] = math.inf if nb["train_fall"] > 0 else -math.inf
    return f


def first(mask: np.ndarray) -> int:
    """The first True index along the last axis (-1: none)."""
    hit = mask.any(axis=-1)
    return np.where(hit, mask.argmax(axis=-1), -1)  # type: ignore[no-any-return]


def stop_table(runs: list[Run]) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    """Every grid setting's stop evaluation per run (-1: ran to the end), shape (configs, runs)."""
    cfgs = list(itertools.product(*AXES))
    shape = tuple(len(a) for a in AXES)
    stops = np.full((*shape, len(runs)), -1, dtype=np.int16)
    zs, tzs, mrs = np.array(ZS), np.array(TRAIN_ZS), np.array(MIN_RISES)
    for j, r in enumerate(runs):
        n = len(r.val) - 1
        lr = np.asarray(r.schedule.array(r.total), dtype=np.float64)
        ahead = np.append(np.minimum.accumulate(lr[::-1])[::-1][1:], np.inf)
        s = r.steps[:n]
        lr_now = lr[s]
        lr_ahead = np.where(s < r.total - 1, ahead[s], -np.inf)  # at the budget's end: no test
        k_ok = np.arange(n) + 1 >= MIN_EVALS
        for wi, w in enumerate(WINDOWS):
            f = features(r, w)
            need = np.maximum(
                zs[:, None, None] * f.se[None, None, :], mrs[None, :, None] * f.low[None, None, :]
            )  # (z, min_rise, k)
            rise_ok = (f.rise[None, None, :] > need) & (np.nan_to_num(f.up) > 0)
            train_ok = f.train_ok[None, :] > tzs[:, None]  # (train_z, k); NaN compares False
            turn = first(rise_ok[:, None, :, :] & train_ok[None, :, None, :])  # (z, tz, mr)
            n_so_far = np.arange(n) + 1
            for (pi, pat), (si, frac), (di, drop) in itertools.product(
                enumerate(PATIENCES), enumerate(STALLS), enumerate(LR_DROPS)
            ):
                stall = -1
                if pat is not None:
                    long = f.since >= np.maximum(pat, frac * n_so_far)
                    m = k_ok & long & (lr_now > 0) & (lr_ahead >= drop * lr_now)
                    stall = int(first(m))
                both = np.where((turn >= 0) & ((stall < 0) | (turn <= stall)), turn, stall)
                stops[wi, :, :, :, pi, si, di, j] = both
    stops = stops.reshape(len(cfgs), len(runs))
    return cfgs, stops


def stopper_for(r: Run, cfg: tuple[Any, ...]) -> EarlyStopper:
    w, z, tz, mr, pat, frac, drop = cfg
    return EarlyStopper(
        window=w, z=z, train_z=tz, min_rise=mr, patience=pat, stall=frac, lr_drop=drop,
        schedule=r.schedule, until=r.total - 1,
    )  # fmt: skip


def replay_runcast(r: Run, cfg: tuple[Any, ...], why: list[str] | None = None) -> int | None:
    """The evaluation the real stopper stops at (None: ran to the end); ``why`` gets its reason."""
    es = stopper_for(r, cfg)
    for k in range(len(r.val) - 1):  # the last evaluation ends the run anyway
        if d := es.evaluate(int(r.steps[k]), float(r.val[k]), train_loss=float(r.train_iv[k])):
            if why is not None:
                why.append(d.reason)
            return k
    return None


# --- outcomes as arrays, summed per family: any set of families is a sum ----------------------
STATS = ("n_imp", "end_imp", "end_max_imp", "n_ovf", "best_ovf", "saved_ovf", "oracle_ovf",
         "saved_all", "best_all")  # fmt: skip


def outcome_arrays(runs: list[Run], stops: np.ndarray) -> dict[str, np.ndarray]:
    """Per setting and run: saved, vs_end, vs_best (stops: (configs, runs), -1 = the end)."""
    out = {k: np.zeros(stops.shape) for k in ("saved", "vs_end", "vs_best")}
    for j, r in enumerate(runs):
        k = stops[:, j]
        pre = np.minimum.accumulate(r.val)
        end, best = float(r.val[-1]), float(pre[-1])
        kept = np.where(k >= 0, pre[np.maximum(k, 0)], best)
        used = np.where(k >= 0, r.steps[np.maximum(k, 0)] + 1, r.total)
        out["saved"][:, j] = 1.0 - used / r.total
        out["vs_end"][:, j] = (kept - end) / abs(end)
        out["vs_best"][:, j] = (kept - best) / abs(best)
    return out


def family_stats(runs: list[Run], o: dict[str, np.ndarray], fams: list[str]) -> np.ndarray:
    """(configs, families, STATS): sums (and the max) of the outcomes over each family."""
    ovf = np.array([r.overfits for r in runs])
    oracle = np.array([1.0 - (r.steps[r.best_index] + 1) / r.total for r in runs])
    fam = np.array([fams.index(r.family) for r in runs])
    st = np.zeros((o["saved"].shape[0], len(fams), len(STATS)))
    for fi in range(len(fams)):
        imp, ov = (fam == fi) & ~ovf, (fam == fi) & ovf
        st[:, fi, 0] = imp.sum()
        st[:, fi, 1] = o["vs_end"][:, imp].sum(1)
        st[:, fi, 2] = o["vs_end"][:, imp].max(1) if imp.any() else -np.inf
        st[:, fi, 3] = ov.sum()
        st[:, fi, 4] = o["vs_best"][:, ov].sum(1)
        st[:, fi, 5] = o["saved"][:, ov].sum(1)
        st[:, fi, 6] = oracle[ov].sum()
        st[:, fi, 7] = o["saved"][:, fam == fi].sum(1)
        st[:, fi, 8] = o["vs_best"][:, fam == fi].sum(1)
    return st


def pooled(st: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Goal quantities per setting over the families in ``mask``."""
    s = st[:, mask].sum(1)
    mx = st[:, mask, 2].max(1)
    n_all = s[:, 0] + s[:, 3]
    return {
        "end": s[:, 1] / np.maximum(s[:, 0], 1),
        "end_max": np.where(s[:, 0] > 0, mx, 0.0),
        "best_ovf": s[:, 4] / np.maximum(s[:, 3], 1),
        "share": s[:, 5] / np.maximum(s[:, 6], 1e-12),
        "saved": s[:, 7] / np.maximum(n_all, 1),
        "best": s[:, 8] / np.maximum(n_all, 1),
    }


def shortfall(p: dict[str, np.ndarray], base: tuple[float, float] | None) -> np.ndarray:
    short = (
        np.maximum(0, p["end"] - GOAL_END_MEAN)
        + np.maximum(0, p["end_max"] - GOAL_END_MAX)
        + np.maximum(0, p["best_ovf"] - GOAL_BEST_MEAN)
    )
    if base is not None:  # at least patience's saving, kept value at least as close to the best
        short = short + np.maximum(0, p["best"] - base[1]) + np.maximum(0, base[0] - p["saved"])
    return np.round(short, 9)


_FEASIBLE: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}
STALL_AXES = (4, 5, 6)  # patience, stall, lr_drop


def _stall_off(shape: tuple[int, ...]) -> np.ndarray:
    """The grid's settings whose stall test is off (patience None)."""
    off = np.zeros(shape, dtype=bool)
    off[:, :, :, :, PATIENCES.index(None)] = True
    return off


def choose(
    st: np.ndarray, mask: np.ndarray, margin: int = 0, base: tuple[float, float] | None = None,
    shape: tuple[int, ...] | None = None,
) -> int:  # fmt: skip
    """The setting chosen on the families in ``mask`` (index into the grid)."""
    key = (id(st), mask.tobytes(), base)
    if key not in _FEASIBLE:  # the margins share one pass over the grid
        p = pooled(st, mask)
        _FEASIBLE[key] = (p["share"], shortfall(p, base))
    share, short = _FEASIBLE[key]
    p = {"share": share}
    ok = short == 0
    if not ok.any():
        return int(np.lexsort((-p["share"], short))[0])
    for m in range(margin, -1, -1):  # no setting that far inside: one step less
        grid_ok = ok.reshape(shape) if shape is not None else ok
        robust = grid_ok.copy()
        for ax, step in itertools.product(RECKLESS_AXES if shape else (), range(1, m + 1)):
            # the settings 1..m steps more reckless on this axis are on the grid and feasible
            nb = np.zeros_like(grid_ok)
            src = [slice(None)] * grid_ok.ndim
            dst = [slice(None)] * grid_ok.ndim
            src[ax], dst[ax] = slice(0, -step), slice(step, None)
            nb[tuple(dst)] = grid_ok[tuple(src)]
            if ax in STALL_AXES:  # a stall test that is off has no threshold to keep away from
                nb |= _stall_off(grid_ok.shape)
            robust &= nb
        r = robust.ravel()
        if r.any():
            return int(np.flatnonzero(r)[np.argmax(p["share"][r])])
    raise AssertionError("margin 0 is the feasible set, which is not empty")


def patience_base(pst: np.ndarray, mask: np.ndarray) -> tuple[int, tuple[float, float]]:
    c = choose(pst, mask)
    p = pooled(pst[c : c + 1], mask)
    return c, (float(p["saved"][0]), float(p["best"][0]))


def nested_choice(
    st: np.ndarray, pst: np.ndarray, train: np.ndarray, shape: tuple[int, ...]
) -> tuple[int, int, dict[int, float]]:
    """(setting, margin, inner shortfall per margin) chosen on the families in ``train``: the
    margin by an inner leave-one-family-out over those families only."""
    _FEASIBLE.clear()  # one outer fold's masks at a time (memory)
    inner: dict[int, float] = {}
    for m in MARGINS:
        picks = np.zeros((len(train),), dtype=int)
        for g in np.flatnonzero(train):
            sub = train.copy()
            sub[g] = False
            _, base = patience_base(pst, sub)
            picks[g] = choose(st, sub, m, base, shape)
        # the inner held-out outcome: each family under the setting chosen without it
        held = np.stack([st[picks[g], g] for g in np.flatnonzero(train)])[None]
        p = pooled(held, np.ones(held.shape[1], dtype=bool))
        inner[m] = float(shortfall(p, None)[0])
    margin = next((m for m in MARGINS if inner[m] == 0), min(MARGINS, key=lambda m: inner[m]))
    _, base = patience_base(pst, train)
    return choose(st, train, margin, base, shape), margin, inner


def arrays_from(outs: list[list[dict[str, float]]]) -> dict[str, np.ndarray]:
    """Per setting and run outcome dicts (as :func:`outcome` gives) as arrays."""
    return {
        k: np.array([[o[k] for o in row] for row in outs]) for k in ("saved", "vs_end", "vs_best")
    }


def fmt(x: float, pct: bool = True) -> str:
    return f"{100 * x:.1f}%" if pct else f"{x:.2f}"


def label(cfg: tuple[Any, ...]) -> str:
    w, z, tz, mr, pat, frac, drop = cfg
    stall = "off" if pat is None else f"{pat}, stall {frac:g}, lr_drop {drop:g}"
    return f"window {w}, z {z:g}, train_z {tz:g}, min_rise {mr:g}, patience {stall}"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--families", nargs="*", help="only these families (a quick look)")
    args = ap.parse_args()
    t0 = time.time()
    runs = corpus_runs()
    if args.families:
        runs = [r for r in runs if r.family in args.families]
    rules = rule_decisions(runs)
    print(f"replaying {len(runs)} runs", file=sys.stderr)
    cfgs, stops = stop_table(runs)
    t_tab = time.time() - t0
    fams = sorted({r.family for r in runs})
    shape = tuple(len(a) for a in AXES)
    o = outcome_arrays(runs, stops)
    st = family_stats(runs, o, fams)
    pouts = [[outcome(r, replay_patience(r, p)) for r in runs] for p in PATIENCE_GRID]
    pst = family_stats(runs, arrays_from(pouts), fams)
    meds = {r.id: block_medians(r) for r in runs if r.train is not None}
    touts = [
        [
            outcome(r, None, stop_step=replay_plateau(r, meds[r.id], c) if r.id in meds else None)
            for r in runs
        ]
        for c in PLATEAU_GRID
    ]
    tst = family_stats(runs, arrays_from(touts), fams)
    souts = [outcome(r, replay_stoprule(r, rules)) for r in runs]

    fam_of = np.array([fams.index(r.family) for r in runs])
    nested: dict[str, tuple[int, int, dict[int, float]]] = {}
    plain: dict[str, int] = {}
    fixed: dict[int, dict[str, int]] = {}  # every fold at one fixed margin, for comparison
    pchosen: dict[str, int] = {}
    tchosen: dict[str, int] = {}
    for fi, fam in enumerate(fams):
        train = np.arange(len(fams)) != fi
        nested[fam] = nested_choice(st, pst, train, shape)
        pc, base = patience_base(pst, train)
        pchosen[fam] = pc
        plain[fam] = choose(st, train, 0, base, shape)
        for m in MARGINS[1:]:
            fixed.setdefault(m, {})[fam] = choose(st, train, m, base, shape)
        tchosen[fam] = choose(tst, train)
        print(
            f"fold {fam}: margin {nested[fam][1]}, {label(cfgs[nested[fam][0]])}", file=sys.stderr
        )

    def held(
        table: list[list[dict[str, float]]] | None, pick: dict[str, int]
    ) -> list[dict[str, float]]:
        out = []
        for j, r in enumerate(runs):
            c = pick[r.family]
            if table is not None:
                out.append(table[c][j])
            else:
                k = int(stops[c, j])
                out.append(outcome(r, None if k < 0 else k))
        return out

    result = {
        "runcast": held(None, {f: v[0] for f, v in nested.items()}),
        "runcast, margin 0": held(None, plain),
        **{f"runcast, margin {m}": held(None, fixed[m]) for m in MARGINS[1:]},
        "patience": held(pouts, pchosen),
        "train-only": held(touts, tchosen),
        "StopRule": souts,
    }
    # the vectorised stops must be the real class's: replay every chosen setting on its family
    mismatch = []
    for j, r in enumerate(runs):
        for pick in ({f: v[0] for f, v in nested.items()}, plain, *fixed.values()):
            c = pick[r.family]
            k = replay_runcast(r, cfgs[c])
            if (-1 if k is None else k) != stops[c, j]:
                mismatch.append(f"{r.id} {cfgs[c]}: class {k}, table {stops[c, j]}")
    if mismatch:
        raise SystemExit(f"{len(mismatch)} replays differ from the table, e.g. {mismatch[:3]}")
    report(runs, fams, result, cfgs, nested, plain, pchosen, tchosen, time.time() - t0, t_tab)
    detail(runs, cfgs, {f: v[0] for f, v in nested.items()}, fam_of)
    held_back(runs, cfgs, {f: v[0] for f, v in nested.items()})


def report(
    runs: list[Run], fams: list[str], result: dict[str, list[dict[str, float]]],
    cfgs: list[tuple[Any, ...]], nested: dict[str, tuple[int, int, dict[int, float]]],
    plain: dict[str, int], pchosen: dict[str, int], tchosen: dict[str, int], secs: float,
    t_tab: float,
) -> None:  # fmt: skip
    n_ovf = sum(r.overfits for r in runs)
    print(
        f"{len(runs)} runs in {len(fams)} families ({n_ovf} overfit); {len(cfgs)} settings of "
        f"the stopper; every setting chosen leave-one-family-out (nested); {secs:.0f}s "
        f"({t_tab:.0f}s for the stop table)\n"
    )
    print("### Pooled\n")
    print(
        "| rule | kind of run | runs | stopped | compute saved | oracle saved | share of "
        "oracle | kept vs end (mean / max) | kept vs best |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, outs in result.items():
        for kind, sel in (("overfitting", True), ("improving", False), ("all", None)):
            s = summary(
                [x for r, x in zip(runs, outs, strict=True) if sel is None or r.overfits == sel]
            )
            print(
                f"| {name} | {kind} | {s['n']} | {s['stopped']:.0f} | {fmt(s['saved'])} | "
                f"{fmt(s['oracle_saved'])} | {fmt(s['share'])} | {100 * s['vs_end']:+.2f}% / "
                f"{100 * s['vs_end_max']:+.2f}% | {100 * s['vs_best']:+.2f}% |"
            )
    print("\n### Per family (runcast, nested; patience beside it)\n")
    print(
        "| family | kind | runs | margin (inner shortfall, % per margin) | setting chosen on the others "
        "| stopped | saved (oracle) | kept vs end mean / max | kept vs best | patience: p, saved, "
        "vs end, vs best |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rc, pt = result["runcast"], result["patience"]
    for fam in fams:
        c, m, inner = nested[fam]
        for kind, sel in (("overfitting", True), ("improving", False)):
            idx = [i for i, r in enumerate(runs) if r.family == fam and r.overfits == sel]
            if not idx:
                continue
            s = summary([rc[i] for i in idx])
            p = summary([pt[i] for i in idx])
            print(
                f"| {fam} | {kind} | {s['n']} | {m} ({' / '.join(f'{100 * v:.2f}' for v in inner.values())}) "
                f"| {label(cfgs[c])} | {s['stopped']:.0f} | {fmt(s['saved'])} "
                f"({fmt(s['oracle_saved'])}) | {100 * s['vs_end']:+.2f}% / "
                f"{100 * s['vs_end_max']:+.2f}% | {100 * s['vs_best']:+.2f}% | "
                f"{PATIENCE_GRID[pchosen[fam]]}, {fmt(p['saved'])}, {100 * p['vs_end']:+.2f}%, "
                f"{100 * p['vs_best']:+.2f}% |"
            )
    for name in result:
        if name.startswith("runcast"):
            goals(runs, result[name], result["patience"], name)
    chosen = {
        "runcast": {
            f: [str(x) for x in cfgs[v[0]]] + [f"margin {v[1]}"] for f, v in nested.items()
        },
        "runcast, margin 0": {f: [str(x) for x in cfgs[c]] for f, c in plain.items()},
        "patience": {f: PATIENCE_GRID[c] for f, c in pchosen.items()},
        "train-only": {f: list(PLATEAU_GRID[c]) for f, c in tchosen.items()},
    }
    print("\n<!-- chosen settings: " + json.dumps(chosen) + " -->")


def goals(
    runs: list[Run], outs: list[dict[str, float]], base_outs: list[dict[str, float]], name: str
) -> None:
    print(f"\n### Goals ({name}, pooled over held-out families)\n")
    ovf = summary([x for r, x in zip(runs, outs, strict=True) if r.overfits])
    imp = summary([x for r, x in zip(runs, outs, strict=True) if not r.overfits])
    mine, base = summary(outs), summary(base_outs)
    rows = [
        ("overfitting: share of the oracle's saving >= 60%", ovf["share"] >= GOAL_SHARE,
         fmt(ovf["share"])),
        ("overfitting: kept within 0.5% of the best (mean)", ovf["vs_best"] <= GOAL_BEST_MEAN,
         f"{100 * ovf['vs_best']:+.2f}%"),
        ("improving: <= 0.3% worse than the end (mean)", imp["vs_end"] <= GOAL_END_MEAN,
         f"{100 * imp['vs_end']:+.2f}%"),
        ("improving: never > 1% worse (max)", imp["vs_end_max"] <= GOAL_END_MAX,
         f"{100 * imp['vs_end_max']:+.2f}%"),
        ("pooled: more compute saved than patience", mine["saved"] > base["saved"],
         f"{fmt(mine['saved'])} vs {fmt(base['saved'])}"),
        ("pooled: kept weights closer to the best than patience", mine["vs_best"] < base["vs_best"],
         f"{100 * mine['vs_best']:+.4f}% vs {100 * base['vs_best']:+.4f}%"),
    ]  # fmt: skip
    print("| goal | met | measured |")
    print("|---|---|---|")
    for what, ok, val in rows:
        print(f"| {what} | {'yes' if ok else 'NO'} | {val} |")


def detail(
    runs: list[Run], cfgs: list[tuple[Any, ...]], pick: dict[str, int], fam_of: np.ndarray
) -> None:
    """Why the held-out stopper stopped (turned / stalled), how late after the best on
    overfitting runs, and the improving runs it kept worse than the end."""
    reasons: dict[tuple[bool, str], int] = {}
    late: list[int] = []
    losers = []
    for r in runs:
        why: list[str] = []
        k = replay_runcast(r, cfgs[pick[r.family]], why)
        kind = "ran to the end" if k is None else why[0].split(":")[0]
        reasons[(r.overfits, kind)] = reasons.get((r.overfits, kind), 0) + 1
        if k is not None and r.overfits:
            late.append(k - r.best_index)
        o = outcome(r, k)
        if not r.overfits and o["vs_end"] > 0:
            losers.append((o["vs_end"], r, k, why[0] if why else "-"))
    print("\n### Why it stopped (held-out settings)\n")
    print("| kind of run | reason | runs |")
    print("|---|---|---|")
    for (ovf, kind), n in sorted(reasons.items()):
        print(f"| {'overfitting' if ovf else 'improving'} | {kind} | {n} |")
    if late:
        print(
            f"\nOverfitting runs stopped: {len(late)}, a median {np.median(late):.0f} evaluations "
            f"(mean {np.mean(late):.1f}) after the run's best evaluation."
        )
    print("\n### Improving runs kept worse than the end (runcast)\n")
    print("| run | family | kept vs end | stopped at | why |")
    print("|---|---|---|---|---|")
    for loss, r, k, why in sorted(losers, key=lambda x: -x[0]):
        print(
            f"| {r.id} | {r.family} | {100 * loss:+.2f}% | eval {k} of {len(r.val)} "
            f"(step {r.steps[k]}) | {why[:160]} |"
        )


def held_back(runs: list[Run], cfgs: list[tuple[Any, ...]], pick: dict[str, int]) -> None:
    """Where the turn test stops on overfitting runs against the oracle, per family, and what
    holds it back: on each run it does not stop, the one condition that, relaxed alone (z to
    0, min_rise to 0, train_z to 0, or the rising last window), would stop it."""
    print("\n### Overfitting runs: where the turn test stops, and what holds it back\n")
    print(
        "| family | runs | stopped | evals from best to stop (median) | oracle's best at "
        "(median eval / of) | not stopped: would stop with z 0 / min_rise 0 / train_z 0 / "
        "no slope test | never rose past its noise and 1% |"
    )
    print("|---|---|---|---|---|---|---|")
    for fam in sorted({r.family for r in runs if r.overfits}):
        rs = [r for r in runs if r.family == fam and r.overfits]
        w, z, tz, mr, *_ = cfgs[pick[fam]]
        late, held, never = [], [0, 0, 0, 0], 0
        for r in rs:
            f = features(r, w)
            up = np.nan_to_num(f.up) > 0
            rel = (
                (f.rise > np.maximum(z * f.se, mr * f.low)) & up & (f.train_ok > tz),
                (f.rise > mr * f.low) & up & (f.train_ok > tz),
                (f.rise > z * f.se) & up & (f.train_ok > tz),
                (f.rise > np.maximum(z * f.se, mr * f.low)) & up & (f.train_ok > 0),
                (f.rise > np.maximum(z * f.se, mr * f.low)) & (f.train_ok > tz),
            )
            k = int(first(rel[0]))
            if k >= 0:
                late.append(k - r.best_index)
                continue
            for i in range(4):
                held[i] += int(first(rel[i + 1])) >= 0
            never += not bool((f.rise > np.maximum(z * f.se, 0.01 * f.low)).any())
        lat = f"{np.median(late):.0f}" if late else "-"
        best = np.median([r.best_index for r in rs])
        print(
            f"| {fam} | {len(rs)} | {len(late)} | {lat} | {best:.0f} / {len(rs[0].val)} | "
            f"{' / '.join(map(str, held))} | {never} |"
        )


if __name__ == "__main__":
    main()
