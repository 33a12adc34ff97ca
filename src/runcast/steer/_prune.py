"""The one pruning rule that Optuna's and Ray Tune's integrations share.

A trial is pruned when its forecast gives it too small a chance of beating the best completed
trial: ``P(final < best) < threshold`` (``>`` when maximising), once it is past a warm-up and
enough trials have completed to know what "best" is (a NaN/inf trial is pruned at once); a
trial whose LR schedule is unknown must only have a chance of beating the 2nd best (``top_k``),
unless it logged its LR: it is then forecast under each future LR its completed peers ran
(:mod:`runcast.steer._lrtrace`). The forecast comes from the sweep's other trials
(:func:`~runcast.steer.analog_forecast`: how trials in a similar state, with a similar LR
schedule, went on from each step, stopped trials for the steps they reached), else from the
trial's own curve (:func:`runcast.forecast`). Unlike a median or successive-halving rule, this
compares where the trial is *going* with where the best trial *ended*, so slow starters that
will win are kept and fast starters that will plateau are cut. No forecast passes the range the
metric can take (``bounds``, :func:`metric_bounds`): a trial that can at best tie a completed
accuracy of 1.0 cannot win.

Example:
    >>> import numpy as np
    >>> from runcast.forecast import Forecast
    >>> f = Forecast([100], np.linspace(0.50, 0.60, 200)[:, None])  # final loss 0.50..0.60
    >>> prune_decision(f, best=0.45, step=20).action
    'prune'
    >>> prune_decision(f, best=0.55, step=20).action
    'continue'
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from runcast._range import check_bounds
from runcast.errors import InvalidInputError, RuncastError
from runcast.steer._decision import Decision
from runcast.steer._lrtrace import LRTrace, lr_continuations, recorded_schedule
from runcast.steer._peers import analog_forecast, peer_forecast

if TYPE_CHECKING:
    from runcast.curve import Curve
    from runcast.forecast import Forecast
    from runcast.forecast._types import Direction
    from runcast.schedules import Schedule

Mode = Literal["min", "max"]
PeerMethod = Literal["auto", "analog", "shift"]
Forecaster = Callable[["Curve", int], "Forecast"]
# Every default below is chosen leave one sweep out on the corpus's real sweeps
# (bench/sweep_pruning.py; the choices, per sweep, in bench/README.md, "Steer: sweep pruning on
# sweeps it has never seen"). The less a trial's forecast knows of its future LR, the stronger
# the evidence the rule waits for: with its schedule, prune when under 0.5% of the forecast's
# paths beat the best; with a logged LR (its future one of the completed peers',
# runcast.steer._lrtrace), 1% of paths beating the 2nd best; with neither (a coming cooldown
# is invisible, and the trial that will end best can look like one that ends second), no path
# of 400 reaching the 2nd best.
DEFAULT_THRESHOLD = 0.005
DEFAULT_THRESHOLD_NO_SCHEDULE = 0.002
DEFAULT_PEER_METHOD: PeerMethod = "analog"
DEFAULT_WARMUP_FRACTION_NO_SCHEDULE = 0.0
DEFAULT_TOP_K_NO_SCHEDULE = 2
DEFAULT_THRESHOLD_LOGGED_LR = 0.01
DEFAULT_TOP_K_LOGGED_LR = 2
# the least gain worth finishing a trial for (a fraction of the value to beat): 0, any gain.
# It is the user's price of compute, not a fitted choice
DEFAULT_MIN_GAIN = 0.0
# analog_forecast's arguments that PruneRule fills in itself (not settable via peer_options)
_SET_BY_RULE = {
    "curve",
    "until",
    "donors",
    "direction",
    "schedule",
    "donor_schedules",
    "window",
    "bounds",
}


def _check_mode(mode: str) -> None:
    if mode not in ("min", "max"):
        raise InvalidInputError(f"mode must be 'min' or 'max', but got {mode!r}.")


def _check_threshold(threshold: float | None) -> None:
    if threshold is not None and not 0.0 <= threshold < 1.0:
        raise InvalidInputError(
            f"The pruning threshold is a probability in [0, 1), but got {threshold=}. "
            "Typical values are 0.01-0.1 (prune when the chance of winning is below it)."
        )


def _check_min_gain(min_gain: float) -> None:
    if not (0.0 <= min_gain < 1.0):
        raise InvalidInputError(
            f"min_gain is a fraction of the value to beat in [0, 1), but got {min_gain=}. "
            "0.005 prunes a trial unlikely to beat the best by more than 0.5% of it."
        )


BoundsArg = tuple[float, float] | Literal["auto"] | None


def metric_bounds(
    given: BoundsArg, name: str | None, values: Sequence[float] | np.ndarray, mode: Mode
) -> tuple[float, float] | None:
    """The range a sweep's metric can take: ``given`` as it is, or for ``"auto"``, read from
    the metric's ``name`` and the ``values`` seen so far.

    A name that says accuracy, AUC, F1, ... gives [0, 1] (or [0, 100] in percent), a loss
    [0, inf) (:func:`runcast.forecast` reads bounds the same way). A metric with no name that
    is maximised and has stayed within [0, 1] is taken as such a rate too: an accuracy, an
    AUC, an F1 or an R² never passes 1. Anything else is unbounded (None).

    Example:
        >>> metric_bounds("auto", "val_acc", [0.5, 0.9], "max")
        (0.0, 1.0)
        >>> metric_bounds("auto", None, [0.5, 1.0], "max")  # unnamed, maximised, in [0, 1]
        (0.0, 1.0)
        >>> metric_bounds("auto", "reward", [3.0], "max") is None
        True
        >>> metric_bounds((0, 100), None, [], "max")
        (0.0, 100.0)
    """
    if isinstance(given, str):
        if given != "auto":
            raise InvalidInputError(f"bounds must be 'auto', (lo, hi) or None, but got {given!r}.")
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if name is None and mode == "max":
            # runcast.forecast takes an unnamed curve for a loss: not one that is maximised
            return (0.0, 1.0) if v.size and v.min() >= 0.0 and v.max() <= 1.0 else None
        # here, not at import: runcast.forecast would add ~0.6 s to importing runcast.steer
        from runcast.forecast._bounds import infer_bounds

        found = infer_bounds(name, v)
        return None if found is None else (found.lo, found.hi)
    return check_bounds(given)


def bounds_setting(bounds: BoundsArg, rule: PruneRule | None) -> BoundsArg:
    """An integration's ``bounds=`` argument, checked when the integration is built (a typo
    fails there, not at the first report): ``"auto"`` stays, to be read per decision by
    :func:`metric_bounds`, unless the given ``rule`` carries its own range, which is kept.

    Example:
        >>> bounds_setting("auto", None), bounds_setting("auto", PruneRule(bounds=(0, 1)))
        ('auto', (0.0, 1.0))
        >>> bounds_setting([0, 100], None)
        (0.0, 100.0)
    """
    # isinstance first: an array == "auto" is ambiguous
    if isinstance(bounds, str) and bounds == "auto":
        return rule.bounds if rule is not None and rule.bounds is not None else "auto"
    return metric_bounds(bounds, None, (), "min")


def prune_decision(
    forecast: Forecast,
    best: float | None,
    *,
    step: int,
    threshold: float = DEFAULT_THRESHOLD,
    warmup_steps: int = 0,
    mode: Mode = "min",
    min_gain: float = 0.0,
) -> Decision:
    """Prune when ``P(trial's final beats best) < threshold``, after ``warmup_steps``.

    Args:
        forecast: the trial's forecast; its last step is the trial's final step.
        best: the best final value among completed trials, or None if none completed yet.
        step: the trial's current step.
        threshold: prune when the probability of beating ``best`` falls below this.
        warmup_steps: never prune before this step.
        mode: ``"min"`` (a loss: beating means ending below ``best``) or ``"max"``.
        min_gain: beating means ending better than ``best`` by more than this fraction of it
            (0.005: a loss must end below ``0.995 * best``); 0: any margin.

    Example:
        >>> import numpy as np
        >>> from runcast.forecast import Forecast
        >>> f = Forecast([50], np.linspace(0.9, 1.1, 100)[:, None])
        >>> d = prune_decision(f, best=0.95, step=10, threshold=0.3)
        >>> d.action, round(d.numbers["p_beat"], 2)
        ('prune', 0.25)
        >>> round(prune_decision(f, best=0.95, step=10, min_gain=0.05).numbers["bar"], 4)
        0.9025
    """
    _check_mode(mode)
    _check_threshold(threshold)
    _check_min_gain(min_gain)
    if step < warmup_steps:
        return Decision(
            "continue",
            f"warming up: step {step} < warmup_steps {warmup_steps}",
            step=step,
            numbers={"warmup_steps": warmup_steps},
        )
    if best is None or not np.isfinite(best):
        return Decision("continue", "no completed trial to compare with yet", step=step)
    # the value the trial must pass: the best, moved by the least gain worth the compute
    margin = min_gain * abs(float(best))
    bar = float(best) - margin if mode == "min" else float(best) + margin
    p = forecast.prob_below(bar) if mode == "min" else forecast.prob_above(bar)
    lo, hi = forecast.final.interval(0.8)
    numbers = {
        "p_beat": p,
        "threshold": threshold,
        "best": float(best),
        "bar": bar,
        "min_gain": min_gain,
        "final_median": forecast.final.median,
        "final_lo80": lo,
        "final_hi80": hi,
        "final_step": float(forecast.steps[-1]),
    }
    side = "below" if mode == "min" else "above"
    by = f" ({forecast.method} forecast)" if forecast.method else ""
    target = f"best {best:.6g}"
    if margin:
        target = f"{bar:.6g} (best {best:.6g}, min_gain {min_gain:g})"
    what = (
        f"P(final {side} {target}) = {p:.3f}; forecast final median "
        f"{forecast.final.median:.6g}, 80% [{lo:.6g}, {hi:.6g}] at step "
        f"{int(forecast.steps[-1])}{by}"
    )
    if p < threshold:
        return Decision("prune", f"{what} < threshold {threshold:g}", step=step, numbers=numbers)
    return Decision("continue", f"{what} >= threshold {threshold:g}", step=step, numbers=numbers)


def default_forecaster(
    schedule: Schedule | None = None,
    mode: Mode | None = None,
    bounds: tuple[float, float] | None = None,
) -> Forecaster:
    """``runcast.forecast(curve, until=until, schedule=schedule)`` as a two-argument callable.

    ``mode`` fixes the forecast's direction (``"min"``: a loss, ``"max"``: an accuracy) instead
    of letting the forecaster guess it from a short, noisy start; ``bounds``, the metric's
    range (None: inferred from the curve, as :func:`runcast.forecast` does).

    Example:
        >>> callable(default_forecaster())
        True
    """

    def fn(curve: Curve, until: int) -> Forecast:
        # looked up at call time: the forecasting module is heavy and imported only when needed
        forecast = importlib.import_module("runcast.forecast").forecast
        direction = None if mode is None else ("down" if mode == "min" else "up")
        # a schedule of `total` steps gives the LR of steps 0..total-1, while a trial's final
        # report after `total` updates is step `total`: forecast that one step earlier
        total = getattr(schedule, "total", None)
        if total is not None and until >= total:
            until = total - 1
        result: Forecast = forecast(
            curve,
            until=until,
            schedule=schedule,
            direction=direction,
            bounds="auto" if bounds is None else bounds,
        )
        return result

    return fn


def _mixture(parts: Sequence[tuple[Forecast, int]]) -> Forecast:
    # forecasts under each plausible future LR, weighed by how many peers ran it: each one's
    # paths repeated that many times (the counts are small whole numbers)
    if len(parts) == 1:
        return parts[0][0]
    from runcast.forecast import Forecast

    first = parts[0][0]
    samples = np.concatenate([np.repeat(f.samples, n, axis=0) for f, n in parts])
    info = {**first.info, "lr_futures": [n for _, n in parts]}
    return Forecast(first.steps, samples, first.direction, first.method, info)


def _schedules(given: Sequence[Schedule | None] | None, n: int) -> list[Schedule | None]:
    if given is None:
        return [None] * n
    if len(given) != n:
        raise InvalidInputError(
            f"Need one schedule (or None) per curve, but got {len(given)} for {n} curves."
        )
    return list(given)


@dataclass
class PruneRule:
    """The forecast pruning rule with its settings, applied to a trial's reported points.

    Args:
        threshold: prune when ``P(final beats best) < threshold``; None (default): 0.005 for a
            trial whose LR schedule is given, 0.01 for one whose LR is inferred from its logged
            LR, 0.002 for one without either (each chosen leave-one-sweep-out on the corpus's
            sweeps, ``bench/sweep_pruning.py``).
        warmup_steps: never prune before this step.
        warmup_fraction: never prune before this share of ``total_steps``; None (default): 0
            for a trial whose LR schedule is given, DEFAULT_WARMUP_FRACTION_NO_SCHEDULE for one
            without (chosen leave-one-sweep-out, as the thresholds).
        warmup_reports: never prune a trial with fewer finite reported values (its first
            value says almost nothing about it: all trials start near the same loss, and a
            forecast that cannot tell trials apart would prune them all once few beat the best).
        n_min_trials: never prune until this many trials have completed.
        top_k: compare with the ``top_k``-th best completed value (:meth:`reference`): prune
            only a trial unlikely to end among the best ``top_k`` so far; None (default): 1
            (the best) for a trial whose LR schedule is given, DEFAULT_TOP_K_NO_SCHEDULE for
            one without (chosen leave-one-sweep-out, as the thresholds).
        min_points: never forecast a trial from its own curve with fewer points (the peer
            forecast needs one).
        mode: ``"min"`` or ``"max"``.
        forecaster: ``fn(curve, until) -> Forecast``; replaces the default (peers, else
            :func:`runcast.forecast`).
        use_peers: forecast from the sweep's other trials when they are given to :meth:`decide`.
        peer_method: ``"analog"`` (default): chain what similar trials, stopped ones included,
            did from each step on (:func:`~runcast.steer.analog_forecast`; with the trials' LR
            schedules when known); ``"shift"``: add the completed trials' mean log improvement
            (:func:`~runcast.steer.peer_forecast`); ``"auto"``: analog when the trial's LR
            schedule is known, else shift (the default before the corpus: leave-one-sweep-out
            chose analog for trials without a schedule too, at a lower threshold).
        peer_window: points over which a level is the best value.
        peer_scale_floor: the shift forecast's least spread.
        peer_options: more keyword arguments of :func:`~runcast.steer.analog_forecast`
            (``bandwidth``, ``peak_bandwidth``, ``mix``, ``noise``, ...), to change its
            defaults.
        min_gain: the least gain worth finishing a trial for, as a fraction of the value to
            beat: prune when ``P(final beats it by more than min_gain of it) < threshold``;
            None (default): DEFAULT_MIN_GAIN, 0 (any gain).
        bounds: the range the metric can take, ``(lo, hi)`` (``-inf``/``inf`` for an open
            side; :func:`runcast.forecast._bounds.infer_bounds` reads it from a metric's
            name): no forecast path passes it, so a trial that can at best tie a completed
            trial at the bound (an accuracy of 1.0) cannot beat it and is pruned. None: the
            forecasts are unbounded.

    Example:
        >>> rule = PruneRule(n_min_trials=2)
        >>> rule.decide([1, 2], [1.0, 0.9], total_steps=10, best=0.5, n_completed=1).reason
        'only 1 completed trial(s), n_min_trials=2'
    """

    threshold: float | None = None
    warmup_steps: int = 0
    warmup_fraction: float | None = None
    warmup_reports: int = 2
    n_min_trials: int = 2
    top_k: int | None = None
    min_points: int = 5
    mode: Mode = "min"
    forecaster: Forecaster | None = None
    use_peers: bool = True
    peer_method: PeerMethod = DEFAULT_PEER_METHOD
    peer_window: int = 10
    peer_scale_floor: float = 0.1
    peer_options: Mapping[str, Any] = field(default_factory=dict)
    min_gain: float | None = None
    bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        _check_mode(self.mode)
        _check_threshold(self.threshold)
        self.bounds = check_bounds(self.bounds)
        if self.min_gain is not None:
            _check_min_gain(self.min_gain)
        if self.peer_method not in ("auto", "analog", "shift"):
            raise InvalidInputError(
                f"peer_method must be 'auto', 'analog' or 'shift', but got {self.peer_method!r}."
            )
        # checked here, not at the first decision deep into a sweep: a typo must fail at once
        allowed = set(inspect.signature(analog_forecast).parameters) - _SET_BY_RULE
        unknown = sorted(set(self.peer_options) - allowed)
        if unknown:
            raise InvalidInputError(
                f"peer_options has unknown key(s) {unknown}; analog_forecast takes "
                f"{sorted(allowed)}."
            )
        if self.warmup_fraction is not None and not 0.0 <= self.warmup_fraction < 1.0:
            raise InvalidInputError(
                f"warmup_fraction is a share of the budget in [0, 1), but got "
                f"warmup_fraction={self.warmup_fraction}."
            )
        if self.top_k is not None and self.top_k < 1:
            raise InvalidInputError(f"top_k counts trials from 1, but got top_k={self.top_k}.")
        for name in ("warmup_steps", "warmup_reports", "n_min_trials", "min_points"):
            value = getattr(self, name)
            if value < 0:
                raise InvalidInputError(f"{name} cannot be negative, but got {name}={value}.")

    def threshold_for(self, schedule: Schedule | None, *, logged: bool = False) -> float:
        """The threshold applied to a trial with (or without) a known LR schedule; ``logged``:
        without one, but with futures inferred from its logged LR (:mod:`._lrtrace`).

        Example:
            >>> from runcast.schedules import Schedule
            >>> PruneRule().threshold_for(None), PruneRule(threshold=0.1).threshold_for(None)
            (0.002, 0.1)
            >>> PruneRule().threshold_for(Schedule.from_spec({"kind": "constant", "peak": 0.1}))
            0.005
        """
        if self.threshold is not None:
            return self.threshold
        if schedule is not None:
            return DEFAULT_THRESHOLD
        return DEFAULT_THRESHOLD_LOGGED_LR if logged else DEFAULT_THRESHOLD_NO_SCHEDULE

    def top_k_for(self, schedule: Schedule | None, *, logged: bool = False) -> int:
        """How many of the best completed trials a trial with (or without) a schedule may join.

        Example:
            >>> PruneRule(top_k=3).top_k_for(None), PruneRule().top_k_for(None)
            (3, 2)
        """
        if self.top_k is not None:
            return self.top_k
        if schedule is not None:
            return 1
        return DEFAULT_TOP_K_LOGGED_LR if logged else DEFAULT_TOP_K_NO_SCHEDULE

    def reference(
        self,
        finals: Sequence[float | None],
        schedule: Schedule | None = None,
        *,
        logged: bool = False,
    ) -> float | None:
        """The value a trial must beat: the k-th best of the completed ``finals`` (NaN/inf
        ignored; k from :meth:`top_k_for`); None while fewer than k are finite (a trial then
        still makes the top k, whatever it ends at).

        Example:
            >>> PruneRule(top_k=2).reference([0.3, 0.1, 0.2]), PruneRule(top_k=4).reference([0.3])
            (0.2, None)
        """
        k = self.top_k_for(schedule, logged=logged)
        vals = np.asarray([v for v in finals if v is not None], dtype=np.float64)
        vals = np.sort(vals[np.isfinite(vals)])
        if vals.size < k:
            return None
        return float(vals[k - 1] if self.mode == "min" else vals[-k])

    def warmup_fraction_for(self, schedule: Schedule | None, *, logged: bool = False) -> float:
        """The share of the budget before which a trial with (or without) a schedule is kept.

        Example:
            >>> PruneRule(warmup_fraction=0.1).warmup_fraction_for(None)
            0.1
        """
        if self.warmup_fraction is not None:
            return self.warmup_fraction
        known = schedule is not None or logged
        return 0.0 if known else DEFAULT_WARMUP_FRACTION_NO_SCHEDULE

    def decide(
        self,
        steps: Sequence[int] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        *,
        total_steps: int,
        best: float | None,
        n_completed: int,
        schedule: Schedule | None = None,
        peers: Sequence[Curve] | None = None,
        stopped: Sequence[Curve] | None = None,
        peer_schedules: Sequence[Schedule | None] | None = None,
        stopped_schedules: Sequence[Schedule | None] | None = None,
        finals: Sequence[float | None] | None = None,
        lr: LRTrace | None = None,
        peer_lrs: Sequence[LRTrace | None] | None = None,
    ) -> Decision:
        """Decide for a trial that reported ``values`` at ``steps`` and will end at ``total_steps``.

        ``peers`` are the curves of completed trials, ``stopped`` those of trials stopped
        early (the analog forecast uses both; their ``*_schedules``, one per curve, when
        known). ``finals``, when given, are the completed trials' final values, and the value
        to beat is :meth:`reference` of them (instead of ``best``). A trial without a
        ``schedule`` that logged its LR (``lr``: ``(steps, lrs)``), among completed peers that
        logged theirs (``peer_lrs``, one per peer), is forecast under each future LR that a
        completed peer in the same LR phase ran (:func:`~runcast.steer._lrtrace.lr_continuations`),
        the forecasts weighed by how many peers ran each. A trial whose
        latest value is NaN or infinite has diverged and is pruned at once, even during the
        warm-up and before ``n_min_trials`` have completed (it cannot win). A forecast that
        fails (too few points, a fit error) never prunes.
        """
        from runcast.curve import Curve

        st = np.asarray(steps, dtype=np.int64)
        va = np.asarray(values, dtype=np.float64)
        if st.shape != va.shape or st.ndim != 1:
            raise InvalidInputError(
                f"steps and values must be 1-D and of one length, one value per reported "
                f"step, but got shapes {st.shape} and {va.shape}."
            )
        if st.size == 0:
            return Decision("continue", "no reported points yet")
        step = int(st[-1])
        # checked before every gate: a NaN/inf trial cannot win, and letting it run until
        # n_min_trials have completed or the warm-up is over only burns compute
        if not np.isfinite(va[-1]):
            return Decision(
                "prune",
                f"the trial diverged: its value at step {step} is {va[-1]}",
                step=step,
                numbers={"value": float(va[-1])},
            )
        if n_completed < self.n_min_trials:
            return Decision(
                "continue",
                f"only {n_completed} completed trial(s), n_min_trials={self.n_min_trials}",
                step=step,
            )
        if step < self.warmup_steps:
            return Decision(
                "continue",
                f"warming up: step {step} < warmup_steps {self.warmup_steps}",
                step=step,
                numbers={"warmup_steps": self.warmup_steps},
            )
        ok = np.isfinite(va)
        if int(ok.sum()) < self.warmup_reports:
            return Decision(
                "continue",
                f"warming up: {int(ok.sum())} report(s) < warmup_reports {self.warmup_reports}",
                step=step,
                numbers={"warmup_reports": self.warmup_reports},
            )
        if step >= total_steps:
            return Decision("continue", f"the trial reached its last step {total_steps}", step=step)
        futures: list[tuple[Schedule | None, int]] = [(schedule, 1)]
        done_lrs = list(peer_lrs or [])
        if schedule is None and lr is not None and done_lrs and peers:
            if len(done_lrs) != len(peers):
                raise InvalidInputError(
                    f"Need one logged LR (or None) per completed peer, but got {len(done_lrs)} "
                    f"for {len(peers)} peers."
                )
            inferred = lr_continuations(lr, done_lrs, total_steps + 1)
            if inferred:
                futures = [(f, n) for f, n in inferred]
                # the completed peers' own LRs are their schedules (for the analog kernel)
                peer_schedules = [
                    (None if tr is None else recorded_schedule(tr, total_steps + 1))
                    if given is None
                    else given
                    for tr, given in zip(
                        done_lrs, _schedules(peer_schedules, len(peers)), strict=True
                    )
                ]
        logged = schedule is None and futures[0][0] is not None
        if finals is not None:
            best = self.reference(finals, schedule, logged=logged)
        share = self.warmup_fraction_for(schedule, logged=logged)
        if step < share * total_steps:
            return Decision(
                "continue",
                f"warming up: step {step} < {share:g} of the {total_steps} steps",
                step=step,
                numbers={"warmup_fraction": share},
            )
        curve = Curve(st[ok], va[ok])
        fc = None
        direction: Direction = "down" if self.mode == "min" else "up"
        if self.forecaster is None and self.use_peers and peers:
            done, early = list(peers), list(stopped or [])
            # outside the try: a schedule list of the wrong length is the caller's mistake
            donor_schedules = _schedules(peer_schedules, len(done)) + _schedules(
                stopped_schedules, len(early)
            )
            try:
                method = self.peer_method
                if method == "auto":
                    method = "shift" if schedule is None and not logged else "analog"
                if method == "analog":
                    parts = [
                        (
                            analog_forecast(
                                curve,
                                total_steps,
                                [(c, True) for c in done] + [(c, False) for c in early],
                                direction=direction,
                                schedule=future,
                                donor_schedules=donor_schedules,
                                window=self.peer_window,
                                bounds=self.bounds,
                                **self.peer_options,
                            ),
                            n,
                        )
                        for future, n in futures
                    ]
                    fc = _mixture(parts)
                else:
                    fc = peer_forecast(
                        curve,
                        total_steps,
                        peers,
                        direction=direction,
                        window=self.peer_window,
                        scale_floor=self.peer_scale_floor,
                        bounds=self.bounds,
                    )
            except RuncastError:
                # no peer reported this early, or the peers cannot be compared (values past
                # 1e100): the trial's own curve decides, and a failed forecast never prunes
                fc = None
        if fc is None:
            if int(ok.sum()) < self.min_points:
                return Decision(
                    "continue",
                    f"{int(ok.sum())} finite point(s) so far; min_points={self.min_points}",
                    step=step,
                )
            fn = self.forecaster or default_forecaster(schedule, self.mode, self.bounds)
            try:
                fc = fn(curve, total_steps)
            except RuncastError as err:  # no forecast, no evidence: never prune on a failed fit
                return Decision("continue", f"no forecast ({err})", step=step)
        return prune_decision(
            fc,
            best,
            step=step,
            threshold=self.threshold_for(schedule, logged=logged),
            warmup_steps=self.warmup_steps,
            mode=self.mode,
            min_gain=DEFAULT_MIN_GAIN if self.min_gain is None else self.min_gain,
        )


def rule_from(rule: PruneRule | None, settings: Mapping[str, tuple[str, Any]]) -> PruneRule:
    """The rule an integration applies: a copy of ``rule`` (the integration sets its mode and
    bounds per study, so one rule can serve several), else one built from ``settings``
    (``{argument name: (PruneRule field, value)}``). A rule together with a setting away from
    its default is refused, naming the setting: which one should win is not clear.

    Example:
        >>> rule_from(None, {"n_warmup_steps": ("warmup_steps", 5)}).warmup_steps
        5
        >>> rule_from(PruneRule(top_k=3), {"n_warmup_steps": ("warmup_steps", 0)}).top_k
        3
    """
    if rule is None:
        return PruneRule(**{name: value for name, value in settings.values()})
    if not isinstance(rule, PruneRule):
        raise InvalidInputError(
            f"rule must be a runcast.steer.PruneRule, but got {type(rule).__name__}."
        )
    base = PruneRule()
    both = sorted(arg for arg, (name, value) in settings.items() if value != getattr(base, name))
    if both:
        raise InvalidInputError(
            f"Got rule= and also {both}: give the settings inside rule=PruneRule(...) or as "
            "arguments, not both."
        )
    return replace(rule)
