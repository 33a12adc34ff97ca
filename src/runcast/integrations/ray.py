"""Ray Tune: stop a trial when its forecast says it will not beat the best completed trial.

:class:`ForecastScheduler` is a FIFO scheduler that applies :class:`runcast.steer.PruneRule`
(the same rule as the Optuna pruner) on every result: after ``grace_period`` and once
``n_min_trials`` trials have completed, a trial is stopped when ``P(its final value beats the
best completed value) < threshold`` (the 2nd best for a trial without a schedule, by default).
Decisions are kept in ``scheduler.decisions[trial_id]``.
Without ``total_steps`` the budget is inferred as Optuna's ``HyperbandPruner(max_resource=
"auto")`` does: the last ``time_attr`` any completed trial reported (no trial is stopped before
one has completed).
The forecast comes from the sweep's other trials, completed and stopped (see
:func:`runcast.steer.analog_forecast`); put a trial's LR schedule spec in its config under
``"runcast_schedule"`` and trials with the same schedule count as the closest evidence.
Without a schedule, a result field with the trial's current LR (``lr_attr``, default ``"lr"``)
lets its future LR be inferred from the completed trials that reported theirs (see
:meth:`runcast.steer.PruneRule.decide`). ``time_attr`` is the unit of every step the rule counts:
report the step or epoch the metric was measured at (e.g. ``"step"``) to make decisions the same
as the Optuna pruner's with ``trial.report(value, step)``.

Example:
    >>> sched = ForecastScheduler(metric="loss", mode="min", total_steps=20, grace_period=5)
    >>> sched.threshold is None  # per trial: 0.005 with a "runcast_schedule", else 0.002
    True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runcast._optional import require
from runcast.errors import InvalidInputError
from runcast.integrations._plan import check_units
from runcast.schedules import Schedule
from runcast.steer._decision import Decision
from runcast.steer._prune import (
    DEFAULT_PEER_METHOD,
    BoundsArg,
    Forecaster,
    PeerMethod,
    PruneRule,
    bounds_setting,
    metric_bounds,
    rule_from,
)

require("ray.tune", extra="ray", purpose="for runcast.integrations.ray")
from ray.tune.schedulers import FIFOScheduler, TrialScheduler  # noqa: E402  (after require)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from runcast.curve import Curve

SCHEDULE_KEY = "runcast_schedule"

_log = logging.getLogger("runcast.integrations.ray")


class ForecastScheduler(FIFOScheduler):  # type: ignore[misc]
    """Stop Ray Tune trials whose forecast gives them too small a chance of beating the best.

    Args:
        metric: the reported metric to forecast (or set through ``TuneConfig(metric=...)``).
        mode: ``"min"`` or ``"max"`` (or through ``TuneConfig(mode=...)``).
        total_steps: the value of ``time_attr`` at which every trial ends; None (default):
            the last value any completed trial reported.
        time_attr: the result field that counts steps (default ``training_iteration``: the
            number of results so far).
        lr_attr: the result field with the trial's current LR, when it has no
            ``"runcast_schedule"`` (None: do not look for one).
        threshold: stop when ``P(final beats best completed) < threshold``; None (default):
            0.005 for a trial with a ``"runcast_schedule"``, 0.01 with a logged LR, 0.002
            for one without either, what leave-one-sweep-out chooses on the corpus's real
            sweeps in each case
            (``bench/sweep_pruning.py``).
        grace_period: never stop a trial before this many steps (the warm-up).
        warmup_fraction: never stop a trial before this share of the budget; None (default):
            0 for a trial with a ``"runcast_schedule"``, a leave-one-sweep-out choice for one
            without (:meth:`runcast.steer.PruneRule.warmup_fraction_for`).
        grace_reports: never stop a trial with fewer results (its first value says little:
            trials start near the same loss).
        n_min_trials: never stop before this many trials have completed.
        top_k: stop only a trial unlikely to beat the ``top_k``-th best completed value;
            None (default): 1 with a ``"runcast_schedule"``, 2 without (with or without a
            logged LR; leave-one-sweep-out's choices, :meth:`runcast.steer.PruneRule.top_k_for`).
        min_points: never forecast a trial from its own curve with fewer results.
        use_peers: forecast from the other trials' curves (see
            :func:`runcast.steer.analog_forecast`), else from the trial's own curve.
        peer_method: ``"analog"`` (default: how similar trials went on, chosen
            leave-one-sweep-out), ``"auto"`` (analog with a schedule, else shift) or
            ``"shift"`` (see :class:`runcast.steer.PruneRule`).
        peer_options: more keyword arguments of :func:`runcast.steer.analog_forecast` (its
            kernel widths, ``mix``, ``noise``), to change its defaults.
        forecaster: ``fn(curve, until) -> Forecast`` to use instead of both.
        min_gain: the least gain worth finishing a trial for, a fraction of the value to beat
            (0.005: a trial must have a chance of beating it by 0.5%); None (default): 0,
            any gain (:class:`runcast.steer.PruneRule`).
        bounds: the range the metric can take, ``(lo, hi)``; no forecast passes it, so a
            trial that can at best tie a completed trial at the bound (an accuracy of 1.0) is
            stopped. ``"auto"`` (default): read from ``metric``'s name and values (an
            accuracy-like name gives [0, 1], or [0, 100] in percent;
            :func:`runcast.steer.metric_bounds`); None: unbounded.
        rule: a :class:`runcast.steer.PruneRule` with the settings above (``warmup_steps``
            for ``grace_period``, ``warmup_reports`` for ``grace_reports``), instead of
            passing them here; the same rule object can be given to Optuna's
            :class:`~runcast.integrations.optuna.ForecastPruner`. Not together with them.

    Example:
        >>> ForecastScheduler(total_steps=10, threshold=0.1).threshold
        0.1
    """

    def __init__(
        self,
        *,
        metric: str | None = None,
        mode: str | None = None,
        total_steps: int | None = None,
        time_attr: str = "training_iteration",
        lr_attr: str | None = "lr",
        threshold: float | None = None,
        grace_period: int = 0,
        warmup_fraction: float | None = None,
        grace_reports: int = 2,
        n_min_trials: int = 2,
        top_k: int | None = None,
        min_points: int = 5,
        use_peers: bool = True,
        peer_method: PeerMethod = DEFAULT_PEER_METHOD,
        peer_options: Mapping[str, Any] | None = None,
        forecaster: Forecaster | None = None,
        min_gain: float | None = None,
        bounds: BoundsArg = "auto",
        rule: PruneRule | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if mode not in (None, "min", "max"):
            raise InvalidInputError(f"mode must be 'min' or 'max', but got {mode!r}.")
        if total_steps is not None and total_steps < 1:
            raise InvalidInputError(f"total_steps must be >= 1, but got {total_steps=}.")
        self._metric = metric
        self._mode = mode
        self.total_steps = total_steps
        self.time_attr = time_attr
        self.lr_attr = lr_attr
        self._lrs: dict[str, tuple[list[int], list[float]]] = {}
        self._rule = rule_from(
            rule,
            {
                "threshold": ("threshold", threshold),
                "grace_period": ("warmup_steps", grace_period),
                "warmup_fraction": ("warmup_fraction", warmup_fraction),
                "grace_reports": ("warmup_reports", grace_reports),
                "n_min_trials": ("n_min_trials", n_min_trials),
                "top_k": ("top_k", top_k),
                "min_points": ("min_points", min_points),
                "forecaster": ("forecaster", forecaster),
                "use_peers": ("use_peers", use_peers),
                "peer_method": ("peer_method", peer_method),
                "peer_options": ("peer_options", dict(peer_options or {})),
                "min_gain": ("min_gain", min_gain),
            },
        )
        self._rule.mode = "max" if mode == "max" else "min"
        self._bounds: BoundsArg = bounds_setting(bounds, rule)
        self._history: dict[str, tuple[list[int], list[float]]] = {}
        # in the order trials stopped (a dict, not a set: the analog forecast draws from its
        # donors in order, and a set's order of strings changes from one process to the next)
        self._stopped: dict[str, None] = {}
        self._schedules: dict[str, Schedule | None] = {}
        self._finals: dict[str, float] = {}
        self.decisions: dict[str, Decision] = {}

    @property
    def threshold(self) -> float | None:
        """The probability below which a trial is stopped; None: chosen per trial, 0.005 with
        a known schedule, 0.01 with a logged LR, else 0.002
        (:meth:`runcast.steer.PruneRule.threshold_for`)."""
        return self._rule.threshold

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Take ``metric``/``mode`` from ``TuneConfig`` when not given to the constructor."""
        if (self._metric and metric) or (self._mode and mode):
            return False
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
            self._rule.mode = "max" if mode == "max" else "min"
        return True

    def _best(self, schedule: Schedule | None = None) -> float | None:
        return self._rule.reference(list(self._finals.values()), schedule)

    def _curves(self, ids: Iterable[str]) -> tuple[list[Curve], list[Schedule | None]]:
        from runcast.integrations._history import history_curve

        curves, schedules = [], []
        for tid in ids:
            steps, values = self._history.get(tid, ([], []))
            if len(steps) >= 2:
                curves.append(history_curve(steps, values))
                schedules.append(self._schedules.get(tid))
        return curves, schedules

    def _record_lr(self, trial_id: str, step: int, result: dict[str, Any]) -> None:
        if self.lr_attr is not None and result.get(self.lr_attr) is not None:
            lr_steps, lrs = self._lrs.setdefault(trial_id, ([], []))
            lr_steps.append(step)
            lrs.append(float(result[self.lr_attr]))

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        """Record the result and decide: ``TrialScheduler.STOP`` or ``CONTINUE``."""
        if self._metric is None or self._mode is None:
            raise InvalidInputError(
                "ForecastScheduler needs metric and mode: pass them to ForecastScheduler(...) "
                "or to tune.TuneConfig(metric=..., mode=...)."
            )
        if self._metric not in result or self.time_attr not in result:
            return str(TrialScheduler.CONTINUE)
        if trial.trial_id not in self._history:
            spec = (getattr(trial, "config", None) or {}).get(SCHEDULE_KEY)
            self._schedules[trial.trial_id] = None if spec is None else Schedule.from_spec(spec)
        steps, values = self._history.setdefault(trial.trial_id, ([], []))
        steps.append(int(result[self.time_attr]))
        values.append(float(result[self._metric]))
        self._record_lr(trial.trial_id, steps[-1], result)
        total = self.total_steps
        if total is None:
            # as HyperbandPruner(max_resource="auto"): where completed trials ended
            ends = [self._history[t][0][-1] for t in self._finals if self._history.get(t, [[]])[0]]
            if not ends:
                return str(TrialScheduler.CONTINUE)
            total = max(ends)
        check_units(
            self._schedules[trial.trial_id], total, f"total_steps (in {self.time_attr!r} units)"
        )
        peers, peer_schedules = self._curves(self._finals)
        # one per curve in `peers` (the trials with >= 2 results), as _curves picks them
        peer_lrs = [
            self._lrs.get(t) for t in self._finals if len(self._history.get(t, ([], []))[0]) >= 2
        ]
        stopped, stopped_schedules = self._curves(self._stopped)
        self._rule.bounds = metric_bounds(
            self._bounds, self._metric, values + list(self._finals.values()), self._rule.mode
        )
        decision = self._rule.decide(
            steps,
            values,
            total_steps=total,
            best=self._best(self._schedules[trial.trial_id]),
            n_completed=len(self._finals),
            schedule=self._schedules[trial.trial_id],
            peers=peers,
            stopped=stopped,
            peer_schedules=peer_schedules,
            stopped_schedules=stopped_schedules,
            finals=list(self._finals.values()),
            lr=self._lrs.get(trial.trial_id),
            peer_lrs=peer_lrs,
        )
        self.decisions[trial.trial_id] = decision
        if decision.action == "prune":
            self._stopped[trial.trial_id] = None
            _log.info("runcast stopped trial %s: %s", trial.trial_id, decision)
            return str(TrialScheduler.STOP)
        return str(TrialScheduler.CONTINUE)

    def on_trial_complete(
        self, tune_controller: Any, trial: Any, result: dict[str, Any] | None
    ) -> None:
        """A trial that ran to its end sets a final value to beat (stopped ones do not)."""
        if trial.trial_id in self._stopped:
            return
        final = None
        if result and self._metric in result:
            final = float(result[self._metric])
            steps, values = self._history.setdefault(trial.trial_id, ([], []))
            at = result.get(self.time_attr)
            if at is not None and (not steps or int(at) > steps[-1]):
                # a last result Tune gave only here: it is where this trial ended
                steps.append(int(at))
                values.append(final)
                self._record_lr(trial.trial_id, int(at), result)
        elif self._history.get(trial.trial_id):
            final = self._history[trial.trial_id][1][-1]
        # a trial that ended on NaN/inf failed (as Optuna's FAIL): no final to beat, no budget
        if final is not None and math.isfinite(final):
            self._finals[trial.trial_id] = final

    def debug_string(self) -> str:
        """One line for Ray's status table."""
        return (
            f"ForecastScheduler: {len(self._stopped)} stopped, {len(self._finals)} completed, "
            f"best {self._best()}"
        )
