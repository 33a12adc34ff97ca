"""Time to result: AlgoPerf's performance profiles and scores (Dahl et al. 2023).

Each algorithm's time to reach a workload's target (in steps or seconds) is divided by the best
time any algorithm needed on that workload: the performance ratio ``r = t / best t`` (1 for the
fastest; infinite for a run that missed the target). The profile ``rho(tau)`` is the share of
workloads an algorithm solves within ``tau`` times the best, and its score is the profile's
area from ``tau = 1`` to ``r_max`` (4, as AlgoPerf), divided by ``r_max - 1``: 1 means fastest
everywhere, 0 means never within ``r_max`` times the best. A workload contributes
``(r_max - r) / (r_max - 1)`` when ``r <= r_max``, so the score is computed exactly, not on a
grid.

A run that has not reached the target yet can be given the forecast of when it will
(:func:`time_to_target` with ``until``): that time is marked as a forecast and drawn as one.

Example:
    >>> times = {"adamw": {"lm": 100, "cnn": 50}, "sf": {"lm": 80, "cnn": float("inf")}}
    >>> p = performance_profile(times)
    >>> p.ratios["adamw"]["lm"], p.ratios["sf"]["cnn"]
    (1.25, inf)
    >>> round(p.scores["adamw"], 4), round(p.scores["sf"], 4)
    (0.9583, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from runcast.curve import Curve
from runcast.errors import InvalidInputError


class TimeToTarget(NamedTuple):
    """When a run reaches a target: ``step`` and ``seconds`` (inf: not reached or unknown).

    ``forecast`` is True when ``step`` is the median of a forecast (the run has not reached the
    target yet), with ``interval`` its 80% interval.
    """

    step: float
    seconds: float
    forecast: bool = False
    interval: tuple[float, float] | None = None


class Profile(NamedTuple):
    """Performance ratios, the profile ``rho(tau)`` on a grid, and each algorithm's score."""

    algorithms: list[str]
    workloads: list[str]
    times: dict[str, dict[str, float]]
    ratios: dict[str, dict[str, float]]
    taus: npt.NDArray[np.float64]
    rho: dict[str, npt.NDArray[np.float64]]
    scores: dict[str, float]
    r_max: float
    forecast: dict[str, dict[str, bool]]

    def rho_at(self, algorithm: str, tau: float) -> float:
        """The share of workloads ``algorithm`` solves within ``tau`` times the best time."""
        r = np.array([self.ratios[algorithm][w] for w in self.workloads])
        return float(np.mean(r <= tau)) if r.size else 0.0


def performance_profile(
    times: Mapping[str, Mapping[str, float | None]],
    *,
    r_max: float = 4.0,
    forecast: Mapping[str, Mapping[str, bool]] | None = None,
    n_taus: int = 301,
) -> Profile:
    """AlgoPerf scores of algorithms from their times to target on each workload.

    Args:
        times: ``times[algorithm][workload]``: time to the target (steps or seconds); ``inf``,
            NaN, None or a missing workload count as a miss (infinite ratio).
        r_max: the largest ratio that still scores (AlgoPerf: 4).
        forecast: ``forecast[algorithm][workload]`` True where the time is a forecast.
        n_taus: points of the ``tau`` grid from 1 to ``r_max`` (for drawing ``rho``).

    Example: see the module docstring.
    """
    if not isinstance(times, Mapping) or not times:
        raise InvalidInputError(
            "times must be a non-empty dict {algorithm: {workload: time}}, but got "
            f"{type(times).__name__} {times!r:.80}."
        )
    if not (isinstance(r_max, (int, float)) and 1 < r_max < math.inf):
        raise InvalidInputError(f"r_max must be a finite number > 1 (AlgoPerf: 4), got {r_max!r}.")
    workloads: list[str] = []
    for a in times:
        if not isinstance(times[a], Mapping):
            raise InvalidInputError(
                f"times[{a!r}] must be a dict {{workload: time}}, but got {times[a]!r:.80}."
            )
        workloads += [str(w) for w in times[a] if str(w) not in workloads]
    clean = {a: {w: _time(times[a].get(w), a, w) for w in workloads} for a in times}
    best = {w: min(clean[a][w] for a in clean) for w in workloads}
    ratios = {a: {w: _ratio(clean[a][w], best[w]) for w in workloads} for a in clean}
    taus = np.linspace(1.0, float(r_max), n_taus)
    rho, scores = {}, {}
    for a in clean:
        r = np.array([ratios[a][w] for w in workloads], dtype=np.float64)
        rho[a] = (r[None, :] <= taus[:, None]).mean(axis=1) if r.size else np.zeros_like(taus)
        inside = r[r <= r_max]
        scores[a] = float(np.sum((r_max - inside) / (r_max - 1)) / max(len(workloads), 1))
    marks = {
        a: {w: bool(forecast and forecast.get(a, {}).get(w, False)) for w in workloads}
        for a in clean
    }
    return Profile(
        [str(a) for a in clean], workloads, clean, ratios, taus, rho, scores, float(r_max), marks
    )


def _time(value: Any, algorithm: Any, workload: str) -> float:
    if value is None:
        return math.inf
    try:
        t = float(value)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"The time of {algorithm!r} on {workload!r} must be a number, but got {value!r}."
        ) from err
    if math.isnan(t):
        return math.inf
    if t < 0:
        raise InvalidInputError(
            f"The time of {algorithm!r} on {workload!r} must be >= 0, but got {t}."
        )
    return t


