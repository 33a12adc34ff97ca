"""Build a report's data from runs in a store: one panel per run, and their comparison.

A run's schedule comes from its config (``config["schedule"]``: a spec dict or string, what
``runcast demo`` records) or else from a logged ``lr`` metric. Its planned length comes from the
schedule or from ``config["steps"]`` / ``"total_steps"`` / ``"max_steps"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from runcast.curve import Curve
from runcast.errors import InvalidInputError, MetricNotFoundError, RuncastError, ScheduleError
from runcast.forecast import Forecast
from runcast.report._data import (
    BandData,
    CurveData,
    LRData,
    band_data,
    curve_data,
    lr_data,
    reached,
)
from runcast.report._whatif import WhatIfData, whatif_data
from runcast.schedules import Schedule

_TOTAL_KEYS = ("steps", "total_steps", "max_steps", "num_steps", "total")

#: What a failed forecast or law fit may raise. Besides runcast's own errors, numerical failures
#: inside a fit on an odd curve (NaN weights, a singular matrix) must cost one picture, with a
#: note saying why, never the whole report, dashboard or training run.
FORECAST_ERRORS: tuple[type[Exception], ...] = (
    RuncastError,
    ValueError,
    ArithmeticError,
    np.linalg.LinAlgError,
)


class _RunInfo(Protocol):
    id: str
    name: str
    status: str
    config: Mapping[str, Any]


class RunPanel(NamedTuple):
    """Everything the report shows about one run (None where it could not be computed)."""

    run_id: str
    name: str
    status: str
    key: str
    curve: CurveData
    others: tuple[CurveData, ...]
    lr: LRData | None
    band: BandData | None
    whatif: WhatIfData | None
    final_value: float
    notes: tuple[str, ...]


class Report(NamedTuple):
    """A report: its panels in the order asked for."""

    title: str
    key: str
    runs: tuple[RunPanel, ...]
    created: str
    #: a scaling-law panel (runcast.report._scaling.ScalingPanel), drawn after the runs
    scaling: Any = None
    #: batch size, noise scale and CBS of each run that recorded them (report._batch.BatchData)
    batch: tuple[Any, ...] = ()


def run_schedule(config: Mapping[str, Any], lr: Curve | None = None) -> Schedule | None:
    """The run's LR schedule: the recorded plan (``config["runcast_plan"]``), else
    ``config["schedule"]``, else the logged ``lr`` metric where it covers the planned length.

    A logged LR is interpolated to every step from 0 to its last step.

    Example:
        >>> run_schedule({"schedule": "wsd:peak=1e-3,total=100,decay_start=80"}).total
        100
        >>> run_schedule({}, Curve([0, 2], [1.0, 3.0])).array().tolist()
        [1.0, 2.0, 3.0]
    """
    # the plan an integration recorded, a spec, or the logged lr when it covers the planned
    # length (the lr logged so far is not the plan: runcast.integrations._plan)
    from runcast.integrations._plan import planned_schedule

    return planned_schedule(config, lr).schedule


def planned_total(config: Mapping[str, Any], schedule: Schedule | None) -> int | None:
    """The planned number of steps: the schedule's ``total``, else a ``steps``-like config key.

    Example:
        >>> planned_total({"max_steps": 500}, None)
        500
    """
    if schedule is not None and schedule.total:
        return int(schedule.total)
    for k in _TOTAL_KEYS:
        v = config.get(k)
        # a finite whole number of steps (max_steps=inf is "no limit", not a length)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 1 < v < 2**53:
            return int(v)
    return None


def forecast_band(
    curve: Curve,
    schedule: Schedule | None,
    total: int | None,
    finished: bool,
    cutoff: float = 0.2,
) -> BandData:
    """The forecast band of a run's trend (see :func:`trend_forecast`).

    A run still training is forecast from its last step to its planned end. A finished run is
    forecast from ``cutoff`` of its length, so the picture shows the forecast against what
    happened next (``actual_final``).

    Example:
        >>> c = Curve(np.arange(100), 2.0 + 3.0 / np.sqrt(np.arange(100) + 1.0), name="loss")
        >>> b = forecast_band(c.until(49), None, total=100, finished=False)
        >>> b.cutoff_step, b.final.step, b.actual_final
        (49, 99, None)
    """
    data = curve.finite()
    if len(data) == 0:
        raise InvalidInputError(f"The curve {curve.name!r} has no finite points to forecast from.")
    if total is None and not finished:
        raise InvalidInputError(
            "The run's planned length is unknown, so there is no end to forecast: put 'steps' "
            "(or a schedule spec under 'schedule') in its config."
        )
    last = data.last_step if total is None or finished else total - 1
    if finished:
        # cutoff of the steps run (0..last): 20% of a 1500-step run is step 300, as in the demo
        cut = int(cutoff * (last + 1))
        start = data.until(cut)
        actual: float | None = reached(data)
    else:
        cut, start, actual = data.last_step, data, None
    if last <= cut:
        raise InvalidInputError(
            f"Nothing to forecast: the run is at step {cut} and its planned end is step {last}."
        )
    return band_data(trend_forecast(start, schedule, last), cut, actual)


def trend_forecast(curve: Curve, schedule: Schedule | None, until: int) -> Forecast:
    """The forecast every picture of a run shows: of its trend (``noise=False``), seeded.

    The band is of the trend, not of single noisy points: a per-step training loss's own noise
    made the band's edges jagged and wide, while the final value it is judged against
    (:func:`~runcast.report.reached`) is a trend too. One call, so the demo's summary, the
    report and the dashboard show the same numbers for the same run (the forecast is seeded).

    Example:
        >>> c = Curve(np.arange(50), 2.0 + 3.0 / np.sqrt(np.arange(50) + 1.0), name="loss")
        >>> a, b = trend_forecast(c, None, 99), trend_forecast(c, None, 99)
        >>> a.final.interval(0.8) == b.final.interval(0.8)
        True
    """
    import runcast

    return runcast.forecast(curve, until=until, schedule=schedule, noise=False, seed=0)


def build_panel(
    store: Any, run_id: str, key: str = "loss", cutoff: float = 0.2, whatif: bool = True
) -> RunPanel:
    """Compute one run's panel; parts that cannot be computed are None with a note why."""
    info: _RunInfo = store.run(run_id)
    keys = list(store.keys(info.id))
    if key not in keys:
        raise MetricNotFoundError(
            f"Run {info.id} ({info.name}) has no metric {key!r}; it has: "
            f"{', '.join(keys) or 'none'}. Pick one with --key."
        )
    curve = store.curve(info.id, key)
    config = dict(info.config or {})
    notes: list[str] = []
    try:
        schedule = run_schedule(config, store.curve(info.id, "lr") if "lr" in keys else None)
    except ScheduleError as err:
        # one run's bad config costs its forecast and what-if, not the whole report
        notes.append(f"No schedule: config['schedule'] is not usable ({err}).")
        schedule = None
    total = planned_total(config, schedule)
    finished = info.status != "running"
    lr = None
    if schedule is not None:
        lr_total = total or int(curve.last_step) + 1
        lr = lr_data(schedule, lr_total if schedule.kind != "recorded" else schedule.total or 1)
    band = None
    try:
        band = forecast_band(curve, schedule, total, finished, cutoff)
    except FORECAST_ERRORS as err:
        notes.append(f"No forecast: {err}")
    what = None
    if whatif and schedule is not None and total is not None:
        try:
            what = whatif_data(curve, schedule, total)
        except FORECAST_ERRORS as err:
            notes.append(f"No schedule what-if: {err}")
        if what is not None and what.dropped:
            notes.append(
                f"Schedule what-if leaves out {', '.join(what.dropped)}: the law fitted to this "
                "run takes them to a loss of 0 or below, far from anything it saw."
            )
    elif whatif:
        notes.append(
            "No schedule what-if: the run has no schedule (log 'lr' or put the schedule spec "
            "in config['schedule'])."
        )
    others = tuple(
        curve_data(store.curve(info.id, k), label=k) for k in keys if k not in (key, "lr")
    )[:4]
    return RunPanel(
        info.id,
        str(info.name),
        str(info.status),
        key,
        curve_data(curve, label=key),
        others,
        lr,
        band,
        what,
        reached(curve) if len(curve.finite()) else float("nan"),
        tuple(notes),
    )


