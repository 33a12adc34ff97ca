"""The scaling-law panel: loss against compute per model size, the fitted compute-optimal frontier
with its band, and the prediction for the next size with its band.

``scaling_data`` computes the panel's numbers into named tuples; ``scaling_figure`` draws them
with plotly; ``write_scaling_html`` writes them as an offline HTML report.

Example:
    >>> import numpy as np
    >>> from runcast.scaling import ScalingConfig, ScalingData, fit_scaling
    >>> n = np.repeat([1e8, 3e8, 1e9], 4); d = np.tile([2e9, 5e9, 1e10, 2e10], 3)
    >>> data = ScalingData.from_arrays(n, d, 1.8 + 480 / n**0.35 + 2000 / d**0.37)
    >>> panel = scaling_data(fit_scaling(data, config=ScalingConfig(n_boot=10)), data)
    >>> [round(s.n / 1e6) for s in panel.sizes], round(panel.next_size.n / 1e9, 2)
    ([100, 300, 1000], 3.33)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from runcast.errors import InvalidInputError
from runcast.scaling import ScalingData, ScalingLaw

FloatArray = npt.NDArray[np.float64]


class SizePoints(NamedTuple):
    """One model size: its points' compute (6 N D), losses, and the law's fit at them."""

    n: float
    compute: FloatArray
    loss: FloatArray
    fitted: FloatArray


class Band(NamedTuple):
    """A predicted loss over compute: median and 80% interval."""

    compute: FloatArray
    median: FloatArray
    lo80: FloatArray
    hi80: FloatArray


class NextSize(NamedTuple):
    """The prediction for a model size beyond the data."""

    n: float
    band: Band


class ScalingPanel(NamedTuple):
    """Everything the scaling panel shows."""

    form: str
    params: dict[str, float]
    sizes: tuple[SizePoints, ...]
    frontier: Band
    next_size: NextSize | None


def scaling_data(
    law: ScalingLaw, data: ScalingData, next_n: float | None = None, points: int = 60
) -> ScalingPanel:
    """The panel's numbers.

    Args:
        law: the fitted law.
        data: the points it was fitted on.
        next_n: the size to predict (default: one step beyond the largest, at the ratio of the
            two largest sizes).
        points: how many compute values the frontier and the prediction are drawn at.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise InvalidInputError(f"points must be a whole number >= 2, but got {points!r}.")
    sizes = data.sizes
    if next_n is None and sizes.size >= 2:
        next_n = float(sizes[-1] ** 2 / sizes[-2])
    if next_n is not None and not (np.isfinite(next_n) and next_n > 0):
        raise InvalidInputError(f"next_n must be a positive parameter count, not {next_n!r}.")
    fit = law.predict(data.n, data.d, unique=data.unique, draws=1).point
    per_size = []
    for n in sizes:
        m = data.n == n
        order = np.argsort(data.d[m])
        per_size.append(
            SizePoints(
                float(n),
                (6.0 * n * data.d[m])[order],
                data.loss[m][order],
                fit[m][order],
            )
        )
    compute = 6.0 * data.n * data.d
    lo_c, hi_c = float(compute.min()), float(compute.max())
    grid = np.geomspace(lo_c, hi_c * 10.0, points)
    alloc = law.optimal(grid, level=0.8)
    frontier = Band(grid, alloc.loss, alloc.loss_interval[0], alloc.loss_interval[1])
    nxt = None
    if next_n is not None:
        d_max = float(data.d.max()) * next_n / float(sizes[-1])
        d_grid = np.geomspace(float(data.d.min()), d_max, points)
        pred = law.predict(next_n, d_grid)
        lo, hi = pred.interval(0.8)
        nxt = NextSize(float(next_n), Band(6.0 * next_n * d_grid, pred.median, lo, hi))
    return ScalingPanel(law.form.name, law.params, tuple(per_size), frontier, nxt)


def _size_label(n: float) -> str:
    return f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.3g}M"


def scaling_figure(panel: ScalingPanel) -> Any:
    """Loss against compute: each size's points and fit, the frontier and the next size."""
    import plotly.graph_objects as go

    from runcast.report._plotly import PALETTE, _rgba

    fig = go.Figure()
    for i, s in enumerate(panel.sizes):
        colour = PALETTE[i % len(PALETTE)]
        label = _size_label(s.n)
        fig.add_trace(
            go.Scatter(
                x=s.compute.tolist(),
                y=s.loss.tolist(),
                mode="markers",
                marker={"color": colour, "size": 5},
                name=f"N = {label}",
                legendgroup=label,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=s.compute.tolist(),
                y=s.fitted.tolist(),
                mode="lines",
                line={"color": colour, "width": 1},
                showlegend=False,
                legendgroup=label,
            )
        )
    for band, colour, name in [(panel.frontier, "#222222", "compute-optimal frontier")] + (
        [(panel.next_size.band, "#d62728", f"N = {_size_label(panel.next_size.n)} (predicted)")]
        if panel.next_size is not None
        else []
    ):
        x = band.compute.tolist()
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=band.hi80.tolist() + band.lo80[::-1].tolist(),
                fill="toself",
                fillcolor=_rgba(colour, 0.15) if colour.startswith("#") else colour,
                line={"width": 0},
                hoverinfo="skip",
                name=f"{name}: 80%",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=band.median.tolist(),
                mode="lines",
                line={"color": colour, "dash": "dash", "width": 2},
                name=name,
            )
        )
    ps = ", ".join(f"{k}={v:.4g}" for k, v in panel.params.items())
    fig.update_xaxes(type="log", title_text="training compute (6 N D FLOPs)")
    fig.update_yaxes(type="log", title_text="loss")
    fig.update_layout(title=f"Scaling law ({panel.form}): {ps}", height=560)
    return fig


def write_scaling_html(
    law: ScalingLaw, data: ScalingData, path: str | Path, next_n: float | None = None
) -> Path:
    """Write the scaling panel as an offline HTML report; returns its path."""
    from runcast.report import Report, write_html

    panel = scaling_data(law, data, next_n)
    rep = Report(
        f"runcast scaling law: {len(data)} points, {data.sizes.size} sizes",
        "loss",
        (),
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        scaling=panel,
    )
    return write_html(rep, path)
