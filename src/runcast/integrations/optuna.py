"""Optuna: prune a trial when its forecast says it will not beat the best completed trial.

:class:`ForecastPruner` applies :class:`runcast.steer.PruneRule` to a trial's reports; every
decision, with its reason and numbers, is kept in ``pruner.decisions[trial.number]``. What a
trial may tell it through user attributes: ``"runcast_total_steps"`` (its budget; else the
``total_steps`` argument, else the last step a completed trial reported, as
``HyperbandPruner(max_resource="auto")``), ``"runcast_schedule"`` (its LR schedule spec: trials
with matching schedules are the closest evidence, a coming cooldown included) or, without one,
``"runcast_lr"`` set to its current LR before each report (its future LR is then inferred from
the completed trials' logged LRs). A pruned trial keeps its forecast in ``"runcast_forecast"``
(``final_median``, ``final_lo80``, ``final_hi80``, ``p_beat``, ``best``, ``step``), so a sampler or
a person can use the estimate instead of throwing the trial away.

Example:
    >>> import optuna
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(pruner=ForecastPruner())  # the budget inferred
    >>> def objective(trial):
    ...     rate = trial.suggest_float("rate", 0.01, 0.2)
    ...     for step in range(1, 51):
    ...         loss = 1.0 / (1.0 + rate * step)
    ...         trial.report(loss, step)
    ...         if trial.should_prune():
    ...             raise optuna.TrialPruned()
    ...     return loss
    >>> study.optimize(objective, n_trials=6)
    >>> len(study.trials)
    6
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from runcast._optional import require
from runcast.curve import Curve
from runcast.errors import InvalidInputError
from runcast.integrations._history import history_curve
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

require("optuna", extra="optuna", purpose="for runcast.integrations.optuna")
import optuna  # noqa: E402  (after require: a missing optuna names the extra to install)

_log = logging.getLogger("runcast.integrations.optuna")
TOTAL_ATTR = "runcast_total_steps"
SCHEDULE_ATTR = "runcast_schedule"
LR_ATTR = "runcast_lr"
FORECAST_ATTR = "runcast_forecast"
# the numbers of a prune decision kept in a pruned trial's FORECAST_ATTR
_FORECAST_KEYS = ("final_median", "final_lo80", "final_hi80", "p_beat", "best", "final_step")


class ForecastPruner(optuna.pruners.BasePruner):
    """Prune trials whose forecast gives them too small a chance of beating the best.

    Args:
        total_steps: the step at which every trial ends (per trial, the user attribute
            ``"runcast_total_steps"`` wins); None (default): the last step any completed trial
            reported, as Optuna's ``HyperbandPruner(max_resource="auto")`` infers it.
        threshold: prune when ``P(final beats best completed) < threshold``; None (default):
            0.005 for a trial with a ``"runcast_schedule"``, 0.01 with a logged LR, 0.002
            for one without either, what leave-one-sweep-out chooses on the corpus's real
            sweeps in each case
            (``bench/sweep_pruning.py``; a higher one saves compute and loses the winner more
            often).
        n_warmup_steps: never prune before this step.
        warmup_fraction: never prune before this share of the budget; None (default): 0 for a
            trial with a ``"runcast_schedule"``, a leave-one-sweep-out choice for one without
            (:meth:`runcast.steer.PruneRule.warmup_fraction_for`).
        n_warmup_reports: never prune a trial with fewer reported values (its first value
            says little: trials start near the same loss).
        n_min_trials: never prune before this many trials have completed.
        top_k: prune only a trial unlikely to beat the ``top_k``-th best completed value;
            None (default): 1 with a ``"runcast_schedule"``, 2 without (with or without a
            logged LR; leave-one-sweep-out's choices, :meth:`runcast.steer.PruneRule.top_k_for`).
        interval_steps: decide at most once per this many steps (a forecast costs milliseconds).
        min_points: never forecast a trial from its own curve with fewer reported values.
        use_peers: forecast from the study's other trials, completed and pruned (how similar
            trials with similar schedules went on from each step; see
            :func:`runcast.steer.analog_forecast`); else, or when no trial completed yet, from
            the trial's own curve with :func:`runcast.forecast`, given the trial's
            ``"runcast_schedule"`` spec when it has one.
        peer_method: ``"analog"`` (default: how similar trials went on, chosen
            leave-one-sweep-out), ``"auto"`` (analog with a schedule, else shift) or
            ``"shift"`` (see :class:`runcast.steer.PruneRule`).
        peer_options: more keyword arguments of :func:`runcast.steer.analog_forecast` (its
            kernel widths, ``mix``, ``noise``), to change its defaults.
        forecaster: ``fn(curve, until) -> Forecast`` to use instead of both.
        min_gain: the least gain worth finishing a trial for, a fraction of the value to beat
            (0.005: a trial must have a chance of beating it by 0.5%); None (default): 0,
            any gain (:class:`runcast.steer.PruneRule`).
        bounds: the range the objective can take, ``(lo, hi)``; no forecast passes it, so a
            trial that can at best tie a completed trial at the bound (an accuracy of 1.0) is
            pruned. ``"auto"`` (default): read from the study's metric name
            (``study.set_metric_names(["val_acc"])``) and values: an accuracy-like name gives
            [0, 1] (or [0, 100] in percent), and so does a maximised objective with no name
            that stays within [0, 1] (:func:`runcast.steer.metric_bounds`); None: unbounded.
        rule: a :class:`runcast.steer.PruneRule` with the settings above (``warmup_steps``
            for ``n_warmup_steps``, ``warmup_reports`` for ``n_warmup_reports``), instead of
            passing them here; the same rule object can be given to Ray's
            :class:`~runcast.integrations.ray.ForecastScheduler`. Not together with them.

    Example:
        >>> ForecastPruner(total_steps=100, threshold=0.02).threshold
        0.02
    """

    def __init__(
        self,
        total_steps: int | None = None,
        *,
        threshold: float | None = None,
        n_warmup_steps: int = 0,
        warmup_fraction: float | None = None,
        n_warmup_reports: int = 2,
        n_min_trials: int = 2,
        top_k: int | None = None,
        interval_steps: int = 1,
        min_points: int = 5,
        use_peers: bool = True,
        peer_method: PeerMethod = DEFAULT_PEER_METHOD,
        peer_options: Mapping[str, Any] | None = None,
        forecaster: Forecaster | None = None,
        min_gain: float | None = None,
        bounds: BoundsArg = "auto",
        rule: PruneRule | None = None,
    ) -> None:
        if total_steps is not None and total_steps < 1:
            raise InvalidInputError(f"total_steps must be >= 1, but got {total_steps=}.")
        if interval_steps < 1:
            raise InvalidInputError(f"interval_steps must be >= 1, but got {interval_steps=}.")
        self.total_steps = total_steps
        self.interval_steps = interval_steps
        self._rule = rule_from(
            rule,
            {
                "threshold": ("threshold", threshold),
                "n_warmup_steps": ("warmup_steps", n_warmup_steps),
                "warmup_fraction": ("warmup_fraction", warmup_fraction),
                "n_warmup_reports": ("warmup_reports", n_warmup_reports),
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
        self._bounds: BoundsArg = bounds_setting(bounds, rule)
        self._last_checked: dict[int, int] = {}
        self._schedules: dict[int, Schedule | None] = {}
        self._finished: dict[int, Curve | None] = {}
        # each trial's logged LR ("runcast_lr" at each should_prune()): steps, LRs
        self._lrs: dict[int, tuple[list[int], list[float]]] = {}
        self.decisions: dict[int, Decision] = {}

    @property
    def threshold(self) -> float | None:
        """The probability below which a trial is pruned; None: chosen per trial, 0.005 with
        a known schedule, 0.01 with a logged LR, else 0.002
        (:meth:`runcast.steer.PruneRule.threshold_for`)."""
        return self._rule.threshold

    def _schedule(self, trial: Any) -> Schedule | None:
        # parsed once per trial: the analog forecast asks for every donor's at every decision
        if trial.number not in self._schedules:
            spec = trial.user_attrs.get(SCHEDULE_ATTR)
            self._schedules[trial.number] = None if spec is None else Schedule.from_spec(spec)
        return self._schedules[trial.number]

    def _curves(self, trials: list[Any]) -> tuple[list[Curve], list[Schedule | None]]:
        # finished (completed or pruned) trials never change: each curve is built once, not at
        # every decision of every later trial (that was half a sweep replay's time)
        curves, schedules = [], []
        for t in trials:
            if t.number not in self._finished:
                curve = None
                if len(t.intermediate_values) >= 2:
                    pts = sorted(t.intermediate_values.items())
                    curve = history_curve([p for p, _ in pts], [v for _, v in pts])
                self._finished[t.number] = curve
            curve = self._finished[t.number]
            if curve is not None:
                curves.append(curve)
                schedules.append(self._schedule(t))
        return curves, schedules

    def prune(self, study: Any, trial: Any) -> bool:
        """Optuna calls this from ``trial.should_prune()``."""
        if len(study.directions) > 1:
            raise InvalidInputError(
                "ForecastPruner needs a single-objective study, but this one has "
                f"{len(study.directions)} objectives."
            )
        step = trial.last_step
        if step is None:
            return False
        lr = trial.user_attrs.get(LR_ATTR)
        if lr is not None:
            steps, lrs = self._lrs.setdefault(trial.number, ([], []))
            if not steps or step > steps[-1]:
                steps.append(int(step))
                lrs.append(float(lr))
        last = self._last_checked.get(trial.number)
        if last is not None and step < last + self.interval_steps:
            return False
        self._last_checked[trial.number] = step
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        total = trial.user_attrs.get(TOTAL_ATTR, self.total_steps)
        if total is None:
            # as HyperbandPruner(max_resource="auto"): the budget is where completed trials
            # ended; before one has, nothing is known to compare with, so nothing is pruned
            ends = [t.last_step for t in complete if t.last_step is not None]
            if not ends:
                return False
            total = max(ends)
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        values = [t.value for t in complete if t.value is not None]
        self._rule.mode = "max" if maximize else "min"
        schedule = self._schedule(trial)
        best = self._rule.reference(values, schedule)
        check_units(schedule, int(total), "the trial's total steps (the steps it reports at)")
        peers, peer_schedules = self._curves(complete)
        # one per curve in `peers` (the trials with >= 2 reports), as _curves picks them
        peer_lrs = [
            self._lrs.get(t.number) for t in complete if self._finished.get(t.number) is not None
        ]
        stopped, stopped_schedules = self._curves(
            study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
        )
        items = sorted(trial.intermediate_values.items())
        names = study.metric_names
        self._rule.bounds = metric_bounds(
            self._bounds,
            names[0] if names else None,
            [v for _, v in items] + values,
            self._rule.mode,
        )
        decision = self._rule.decide(
            [s for s, _ in items],
            [v for _, v in items],
            total_steps=int(total),
            best=best,
            n_completed=len(values),
            schedule=schedule,
            peers=peers,
            stopped=stopped,
            peer_schedules=peer_schedules,
            stopped_schedules=stopped_schedules,
            finals=values,
            lr=self._lrs.get(trial.number),
            peer_lrs=peer_lrs,
        )
        self.decisions[trial.number] = decision
        if decision.action == "prune":
            _log.info("runcast pruned trial %d: %s", trial.number, decision)
            kept = {k: decision.numbers[k] for k in _FORECAST_KEYS if k in decision.numbers}
            if kept:
                kept["step"] = step
                # the pruner gets a frozen copy of the trial: write through the study's storage
                study._storage.set_trial_user_attr(trial._trial_id, FORECAST_ATTR, kept)
        return decision.action == "prune"