def build_report(
    store: Any,
    run_ids: Sequence[str],
    key: str = "loss",
    cutoff: float = 0.2,
    whatif: bool = True,
    title: str | None = None,
    on_run: Callable[[str], None] | None = None,
) -> Report:
    """The data of a report over ``run_ids`` (ids or names) in ``store``.

    Args:
        store: an open store (``runcast.open_store(db)``).
        run_ids: the runs to show, in order; the comparison overlays them.
        key: the metric to forecast and compare (default ``"loss"``).
        cutoff: for finished runs, the fraction of the run the shown forecast starts from.
        whatif: fit a law and add schedule what-ifs (a second or so per run).
        title: the report's title (default: the runs' names).
        on_run: called with each run id before its panel is computed (progress bars).

    Example:
        >>> import runcast, tempfile, os
        >>> db = os.path.join(tempfile.mkdtemp(), "r.db")
        >>> with runcast.init(project="p", name="a", db=db) as run:
        ...     for s in range(50):
        ...         run.log({"loss": 3.0 / (1 + s) ** 0.3}, step=s)
        >>> rep = build_report(runcast.open_store(db), [run.id], whatif=False)
        >>> rep.runs[0].name, round(float(rep.runs[0].curve.raw[-1]), 3)
        ('a', 0.928)
    """
    if not run_ids:
        raise InvalidInputError("A report needs at least one run id; list them: runcast runs list.")
    if not 0.0 < cutoff < 1.0:
        raise InvalidInputError(f"cutoff must be in (0, 1), but got {cutoff=}.")
    panels = []
    for r in run_ids:
        if on_run is not None:
            on_run(r)
        panels.append(build_panel(store, r, key, cutoff, whatif))
    names = ", ".join(p.name for p in panels)
    from runcast.report._batch import batch_data

    batch = tuple(d for d in (batch_data(store, p.run_id) for p in panels) if d is not None)
    return Report(
        title or f"runcast report: {names}",
        key,
        tuple(panels),
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        batch=batch,
    )
