"""Plot data for batch size over a run: the batch used, the noise scale, measured CBS intervals.

A run records ``batch_size`` (the TrainingMonitor each step, or BatchSizeWarmup at each change),
``noise_scale`` (B_simple) and, where :func:`runcast.steer.measure_cbs` ran, ``cbs_lo`` /
``cbs_hi`` at the checkpoint's step. One figure draws them on one log axis (batch sizes), so a
warmup can be checked against the CBS it followed and the noise scale against the CBS.

Example:
    >>> import runcast, tempfile, os
    >>> db = os.path.join(tempfile.mkdtemp(), "b.db")
    >>> with runcast.init(name="w", db=db) as run:
    ...     run.log({"batch_size": 8, "noise_scale": 5.0}, step=0)
    ...     run.log({"cbs_lo": 16, "cbs_hi": 32, "noise_scale": 9.0}, step=50)
    ...     run.log({"loss": 1.0}, step=99)
    >>> d = batch_data(runcast.open_store(db), run.id)
    >>> d.batch_step.tolist(), d.batch.tolist(), d.cbs_lo.tolist(), d.cbs_hi.tolist()
    ([0, 99], [8.0, 8.0], [16.0], [32.0])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

KEYS = ("batch_size", "noise_scale", "cbs_lo", "cbs_hi")


class BatchData(NamedTuple):
    """One run's batch-size picture (empty arrays where a metric was not recorded).

    ``batch`` is a step function carried to the run's last step; ``cbs_hi`` is NaN where every
    batch size tried passed (the CBS is at least ``cbs_lo``).
    """

    run_id: str
    name: str
    batch_step: IntArray
    batch: FloatArray
    noise_step: IntArray
    noise: FloatArray
    cbs_step: IntArray
    cbs_lo: FloatArray
    cbs_hi: FloatArray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None) for the dashboard."""

        def nums(a: Any) -> list[float | None]:
            return [float(v) if np.isfinite(v) else None for v in np.asarray(a, dtype=float)]

        return {
            "run_id": self.run_id,
            "name": self.name,
            "batch": {"step": self.batch_step.tolist(), "value": nums(self.batch)},
            "noise_scale": {"step": self.noise_step.tolist(), "value": nums(self.noise)},
            "cbs": {
                "step": self.cbs_step.tolist(),
                "lo": nums(self.cbs_lo),
                "hi": nums(self.cbs_hi),
            },
        }


def batch_data(store: Any, run_id: str) -> BatchData | None:
    """The batch-size picture of a run, or None when it recorded none of :data:`KEYS`."""
    info = store.run(run_id)
    keys = set(store.keys(info.id))
    if not keys & set(KEYS):
        return None
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)

    def read(key: str) -> tuple[IntArray, FloatArray]:
        if key not in keys:
            return empty_i, empty_f
        c = store.curve(info.id, key)
        ok = np.isfinite(c.value)
        return c.step[ok].astype(np.int64), c.value[ok].astype(np.float64)

    last = max((store.curve(info.id, k).step[-1] for k in keys if k not in KEYS), default=None)
    b_step, b = read("batch_size")
    if b.size and last is not None and last > b_step[-1]:
        # logged at each change: hold the last batch size to the run's end
        b_step, b = np.append(b_step, last), np.append(b, b[-1])
    n_step, noise = read("noise_scale")
    lo_step, lo = read("cbs_lo")
    hi_step, hi_v = read("cbs_hi")
    hi = np.full(lo.shape, np.nan)
    where = {int(s): v for s, v in zip(hi_step, hi_v, strict=True)}
    for i, s in enumerate(lo_step):
        hi[i] = where.get(int(s), np.nan)
    return BatchData(info.id, str(info.name), b_step, b, n_step, noise, lo_step, lo, hi)


def batch_figure(d: BatchData) -> Any:
    """A plotly figure: batch size (steps), noise scale (line), CBS intervals (bars)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if d.batch.size:
        fig.add_trace(
            go.Scatter(
                x=d.batch_step,
                y=d.batch,
                mode="lines",
                name="batch size",
                line={"shape": "hv", "width": 2, "color": "#1f77b4"},
            )
        )
    if d.noise.size:
        fig.add_trace(
            go.Scatter(
                x=d.noise_step,
                y=d.noise,
                mode="lines",
                name="noise scale B_simple",
                line={"dash": "dash", "color": "#7f7f7f"},
            )
        )
    if d.cbs_lo.size:
        top = np.where(np.isfinite(d.cbs_hi), d.cbs_hi, d.cbs_lo * 2)
        fig.add_trace(
            go.Scatter(
                x=d.cbs_step,
                y=d.cbs_lo,
                mode="markers",
                name="measured CBS [lo, hi]",
                marker={"color": "#d62728", "size": 8},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": top - d.cbs_lo,
                    "arrayminus": np.zeros_like(d.cbs_lo),
                    "color": "#d62728",
                },
            )
        )
    fig.update_layout(
        title=f"{d.name}: batch size, noise scale and critical batch size",
        xaxis_title="step",
        yaxis_title="batch size",
        yaxis_type="log",
        height=420,
    )
    return fig


def batch_png(d: BatchData, path: str | Path, plt: Any) -> Path:
    """The same figure as a PNG (matplotlib)."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    if d.batch.size:
        ax.step(d.batch_step, d.batch, where="post", lw=2, label="batch size")
    if d.noise.size:
        ax.plot(d.noise_step, d.noise, ls="--", color="grey", label="noise scale B_simple")
    for s, lo, hi in zip(d.cbs_step, d.cbs_lo, d.cbs_hi, strict=True):
        top = hi if np.isfinite(hi) else lo * 2
        ax.plot([s, s], [lo, top], color="#d62728", lw=3, solid_capstyle="butt")
        ax.plot(s, lo, "o", color="#d62728", ms=4)
    if d.cbs_lo.size:
        ax.plot([], [], color="#d62728", lw=3, label="measured CBS [lo, hi]")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("step")
    ax.set_ylabel("batch size")
    ax.set_title(f"{d.name}: batch size and CBS")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