def _ratio(t: float, best: float) -> float:
    if math.isinf(t) or math.isinf(best):
        return math.inf
    if best == 0:
        return 1.0 if t == 0 else math.inf
    return t / best


def time_to_target(
    curve: Curve,
    target: float,
    *,
    wall: npt.ArrayLike | None = None,
    start: float | None = None,
    until: int | None = None,
    direction: str = "down",
) -> TimeToTarget:
    """The first step (and second) at which ``curve`` reaches ``target``.

    Args:
        curve: the run's metric.
        target: the value to reach (at or below it for ``direction="down"``).
        wall: the Unix time of each point of ``curve`` (seconds are measured from ``start``,
            default the first point's time).
        until: when the run has not reached the target, forecast it up to this step
            (``runcast.forecast(...).steps_to``); the median step is returned as a forecast.
        direction: ``"down"`` for a loss, ``"up"`` for an accuracy.

    Example:
        >>> from runcast import Curve
        >>> c = Curve([0, 10, 20, 30], [3.0, 2.0, 1.5, 1.2])
        >>> time_to_target(c, 1.5, wall=[100.0, 110.0, 130.0, 140.0])
        TimeToTarget(step=20.0, seconds=30.0, forecast=False, interval=None)
    """
    if direction not in ("down", "up"):
        raise InvalidInputError(f"direction must be 'down' or 'up', but got {direction!r}.")
    if not math.isfinite(float(target)):
        raise InvalidInputError(f"target must be a finite number, but got {target!r}.")
    values = np.asarray(curve.value, dtype=np.float64)
    hit = values <= target if direction == "down" else values >= target
    walls = None if wall is None else np.asarray(wall, dtype=np.float64)
    if walls is not None and walls.shape != values.shape:
        raise InvalidInputError(
            f"wall has {walls.size} times but the curve has {values.size} points; pass one "
            "time per point."
        )
    if hit.any():
        i = int(np.argmax(hit))
        secs = math.inf
        if walls is not None:
            secs = float(walls[i] - (walls[0] if start is None else start))
        return TimeToTarget(float(curve.step[i]), secs)
    last = int(curve.step[-1])
    if until is None or until <= last:
        return TimeToTarget(math.inf, math.inf)
    from runcast.forecast import forecast

    way: Literal["down", "up"] = "down" if direction == "down" else "up"
    dist = forecast(curve, until=until, direction=way).steps_to(target)
    median = float(dist.median)
    lo, hi = (float(v) for v in dist.interval(0.8))
    secs = math.inf
    if walls is not None and walls.size > 1 and math.isfinite(median):
        # the seconds a step has taken so far, carried forward to the forecast step
        per_step = (walls[-1] - walls[0]) / max(last - int(curve.step[0]), 1)
        secs = float(walls[-1] - (walls[0] if start is None else start)) + per_step * (
            median - last
        )
    return TimeToTarget(median, secs, True, (lo, hi))


def profile_figure(profile: Profile, title: str = "Performance profile") -> Any:
    """The profile ``rho(tau)`` as a plotly figure (a line per algorithm, its score in the
    legend; algorithms scored from a forecast are dashed and say so)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for a in profile.algorithms:
        forecasted = any(profile.forecast[a].values())
        label = f"{a} (score {profile.scores[a]:.3f}{', forecast' if forecasted else ''})"
        fig.add_trace(
            go.Scatter(
                x=profile.taus,
                y=profile.rho[a],
                mode="lines",
                name=label,
                line={"shape": "hv", "dash": "dash" if forecasted else "solid"},
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="tau (time / best time)",
        yaxis_title="rho(tau): share of workloads within tau x best",
        yaxis_range=[0, 1.05],
        template="plotly_white",
    )
    return fig


def write_profile_html(profile: Profile, path: str, title: str = "Time to result") -> str:
    """Write the profile and its table of times and ratios as one offline HTML file."""
    from pathlib import Path

    fig = profile_figure(profile, title)
    rows = []
    for a in profile.algorithms:
        cells = []
        for w in profile.workloads:
            t, r = profile.times[a][w], profile.ratios[a][w]
            mark = " (forecast)" if profile.forecast[a][w] else ""
            cells.append(f"<td>{_fmt(t)}{mark}</td><td>{_fmt(r, 2)}</td>")
        rows.append(f"<tr><td>{_esc(a)}</td>{''.join(cells)}<td>{profile.scores[a]:.3f}</td></tr>")
    head = "".join(f"<th>{_esc(w)}: time</th><th>ratio</th>" for w in profile.workloads)
    table = (
        f"<table border=1 cellpadding=4><tr><th>algorithm</th>{head}<th>score</th></tr>"
        f"{''.join(rows)}</table>"
    )
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    html = html.replace("<body>", f"<body><h2>{_esc(title)}</h2>{table}", 1)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return str(out)


def _fmt(v: float, digits: int = 0) -> str:
    return "inf" if math.isinf(v) else f"{v:.{digits}f}" if digits else f"{v:g}"


def _esc(text: str) -> str:
    import html

    return html.escape(str(text))
