"""Measure the critical batch size (CBS) at a checkpoint by branching (Merrill et al. 2025).

From one checkpoint (model and optimizer state), short branches train at ``k`` times the run's
batch size, each on the same number of examples (the window), with the learning rate scaled by
``sqrt(k)`` (Adam) or ``k`` (SGD). Each branch's per-step losses are smoothed with an EMA (0.5)
and its last smoothed value is compared: a batch size *passes* while its loss stays within
``tolerance`` of the best smaller batch size's. The CBS lies in [largest passing, smallest
failing], returned with every branch's losses. Cost: ``len(ks) * window`` examples; the
defaults (5 branches of 0.9% of the run) cost 4.5% of it. See bench/README.md, "Batch size".

Example:
    >>> import torch
    >>> model = torch.nn.Linear(1, 1, bias=False)
    >>> _ = torch.nn.init.constant_(model.weight, 0.9)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> def train(model, opt, batch_size, steps):
    ...     losses = []
    ...     for _ in range(steps):
    ...         loss = (model.weight - 1).pow(2).sum()  # noiseless: every batch size passes
    ...         opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())
    ...     return losses
    >>> res = measure_cbs(model, opt, train, batch_size=4, ks=(1, 2), window=64, rule="linear",
    ...                   echo=None)
    >>> res.interval, [b.steps for b in res.branches]
    ((8, None), [16, 8])
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from runcast.errors import InvalidInputError

#: the batch multipliers tried by default
DEFAULT_KS: tuple[int, ...] = (1, 2, 4, 8, 16)
#: each branch's window as a share of the run's examples by default: 5 branches cost 4.5%
DEFAULT_WINDOW_FRACTION = 0.009
Rule = Literal["sqrt", "linear"]
TrainFn = Callable[[Any, Any, int, int], Sequence[float]]


@dataclass(frozen=True)
class Branch:
    """One branch: ``k`` times the batch size, its LR, and what it reached.

    Attributes:
        k, batch_size, lr, steps: the multiplier, the batch size (examples), the LR of the first
            param group, and the optimizer steps the window took at that batch size.
        losses: the per-step training losses ``train`` returned.
        loss: the value compared: the EMA of ``losses`` at the last step (or ``evaluate``).
        passed: within ``tolerance`` of the best smaller batch size.
        run_id: the branch's run in the store (None when not recorded).
    """

    k: int
    batch_size: int
    lr: float
    steps: int
    losses: tuple[float, ...]
    loss: float
    passed: bool
    run_id: str | None = None


@dataclass(frozen=True)
class CBSResult:
    """The measured CBS at one checkpoint.

    Attributes:
        step: the checkpoint's step (None if not given).
        batch_size: the run's batch size (``k = 1``).
        lo: the largest batch size that passed (every smaller one passed too).
        hi: the smallest batch size that failed (None: all passed, the CBS is at least ``lo``).
        branches: every branch, in increasing ``k``.
        window, tolerance: as measured.
        cost: examples the branches trained on, all together.
    """

    step: int | None
    batch_size: int
    lo: int
    hi: int | None
    branches: tuple[Branch, ...]
    window: int
    tolerance: float
    cost: int

    @property
    def interval(self) -> tuple[int, int | None]:
        """``(lo, hi)``: the CBS is at least ``lo`` and below ``hi``."""
        return self.lo, self.hi

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the result and its branches."""
        return {
            "step": self.step,
            "batch_size": self.batch_size,
            "lo": self.lo,
            "hi": self.hi,
            "window": self.window,
            "tolerance": self.tolerance,
            "cost": self.cost,
            "branches": [{**b.__dict__, "losses": list(b.losses)} for b in self.branches],
        }


def smoothed_last(losses: Sequence[float], beta: float) -> float:
    """The EMA (``x_t = beta x_{t-1} + (1 - beta) l_t``, started at the first loss) at the end.

    Example:
        >>> smoothed_last([4.0, 2.0, 1.0], 0.5)
        2.0
    """
    out = float(losses[0])
    for value in losses[1:]:
        out = beta * out + (1.0 - beta) * float(value)
    return out


