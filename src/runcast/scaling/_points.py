"""The points a scaling law is fitted on: (parameter count N, tokens D, loss) per checkpoint.

Points come from arrays, a table (CSV or columns), curves (one per model, with its parameter
count and tokens per step), or runs in the store (their config gives both). Checkpoints of one
run share a ``group``, so the bootstrap resamples runs, not checkpoints. As the Hitchhiker's
guide (Choshen et al. 2025) recommends, intermediate checkpoints are used, but the first part of
each curve (``drop_first``, a fraction of the run's tokens) is dropped: early losses follow the
warmup, not the law. With many runs, their final losses alone are best (Chinchilla's approach
3); with few, checkpoints past the first half did better than the guide's 10% on the families
runcast was checked on (``drop_first="auto"`` picks). Long curves are thinned to ``max_per_run``
checkpoints so that a run logged every step does not outweigh one logged a hundred times.

Example:
    >>> from runcast import Curve
    >>> c = Curve([100, 200, 300, 400], [3.2, 3.0, 2.9, 2.85])
    >>> pts = ScalingData.from_curves([c], n_params=[1e8], tokens_per_step=1e6, drop_first=0.3)
    >>> pts.d.tolist(), pts.loss.tolist()
    ([200000000.0, 300000000.0, 400000000.0], [3.0, 2.9, 2.85])
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.errors import InvalidInputError, NotEnoughDataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: which checkpoints to fit, chosen leave-one-family-out on real model families among 0.1 (the
#: Hitchhiker's guide's), 0.3, 0.5, final losses only, and "auto" (bench/README.md): final
#: losses when there are at least ``AUTO_FINAL_RUNS`` runs (two per parameter of the
#: data-constrained form), else every checkpoint past the first half of its run
DEFAULT_DROP_FIRST = "auto"
AUTO_FINAL_RUNS = 12
AUTO_DROP_FIRST = 0.5

#: config keys read for a run's parameter count and its tokens (per step, or in all)
PARAM_KEYS = ("n_params", "num_params", "params", "parameters", "N")
TOKENS_PER_STEP_KEYS = ("tokens_per_step", "batch_tokens")
TOTAL_TOKENS_KEYS = ("tokens", "train_tokens", "total_tokens", "D")
UNIQUE_KEYS = ("unique_tokens", "tokens_per_epoch")
#: a run on repeated data whose final loss is this far (in log loss) above its lowest has turned:
#: it overfits the repeated tokens. Below it a rise is evaluation noise and the law's own error
#: (on Muennighoff et al.'s runs: at most 0.01 unless turned, at least 0.11 when turned)
TURN_RISE = 0.02


def _floats(name: str, values: Any, n: int | None = None) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"{name} must be numbers, but got {values!r:.80} ({err})."
        ) from None
    if n is not None and arr.size == 1 and n > 1:
        arr = np.full(n, float(arr[0]))
    if n is not None and arr.size != n:
        raise InvalidInputError(f"{name} needs one value per point ({n}), but got {arr.size}.")
    return arr


def thin(index: IntArray, max_points: int) -> IntArray:
    """At most ``max_points`` of ``index``, evenly spread, always keeping the last.

    Example:
        >>> thin(np.arange(10), 4).tolist()
        [0, 3, 6, 9]
    """
    if index.size <= max_points:
        return index
    pick = np.unique(np.round(np.linspace(0, index.size - 1, max_points)).astype(np.int64))
    return index[pick]


@dataclass(frozen=True)
class ScalingData:
    """Points to fit a scaling law on; ``unique`` is the number of unique tokens (inf if none
    repeat) and ``group`` the run each point belongs to.

    ``turns`` holds, for each run on repeated data read from a curve, its epochs at its end and
    how far (log loss) its final loss rose above its lowest (0 unless it turned, see
    :data:`TURN_RISE`). A turned run's points are its running minimum, the loss a law of
    diminishing returns describes; the rise is a separate term of the law.
    """

    n: FloatArray
    d: FloatArray
    loss: FloatArray
    unique: FloatArray
    group: IntArray
    turns: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        size = self.n.size
        for name in ("d", "loss", "unique", "group"):
            if getattr(self, name).size != size:
                raise InvalidInputError(
                    f"ScalingData needs one {name} per point ({size}), "
                    f"but got {getattr(self, name).size}."
                )
        for name, arr in (("parameter counts N", self.n), ("token counts D", self.d)):
            bad = ~np.isfinite(arr) | (arr <= 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InvalidInputError(
                    f"{name} must be positive numbers, but point {i} has {float(arr[i])!r}."
                )
        bad = ~np.isfinite(self.loss) | (self.loss <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(
                f"Losses must be positive numbers (a law is fitted to log loss), but point {i} "
                f"has {float(self.loss[i])!r}. Drop missing points first."
            )
        if (self.unique <= 0).any() or np.isnan(self.unique).any():
            raise InvalidInputError("Unique token counts must be positive (inf: no repetition).")

    def __len__(self) -> int:
        return int(self.n.size)

    @property
    def sizes(self) -> FloatArray:
        """The distinct parameter counts, smallest first."""
        return np.unique(self.n)

    @property
    def repeats(self) -> bool:
        """Whether any point saw a token twice (``D > unique``)."""
        return bool((self.d > self.unique).any())

    def subset(self, mask: npt.NDArray[np.bool_]) -> ScalingData:
        """The points where ``mask`` is true."""
        return ScalingData(
            self.n[mask],
            self.d[mask],
            self.loss[mask],
            self.unique[mask],
            self.group[mask],
            self.turns,
        )

    @classmethod
    def from_arrays(
        cls,
        n: Any,
        d: Any,
        loss: Any,
        unique: Any = None,
        group: Any = None,
    ) -> ScalingData:
        """Points from arrays (a scalar N, D or unique applies to every point).

        Example:
            >>> ScalingData.from_arrays([1e8, 2e8], 2e9, [3.1, 2.9]).d.tolist()
            [2000000000.0, 2000000000.0]
        """
        y = _floats("loss", loss)
        size = y.size
        if size == 0:
            raise NotEnoughDataError("No points to fit a scaling law on.")
        u = np.full(size, np.inf) if unique is None else _floats("unique tokens", unique, size)
        g = (
            np.arange(size)
            if group is None
            else np.unique(np.asarray(group), return_inverse=True)[1]
        )
        return cls(
            _floats("N", n, size), _floats("D", d, size), y, u, np.asarray(g, np.int64).ravel()
        )

    @classmethod
    def from_table(
        cls,
        table: str | Path | Mapping[str, Any],
        n: str = "N",
        d: str = "D",
        loss: str = "loss",
        unique: str | None = None,
        group: str | None = None,
    ) -> ScalingData:
        """Points from a CSV file (``.gz`` too) or a mapping of columns (a DataFrame works).

        Rows with an empty or non-finite loss are skipped; ``group`` names the run column.

        Example:
            >>> ScalingData.from_table({"N": [1e8, 4e8], "D": [2e9, 8e9], "loss": [3.0, 2.6]}).n
            array([1.e+08, 4.e+08])
        """
        cols = _read_columns(table) if isinstance(table, (str, Path)) else table
        names = [c for c in (n, d, loss, unique, group) if c is not None]
        missing = [c for c in names if c not in cols]
        if missing:
            raise InvalidInputError(
                f"The table has no column {missing[0]!r} (columns: {', '.join(map(str, cols))}); "
                "name the columns with n=, d=, loss= (and unique=, group=)."
            )
        y = _floats(loss, [_cell(v) for v in cols[loss]])
        keep = np.isfinite(y)
        u = None if unique is None else _floats(unique, [_cell(v) for v in cols[unique]])[keep]
        g = None if group is None else np.asarray([str(v) for v in cols[group]])[keep]
        return cls.from_arrays(
            _floats(n, [_cell(v) for v in cols[n]])[keep],
            _floats(d, [_cell(v) for v in cols[d]])[keep],
            y[keep],
            u,
            g,
        )

    @classmethod
    def from_curves(
        cls,
        curves: Sequence[Curve],
        n_params: Sequence[float],
        tokens_per_step: float | Sequence[float],
        unique: float | Sequence[float] | None = None,
        drop_first: float | str = DEFAULT_DROP_FIRST,
        max_per_run: int = 20,
    ) -> ScalingData:
        """Points from loss curves, one per model: every checkpoint past ``drop_first``.

        ``drop_first`` is a fraction of each curve's last step: checkpoints at or before it are
        left out (0.1 is the Hitchhiker's guide's recommendation; 1 keeps final losses only;
        ``"auto"``: final losses with 12 runs or more, else checkpoints past the first half).
        A run on repeated data whose loss turned up (overfitting) gives its running minimum
        and its rise (``turns``).
        """
        if drop_first == "auto":
            enough = sum(len(c.finite()) > 0 for c in curves) >= AUTO_FINAL_RUNS
            drop_first = 1.0 if enough else AUTO_DROP_FIRST
        if not isinstance(drop_first, (int, float)) or not 0.0 <= drop_first <= 1.0:
            raise InvalidInputError(
                f"drop_first must be in [0, 1] or 'auto', but got {drop_first=}."
            )
        if isinstance(max_per_run, bool) or not isinstance(max_per_run, int) or max_per_run < 1:
            raise InvalidInputError(
                f"max_per_run must be a whole number >= 1, not {max_per_run!r}."
            )
        k = len(curves)
        if len(n_params) != k:
            raise InvalidInputError(
                f"Give one parameter count per curve ({k}), but got {len(n_params)}."
            )
        tps = _floats("tokens_per_step", tokens_per_step, k)
        uniq = np.full(k, np.inf) if unique is None else _floats("unique tokens", unique, k)
        parts: list[tuple[float, FloatArray, FloatArray, float, int]] = []
        turns: list[tuple[float, float]] = []
        for i, curve in enumerate(curves):
            c = curve.finite()
            if len(c) == 0:
                continue
            value = c.value.astype(np.float64)
            epochs = float(c.last_step) * tps[i] / uniq[i]
            if epochs > 1.0:
                value, rise = _running_min(c.step, value)
                turns.append((epochs, rise))
            # the last checkpoint always stays: drop_first=1 fits final losses only
            late = (c.step > drop_first * c.last_step) | (c.step == c.last_step)
            keep = np.flatnonzero(late & (c.step > 0))
            keep = thin(keep, max_per_run)
            parts.append((float(n_params[i]), c.step[keep] * tps[i], value[keep], uniq[i], i))
        if not parts or sum(p[1].size for p in parts) == 0:
            raise NotEnoughDataError(
                "No checkpoints left to fit: the curves are empty or all within drop_first."
            )
        return cls(
            np.concatenate([np.full(p[1].size, p[0]) for p in parts]),
            np.concatenate([p[1] for p in parts]).astype(np.float64),
            np.concatenate([p[2] for p in parts]),
            np.concatenate([np.full(p[1].size, p[3]) for p in parts]),
            np.concatenate([np.full(p[1].size, p[4], dtype=np.int64) for p in parts]),
            tuple(turns),
        )

    @classmethod
    def from_store(
        cls,
        store: Any,
        runs: Sequence[str] | None = None,
        project: str | None = None,
        key: str = "loss",
        drop_first: float | str = DEFAULT_DROP_FIRST,
        max_per_run: int = 20,
    ) -> ScalingData:
        """Points from runs in a store: each run's config gives its parameter count
        (``n_params``) and its tokens (``tokens_per_step``, or ``tokens`` in all, spread over
        its steps); every checkpoint of metric ``key`` past ``drop_first`` is a point."""
        infos = [store.run(r) for r in runs] if runs else store.runs(project)
        if not infos:
            raise NotEnoughDataError(
                "No runs to fit a scaling law on"
                + (f" in project {project!r}." if project else ".")
            )
        curves, sizes, tps, uniq = [], [], [], []
        for info in infos:
            cfg = dict(info.config or {})
            curve = store.curve(info.id, key)
            size = _config_number(cfg, PARAM_KEYS, info, "parameter count", "n_params")
            per_step = _first_number(cfg, TOKENS_PER_STEP_KEYS)
            if per_step is None:
                total = _config_number(
                    cfg, TOTAL_TOKENS_KEYS, info, "token count", "tokens_per_step (or tokens)"
                )
                last = int(cfg.get("steps") or cfg.get("total_steps") or curve.last_step or 1)
                per_step = total / max(last, 1)
            curves.append(curve)
            sizes.append(size)
            tps.append(per_step)
            u = _first_number(cfg, UNIQUE_KEYS)
            uniq.append(np.inf if u is None else u)
        return cls.from_curves(curves, sizes, tps, uniq, drop_first, max_per_run)


def _running_min(step: IntArray, value: FloatArray) -> tuple[FloatArray, float]:
    """A curve on repeated data as the law sees it, and its rise: if its final loss is more than
    :data:`TURN_RISE` above its lowest (past step 0), its running minimum and that rise; else the
    curve unchanged and 0 (a noisy flat end is not a turn).

    Example:
        >>> v, rise = _running_min(np.arange(1, 5), np.array([3.0, 2.0, 2.5, 2.6]))
        >>> v.tolist(), round(rise, 3)
        ([3.0, 2.0, 2.0, 2.0], 0.262)
    """
    pos = step > 0
    if not pos.any():
        return value, 0.0
    rise = float(np.log(value[-1]) - np.log(value[pos].min()))
    if rise <= TURN_RISE:
        return value, 0.0
    out = value.copy()
    out[pos] = np.minimum.accumulate(value[pos])
    return out, rise


def _cell(v: Any) -> float:
    if v is None or (isinstance(v, str) and not v.strip()):
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InvalidInputError(f"A cell holds {v!r}, which is not a number.") from None


def _read_columns(path: str | Path) -> dict[str, list[str]]:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{p}: no such file.")
    opener: Any = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise NotEnoughDataError(f"{p}: the table has no rows.")
    return {k: [r[k] for r in rows] for k in rows[0]}


def _first_number(cfg: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v > 0:
            return float(v)
    return None


def _config_number(
    cfg: Mapping[str, Any], keys: Sequence[str], info: Any, what: str, hint: str
) -> float:
    v = _first_number(cfg, keys)
    if v is None:
        raise InvalidInputError(
            f"Run {info.id} ({info.name}) has no {what} in its config (looked for "
            f"{', '.join(keys)}); record it: runcast.init(config={{'{hint.split()[0]}': ...}})."
        )
    return v
