"""A run's planned LR schedule and length, as the trainer knew them, recorded in its config.

Every integration records the plan under ``config["runcast_plan"]`` when training starts: the
LR of every step from 0 to the planned last step, in the run's own step numbering (the step
its metrics are logged at), sampled from the trainer's own scheduler. It is stored as the knots
of a piecewise-linear curve that stays within 1e-4 of the peak LR of every sampled value (a
cosine over a million steps takes about a hundred knots; a step schedule, two per jump)::

    {"total": 301, "step": [0, 30, ...], "lr": [0.0, 0.001, ...], "source": "transformers ..."}

``total`` is the number of planned steps: the planned end is step ``total - 1``.

:func:`planned_schedule` is what the dashboard, the reports and ``runcast forecast`` read: the
recorded plan first, else ``config["schedule"]`` (a spec), else a length from a ``steps``-like
config key. A logged ``lr`` curve fills in the past (a finished run's whole schedule), never the
planned end: a run logging ``lr`` every 10 steps is not planned to end at its latest log.

Example:
    >>> entry = plan_entry([0.5, 1.0, 1.0, 0.75, 0.5, 0.25], source="by hand")
    >>> entry["step"], entry["total"]
    ([0, 1, 2, 5], 6)
    >>> plan = planned_schedule({PLAN_KEY: entry})
    >>> plan.total, plan.schedule.array().tolist()
    (6, [0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from runcast.errors import InvalidInputError, ScheduleError
from runcast.schedules import Schedule

if TYPE_CHECKING:
    from runcast.curve import Curve

PLAN_KEY = "runcast_plan"
#: config keys read as the planned number of steps when no plan or schedule spec says it
TOTAL_KEYS = ("steps", "total_steps", "max_steps", "num_steps", "total")
#: the knots stay within this share of the peak LR of every sampled step
TOLERANCE = 1e-4

FloatArray = npt.NDArray[np.float64]


class RunPlan(NamedTuple):
    """A run's schedule (None: unknown), planned number of steps (None: unknown) and where
    they came from, said in words for the notes users read."""

    schedule: Schedule | None
    total: int | None
    source: str


def knots(lrs: npt.ArrayLike, tol: float) -> npt.NDArray[np.int64]:
    """Indices of a piecewise-linear curve through ``lrs`` within ``tol`` of every value.

    Ramer-Douglas-Peucker on the steps: a segment is split at its worst point until none is
    further than ``tol`` from the line between its ends.

    Example:
        >>> knots([0.0, 1.0, 2.0, 3.0, 3.0, 3.0], 1e-9).tolist()
        [0, 3, 5]
    """
    y = np.asarray(lrs, dtype=np.float64)
    n = y.size
    if n <= 2:
        return np.arange(n, dtype=np.int64)
    keep = np.zeros(n, dtype=bool)
    keep[[0, n - 1]] = True
    todo = [(0, n - 1)]
    while todo:
        i, j = todo.pop()
        if j - i < 2:
            continue
        x = np.arange(i + 1, j)
        line = y[i] + (y[j] - y[i]) * (x - i) / (j - i)
        err = np.abs(y[i + 1 : j] - line)
        k = int(np.argmax(err))
        if err[k] > tol:
            m = i + 1 + k
            keep[m] = True
            todo += [(i, m), (m, j)]
    return np.flatnonzero(keep).astype(np.int64)


def plan_entry(lrs: npt.ArrayLike, source: str) -> dict[str, Any]:
    """The JSON-ready ``config["runcast_plan"]`` entry of a per-step planned LR.

    Example: see the module docstring.
    """
    y = np.asarray(lrs, dtype=np.float64)
    if y.ndim != 1 or y.size < 2 or not np.isfinite(y).all() or (y < 0).any():
        raise ScheduleError(
            f"A planned schedule needs at least 2 finite, non-negative LRs, one per step, but "
            f"got {y.size} values (min {float(np.nanmin(y)) if y.size else 'none'})."
        )
    idx = knots(y, TOLERANCE * max(float(y.max()), 1e-300))
    return {
        "total": int(y.size),
        "step": idx.tolist(),
        "lr": [float(v) for v in y[idx]],
        "source": str(source),
    }


def decode_plan(entry: Mapping[str, Any]) -> Schedule:
    """The per-step schedule of a ``config["runcast_plan"]`` entry.

    Example:
        >>> decode_plan({"total": 4, "step": [0, 3], "lr": [1.0, 0.25]}).array().tolist()
        [1.0, 0.75, 0.5, 0.25]
    """
    try:
        total = int(entry["total"])
        steps = np.asarray(entry["step"], dtype=np.float64)
        lrs = np.asarray(entry["lr"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise ScheduleError(
            f"config[{PLAN_KEY!r}] is not a runcast plan ({err}); it needs 'total', 'step' and "
            "'lr' (written by runcast's integrations). Remove it to forecast without it."
        ) from None
    if (
        total < 2
        or steps.ndim != 1
        or steps.shape != lrs.shape
        or steps.size < 1
        or (np.diff(steps) <= 0).any()
    ):
        raise ScheduleError(
            f"config[{PLAN_KEY!r}] is damaged: total={total}, {steps.size} knot steps for "
            f"{lrs.size} LRs. Remove it to forecast without it."
        )
    return Schedule.from_array(np.interp(np.arange(total), steps, lrs))


def _total_from_config(config: Mapping[str, Any]) -> int | None:
    for k in TOTAL_KEYS:
        v = config.get(k)
        # a finite whole number of steps (max_steps=inf, or HF's -1, is "no limit")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 1 < v < 2**53:
            return int(v)
    return None


def planned_schedule(config: Mapping[str, Any], lr: Curve | None = None) -> RunPlan:
    """The run's planned schedule and length, read from its config (and its logged ``lr``).

    In this order: the plan an integration recorded (``config["runcast_plan"]``); a schedule
    spec in ``config["schedule"]`` (with its ``total``, else a ``steps``-like key); a length
    from a ``steps``-like key. The logged ``lr`` is the schedule only where it covers the whole
    planned length (or no length is known): it tells the past, not the future.

    Example:
        >>> from runcast.curve import Curve
        >>> lr = Curve([0, 10, 20], [1e-3, 8e-4, 6e-4], name="lr")
        >>> p = planned_schedule({"max_steps": 300}, lr)  # lr logged so far: the plan is 300
        >>> p.schedule, p.total
        (None, 300)
        >>> planned_schedule({}, lr).total  # no plan at all: the logged lr is what there is
        21
    """
    entry = config.get(PLAN_KEY)
    if isinstance(entry, Mapping):
        sched = decode_plan(entry)
        return RunPlan(sched, sched.total, f"the recorded plan ({entry.get('source', '?')})")
    spec = config.get("schedule")
    if isinstance(spec, (str, Mapping)):
        sched = Schedule.from_string(spec) if isinstance(spec, str) else Schedule.from_spec(spec)
        total = sched.total or _total_from_config(config)
        return RunPlan(sched, total, "config['schedule']")
    total = _total_from_config(config)
    if lr is not None:
        ok = lr.finite()
        if len(ok) >= 2 and (total is None or ok.last_step + 1 >= total):
            every = np.arange(ok.last_step + 1)
            sched = Schedule.from_array(np.interp(every, ok.step, ok.value))
            return RunPlan(sched, total or sched.total, "the logged lr")
    return RunPlan(None, total, "a steps-like config key" if total else "")


def config_update(run: Any, values: Mapping[str, Any]) -> None:
    """Add ``values`` to a running run's config, in the store and on ``run.config``.

    For a run that was started before the plan was known (a run given to a callback, or to
    :class:`~runcast.integrations.torch.TrainingMonitor`). A disabled run (another rank's)
    records nothing.
    """
    if run is None or not getattr(run, "enabled", False):
        return
    if getattr(run, "finished", False):
        raise InvalidInputError(
            f"Run {run.id} is finished; its planned schedule can only be recorded while it runs."
        )
    import runcast

    store = runcast.open_store(run.db)
    try:
        # claim() merges config keys; the run is already running in this very process
        store.claim(run.id, dict(values))
    finally:
        store.close()
    run.config.update(values)


def as_of(
    curve: Curve, plan: RunPlan | None, until: int | None, from_step: int | None
) -> tuple[Curve, int]:
    """The curve as seen at ``from_step`` (all of it when None), with the plan's schedule, and
    the step to forecast until (default: the planned end, else the curve's last step).

    Example:
        >>> from runcast.curve import Curve
        >>> c = Curve(range(0, 100, 10), [1.0 / (1 + s) for s in range(0, 100, 10)], name="loss")
        >>> cut, until = as_of(c, RunPlan(None, 300, ""), None, 40)
        >>> cut.last_step, until
        (40, 299)
    """
    whole = curve
    given = until is not None
    if from_step is not None:
        if isinstance(from_step, bool) or not isinstance(from_step, int) or from_step < 0:
            raise InvalidInputError(f"--from must be a step >= 0, but got {from_step!r}.")
        curve = curve.until(from_step)
        if len(curve.finite()) == 0:
            raise InvalidInputError(
                f"{curve.name or 'The curve'} has no points up to step {from_step} (its first "
                f"is step {int(whole.step[0])}); forecast from a later step."
            )
    if until is None:
        if plan is not None and plan.total is not None:
            until = plan.total - 1
        elif from_step is not None:
            until = whole.last_step
        else:
            raise InvalidInputError(
                "The run's planned end is unknown (no recorded plan, schedule spec or steps-like "
                "config key): pass --until STEP."
            )
    if until <= curve.last_step and not given and from_step is None:
        # the usual case of a finished run: say so, and offer the forecast made along the way
        early = int(curve.step[0] + 0.2 * (curve.last_step - curve.step[0]))
        past = "" if until == curve.last_step else f", and is logged to step {curve.last_step}"
        raise InvalidInputError(
            f"The run has reached its planned end (step {until}{past}): nothing is left to "
            f"forecast. Pass --from STEP to see the forecast as of an earlier step (e.g. --from "
            f"{early}, a fifth of the way), or --until a later step."
        )
    if until <= curve.last_step:
        raise InvalidInputError(
            f"until={until} must be after the last observed step {curve.last_step}: nothing is "
            "left to forecast. Pass --from STEP to forecast as of an earlier step, or a later "
            "--until."
        )
    if plan is not None and plan.schedule is not None:
        curve = curve.with_schedule(plan.schedule)
    return curve, until


def run_forecast_input(
    store: Any, run: str, key: str, *, until: int | None = None, from_step: int | None = None
) -> tuple[Curve, int]:
    """A stored run's ``key`` as of ``from_step``, with its planned schedule, and the step to
    forecast until (default: its planned end). What ``runcast forecast RUN`` reads.

    Example:
        >>> import os, tempfile, runcast
        >>> db = os.path.join(tempfile.mkdtemp(), "f.db")
        >>> plan = plan_entry([1e-3] * 50 + [1e-4] * 50, "by hand")
        >>> with runcast.init(name="r", db=db, config={PLAN_KEY: plan}) as run:
        ...     for s in range(0, 100, 5):
        ...         run.log({"loss": 2.0 + 1.0 / (1 + s)}, step=s)
        >>> curve, until = run_forecast_input(runcast.open_store(db), "r", "loss", from_step=40)
        >>> curve.last_step, until, curve.schedule.total
        (40, 99, 100)
    """
    info = store.run(run)
    curve = store.curve(info.id, key)
    lr = store.curve(info.id, "lr") if "lr" in store.keys(info.id) else None
    plan = planned_schedule(info.config or {}, lr)
    return as_of(curve, plan, until, from_step)


def check_units(schedule: Schedule | None, budget: int, what: str) -> None:
    """Refuse a sweep trial's schedule planned in other units than the pruner's budget.

    A schedule of 10,000 optimizer steps beside a budget of 100 Tune iterations would be read
    step for step: its warmup taken for the whole run. One step more (a budget counted from 1)
    is the same plan.

    Example:
        >>> s = Schedule.from_spec({"kind": "cosine", "peak": 0.1, "total": 10_000})
        >>> check_units(s, 100, "total_steps")
        Traceback (most recent call last):
        ...
        runcast.errors.InvalidInputError: The trial's runcast_schedule plans 10000 steps, but total_steps is 100: give the schedule in the same units ('total': 100), e.g. Tune iterations rather than optimizer steps.
    """  # noqa: E501
    total = None if schedule is None else schedule.total
    if total is None or total in (budget, budget + 1):
        return
    raise InvalidInputError(
        f"The trial's runcast_schedule plans {total} steps, but {what} is {budget}: give the "
        f"schedule in the same units ('total': {budget}), e.g. Tune iterations rather than "
        "optimizer steps."
    )