def lr_factor(k: float, rule: Rule) -> float:
    """The LR multiplier for ``k`` times the batch: ``sqrt(k)`` (Adam) or ``k`` (SGD).

    Example:
        >>> lr_factor(4, "sqrt"), lr_factor(4, "linear")
        (2.0, 4.0)
    """
    return math.sqrt(k) if rule == "sqrt" else float(k)


def _check(
    batch_size: int, ks: Sequence[int], rule: str, ema: float, tolerance: float
) -> tuple[int, ...]:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a whole number >= 1, but got {batch_size=}.")
    if rule not in ("sqrt", "linear"):
        raise InvalidInputError(
            f"rule must be 'sqrt' (Adam-like optimizers) or 'linear' (SGD), but got {rule=}."
        )
    grid = tuple(ks)
    if (
        len(grid) < 2
        or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in grid)
        or list(grid) != sorted(set(grid))
    ):
        raise InvalidInputError(
            f"ks must be 2+ increasing whole multipliers >= 1, such as (1, 2, 4, 8), but got "
            f"{ks!r}."
        )
    if not 0.0 <= ema < 1.0:
        raise InvalidInputError(f"ema must be in [0, 1), but got {ema=}.")
    if not tolerance >= 0.0:
        raise InvalidInputError(f"tolerance must be >= 0, but got {tolerance=}.")
    return grid


def _window(window: int | None, run_examples: int | None, largest: int) -> int:
    if window is None:
        if run_examples is None or run_examples < 1:
            raise InvalidInputError(
                "Give window= (examples each branch trains on) or run_examples= (the run's "
                f"examples in all; the window is then {DEFAULT_WINDOW_FRACTION:.1%} of it), but "
                f"got {window=}, {run_examples=}."
            )
        window = round(DEFAULT_WINDOW_FRACTION * run_examples)
    if isinstance(window, bool) or not isinstance(window, int) or window < largest:
        raise InvalidInputError(
            f"The window ({window} examples) must hold at least one step of the largest batch "
            f"({largest}); give a longer window (or run_examples) or drop the largest ks."
        )
    return window


def measure_cbs(
    model: Any,
    optimizer: Any,
    train: TrainFn,
    *,
    batch_size: int,
    ks: Sequence[int] = DEFAULT_KS,
    rule: Rule = "sqrt",
    window: int | None = None,
    run_examples: int | None = None,
    ema: float = 0.5,
    tolerance: float = 0.01,
    evaluate: Callable[[Any], float] | None = None,
    run: Any = None,
    step: int | None = None,
    db: Any = None,
    echo: Callable[[str], None] | None = print,
) -> CBSResult:
    """Branch from the model's and optimizer's current state and bracket the CBS.

    Args:
        model, optimizer: at the checkpoint; both are restored to it when this returns.
        train: ``train(model, optimizer, batch_size, steps) -> losses`` trains ``steps``
            optimizer steps at ``batch_size`` with the optimizer's LR as set, and returns the
            per-step training losses. It should draw the same data in every branch (a fixed
            seed), so that the branches differ only in batch size.
        batch_size: the run's batch size (examples, or tokens: the unit of the answer).
        ks: the batch multipliers, increasing (default 1, 2, 4, 8, 16).
        rule: ``"sqrt"`` scales the LR by ``sqrt(k)`` (Adam), ``"linear"`` by ``k`` (SGD).
        window: examples each branch trains on; default ``0.9%`` of ``run_examples`` (made for
            long runs: on a short one, give a window that holds 8+ steps of the largest batch).
        run_examples: the run's examples in all (for the default window and the cost line).
        ema: the smoothing of the per-step losses (the paper: 0.5).
        tolerance: how much worse than the best smaller batch size a branch may end (0.01).
        evaluate: ``evaluate(model) -> loss`` compared instead of the smoothed training loss
            (a fixed held-out set: less noise for small runs).
        run: the checkpoint's run (a :class:`runcast.Run` or a run id) to fork the branches
            from, as runs ``<name>/cbs@<step>/k<k>``; the interval is logged to it as
            ``cbs_lo`` / ``cbs_hi`` at ``step``. Needs ``step``.
        step: the checkpoint's step.
        db: the store of ``run`` when it is an id (default: the run's own, or ./runcast.db).
        echo: where the cost line goes before training starts (None: silent).

    Returns:
        A :class:`CBSResult` with the interval and every branch.
    """
    grid = _check(batch_size, ks, rule, ema, tolerance)
    window = _window(window, run_examples, grid[-1] * batch_size)
    if run is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise InvalidInputError(
            f"Recording the branches in run {run!r} needs the checkpoint's step=, but got {step=}."
        )
    plan = [(k, k * batch_size, max(1, round(window / (k * batch_size)))) for k in grid]
    cost = sum(b * n for _, b, n in plan)
    if echo is not None:
        share = f", {cost / run_examples:.1%} of the run's {run_examples:,}" if run_examples else ""
        echo(
            f"measure_cbs: {len(plan)} branches (batch {plan[0][1]}..{plan[-1][1]}, "
            f"{plan[0][2]}..{plan[-1][2]} steps) of {window:,} examples each: {cost:,} examples"
            f"{share}."
        )
    model_state = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(optimizer.state_dict())
    base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
    branches: list[Branch] = []
    best = math.inf
    failed = False
    try:
        for k, size, steps in plan:
            model.load_state_dict(model_state)
            optimizer.load_state_dict(copy.deepcopy(opt_state))
            factor = lr_factor(k, rule)
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = lr * factor
            losses = tuple(float(v) for v in train(model, optimizer, size, steps))
            if len(losses) != steps or not all(math.isfinite(v) for v in losses):
                raise InvalidInputError(
                    f"train(model, optimizer, {size}, {steps}) must return {steps} finite "
                    f"per-step losses, but returned {len(losses)} ({losses[:3]!r}...)."
                )
            loss = float(evaluate(model)) if evaluate is not None else smoothed_last(losses, ema)
            # the paper's rule: a batch size passes while it ends within tolerance of the best
            # smaller one; after the first failure, larger ones count as failed
            passed = not failed and loss <= best + tolerance
            failed = failed or not passed
            best = min(best, loss)
            branches.append(Branch(k, size, base_lrs[0] * factor, steps, losses, loss, passed))
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(opt_state)
    lo = max(b.batch_size for b in branches if b.passed)
    hi = next((b.batch_size for b in branches if not b.passed), None)
    result = CBSResult(step, batch_size, lo, hi, tuple(branches), window, float(tolerance), cost)
    if run is not None:
        assert step is not None
        result = _record(result, run, step, db, rule)
    return result


def _record(result: CBSResult, run: Any, step: int, db: Any, rule: str) -> CBSResult:
    """Each branch as a run forked from ``run`` at the checkpoint; the interval on ``run``."""
    from runcast.store import default_path, open_store
    from runcast.store._writer import Series

    path = getattr(run, "db", None) if db is None and not isinstance(run, str) else db
    with open_store(default_path(path)) as store:
        parent = store.run(run if isinstance(run, str) else run.id)
        recorded = []
        for b in result.branches:
            config = {
                "cbs_branch": True,
                "k": b.k,
                "batch_size": b.batch_size,
                "lr": b.lr,
                "rule": rule,
                "window": result.window,
                "checkpoint_step": step,
                "passed": b.passed,
            }
            child = store.create_run(
                parent.project,
                f"{parent.name}/cbs@{step}/k{b.k}",
                config,
                parent_id=parent.id,
                fork_step=step + 1,
                status="finished",
            )
            steps = np.arange(step + 1, step + 1 + b.steps)
            with store.writer(child.id) as sink:
                sink.write({"loss": Series.of(steps, b.losses)}, heartbeat=False)
            recorded.append(Branch(**{**b.__dict__, "run_id": child.id}))
        points = {"cbs_lo": Series.of([step], [float(result.lo)])}
        if result.hi is not None:
            points["cbs_hi"] = Series.of([step], [float(result.hi)])
        with store.writer(parent.id) as sink:
            sink.write(points, heartbeat=False)
    return CBSResult(**{**result.__dict__, "branches": tuple(recorded)})
