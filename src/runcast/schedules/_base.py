"""The Schedule type: the learning rate of every step, from a spec or a recorded array."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from runcast.errors import ScheduleError
from runcast.schedules import _kinds

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from runcast.schedules._torch import ScheduleLR

FloatArray = npt.NDArray[np.float64]
# array(total) holds 8 bytes a step: 1e8 steps is 800 MB, past any training run (LLM
# pretraining is ~1e6 steps); beyond it a clear error, not a MemoryError or the OOM killer
# (a total of 1e12 would ask numpy for 7 TiB)
MAX_STEPS = 10**8


class Schedule:
    """The learning rate of every step ``t = 0 … total-1``, planned future steps included.

    Build one with :meth:`from_spec` (the spec language of the README: ``constant``, ``cosine``,
    ``wsd``, ``two_stage``, …; ``runcast.schedules.KINDS`` lists them all), :meth:`from_array`
    (a recorded LR per step) or :meth:`from_torch` (any torch LR scheduler, sampled).
    ``array(total)`` gives the per-step LRs as a numpy array, computed vectorised;
    :meth:`to_torch` drives a torch optimizer with it; :meth:`refine` adapts it to the gradient
    norms of a finished run.

    Example:
        >>> s = Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "end": 1e-4,
        ...                         "warmup": 10, "total": 100})
        >>> lrs = s.array()
        >>> lrs.shape, float(lrs[10]), round(float(lrs[-1]), 6)
        ((100,), 0.001, 0.0001)
    """

    __slots__ = ("_cache", "_lrs", "_spec")

    def __init__(self, spec: Mapping[str, Any] | None = None, lrs: FloatArray | None = None):
        if (spec is None) == (lrs is None):
            raise ScheduleError("A Schedule needs exactly one of a spec or a recorded LR array.")
        self._spec: dict[str, Any] | None = None if spec is None else dict(spec)
        self._lrs = lrs
        self._cache: dict[int, FloatArray] = {}

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Schedule:
        """Build a schedule from a spec dict; raises :class:`ScheduleError` naming a bad field.

        Example:
            >>> Schedule.from_spec({"kind": "constant", "peak": 3e-4}).array(3).tolist()
            [0.0003, 0.0003, 0.0003]
        """
        if isinstance(spec, Schedule):
            return spec
        if not isinstance(spec, Mapping):
            raise ScheduleError(
                f"A schedule spec must be a dict like {{'kind': 'cosine', 'peak': 1e-3, "
                f"'total': 1000}}, but got {type(spec).__name__}: {spec!r}."
            )
        if spec.get("kind") == "recorded":
            if "lrs" not in spec:
                raise ScheduleError(
                    "A 'recorded' schedule spec needs its per-step LRs under 'lrs'; "
                    "or build it with Schedule.from_array(lrs)."
                )
            return cls.from_array(spec["lrs"])
        normalized = _kinds.validate(spec)
        return cls(spec=normalized)

    @classmethod
    def from_string(cls, text: str) -> Schedule:
        """Parse a spec given on a command line: JSON, or ``kind:key=value,key=value``.

        Example:
            >>> Schedule.from_string("wsd:peak=1e-3,end=1e-5,total=100,decay_start=80").kind
            'wsd'
        """
        text = text.strip()
        if text.startswith("{"):
            try:
                return cls.from_spec(json.loads(text))
            except json.JSONDecodeError as err:
                raise ScheduleError(f"Schedule spec {text!r} is not valid JSON: {err}.") from err
        kind, _, rest = text.partition(":")
        spec: dict[str, Any] = {"kind": kind.strip()}
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, val = item.partition("=")
            if not eq:
                raise ScheduleError(
                    f"Schedule spec item {item!r} in {text!r} is not key=value; "
                    "write e.g. 'cosine:peak=1e-3,total=1000,warmup=100'."
                )
            spec[key.strip()] = _parse_scalar(val.strip())
        return cls.from_spec(spec)

    @classmethod
    def from_array(cls, lrs: Any) -> Schedule:
        """A schedule from a recorded LR per step (index = step).

        Example:
            >>> Schedule.from_array([1e-3, 5e-4]).array().tolist()
            [0.001, 0.0005]
        """
        try:
            arr = np.asarray(lrs, dtype=np.float64)
        except (TypeError, ValueError):
            raise ScheduleError(
                f"Schedule.from_array needs numbers (one LR per step), but got {lrs!r:.80}."
            ) from None
        if arr.ndim != 1 or arr.size == 0:
            raise ScheduleError(
                f"Schedule.from_array needs a non-empty 1-D array of per-step LRs, "
                f"but got shape {arr.shape}."
            )
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ScheduleError(
                f"Learning rates must be finite and non-negative, but lrs[{i}] = "
                f"{float(arr[i])!r}. Fill gaps in a recorded LR column (e.g. by interpolation) "
                "before building the schedule."
            )
        arr = arr.copy()
        arr.setflags(write=False)
        return cls(lrs=arr)

    # --- queries -----------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The spec's kind, or ``"recorded"``."""
        return "recorded" if self._spec is None else str(self._spec["kind"])

    @property
    def total(self) -> int | None:
        """The planned length in steps, or None for an open-ended spec (e.g. constant)."""
        if self._lrs is not None:
            return int(self._lrs.size)
        t = self._spec.get("total") if self._spec else None
        return None if t is None else int(t)

    @property
    def peak(self) -> float:
        """The spec's ``peak`` (for a recorded schedule: its largest LR)."""
        if self._lrs is not None:
            return float(self._lrs.max())
        return float(self._spec["peak"]) if self._spec else 0.0

    def check_covers(self, steps: int, what: str = "the curve") -> None:
        """Raise :class:`ScheduleError` unless the schedule plans at least ``steps`` steps.

        A spec holds its last LR past its ``total``; that is rarely what a run did, so code that
        pairs a schedule with observed steps checks the lengths first.

        Example:
            >>> s = Schedule.from_spec({"kind": "cosine", "peak": 1.0, "total": 100})
            >>> s.check_covers(100)
            >>> try:
            ...     s.check_covers(500, "the loss curve")
            ... except ScheduleError as err:
            ...     print(str(err)[:64])
            The schedule plans 100 steps but the loss curve runs to step 499
        """
        total = self.total
        if total is not None and total < steps:
            raise ScheduleError(
                f"The schedule plans {total} steps but {what} runs to step {steps - 1} "
                f"({steps} steps); give the schedule's real 'total' or record the LR of every "
                "step."
            )

    # --- torch and refinement (torch imported only here) ---------------------------------------
    @classmethod
    def from_torch(
        cls, scheduler_or_factory: Any, total: int, *, lr: float = 1.0, group: int = 0
    ) -> Schedule:
        """Sample any torch LR scheduler into a recorded schedule of ``total`` steps.

        Pass a fresh scheduler (it is copied with stand-in parameters; yours is never stepped)
        or a factory ``optimizer -> scheduler``, which gets a throwaway optimizer with ``lr``.

        Example:
            >>> from torch.optim.lr_scheduler import StepLR
            >>> s = Schedule.from_torch(lambda opt: StepLR(opt, step_size=2, gamma=0.5), total=5)
            >>> s.array().tolist()
            [1.0, 1.0, 0.5, 0.5, 0.25]
        """
        from runcast.schedules._torch import sample_torch

        return cls.from_array(sample_torch(scheduler_or_factory, total, lr=lr, group=group))

    def to_torch(self, optimizer: Optimizer, *, relative: bool = True) -> ScheduleLR:
        """A torch LR scheduler whose LR at step ``t`` is exactly ``self.array()[t]``.

        ``relative=True`` keeps the param groups' LR ratios (group 0 follows the schedule);
        ``relative=False`` gives every group the schedule's LR. See
        :class:`runcast.schedules._torch.ScheduleLR`.

        Example:
            >>> import torch
            >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
            >>> sched = Schedule.from_array([3e-4, 2e-4]).to_torch(opt)
            >>> opt.param_groups[0]["lr"]
            0.0003
        """
        from runcast.schedules._torch import ScheduleLR

        return ScheduleLR(optimizer, self, relative=relative)

    def refine(
        self,
        grad_norms: Any,
        *,
        window: float = 0.1,
        power: float = 2.0,
        peak: float | None = None,
        warmup: int = 0,
    ) -> Schedule:
        """The schedule refined to a run's gradient norms (Defazio et al. 2023).

        ``eta_t ∝ w_t * sum_{k>t} w_k`` with ``w_t = g_t ** -power`` of the median-filtered
        norms ``g`` (``power=2``: SGD with l2 norms; ``power=1``: Adam with l1 norms of the
        update), scaled so its largest LR is ``peak`` (default: this schedule's peak).

        Args:
            grad_norms: one norm per step of this schedule, or a ``Curve`` of (step, norm)
                logged every few steps (interpolated to every step).
            window: the median filter's width: steps (int) or a share of the run (float < 1).
            power: the exponent of the weights (see above).
            peak: the refined schedule's largest LR.
            warmup: prepend a linear warmup of this many steps.

        Example:
            >>> import numpy as np
            >>> s = Schedule.from_spec({"kind": "linear", "peak": 1e-3, "total": 1000})
            >>> norms = np.linspace(1.0, 2.0, 1000)  # norms that grow as training goes on
            >>> r = s.refine(norms, window=50)
            >>> round(r.peak, 6), float(r.array()[-1]), bool(r.array()[500] < 5e-4)
            (0.001, 0.0, True)
        """
        from runcast.schedules._refine import refined_schedule_lrs

        top = self.peak if peak is None else float(peak)
        if not (np.isfinite(top) and top > 0):
            # an all-zero schedule refined to its own peak of 0 came back all zero, unsaid
            raise ScheduleError(
                f"The refined schedule's peak must be a positive LR, but got {top!r}; pass "
                "peak=..., or refine a schedule whose LR is not 0 everywhere."
            )
        return Schedule.from_array(
            refined_schedule_lrs(grad_norms, self.total, window, power, top, warmup)
        )

    def array(self, total: int | None = None) -> FloatArray:
        """The LR of steps ``0 … total-1`` as a read-only float64 array.

        ``total`` defaults to the schedule's own length. Past its planned end a spec schedule
        holds its last LR; a recorded schedule cannot be extended and raises.
        """
        if total is None:
            total = self.total
            if total is None:
                raise ScheduleError(
                    f"The {self.kind!r} schedule has no 'total'; pass the number of steps: "
                    "schedule.array(total)."
                )
        total = int(total)
        if total < 0:
            raise ScheduleError(f"total must be non-negative, but got {total=}.")
        if total > MAX_STEPS:
            raise ScheduleError(
                f"{total} steps is past the {MAX_STEPS:.0e} a schedule can lay out "
                f"({8 * total / 2**30:.3g} GiB of LRs); no training run is that long."
            )
        cached = self._cache.get(total)
        if cached is not None:
            return cached
        if self._lrs is not None:
            if total > self._lrs.size:
                raise ScheduleError(
                    f"The recorded schedule has {self._lrs.size} steps but {total} were asked for."
                    " A recorded LR cannot be extended: record the LR up to the last step, or "
                    "give the planned schedule as a spec."
                )
            out = self._lrs[:total]
        else:
            assert self._spec is not None
            out = _kinds.evaluate(self._spec, total)
            out.setflags(write=False)
        if len(self._cache) < 8:
            self._cache[total] = out
        return out

    def __call__(self, step: int) -> float:
        """The LR of one step."""
        if step < 0:
            raise ScheduleError(f"step must be non-negative, but got {step=}.")
        return float(self.array(max(step + 1, self.total or 0))[step])

    def to_spec(self) -> dict[str, Any]:
        """The JSON-ready spec; a recorded schedule gives ``{"kind": "recorded", "lrs": [...]}``."""
        if self._lrs is not None:
            return {"kind": "recorded", "lrs": self._lrs.tolist()}
        assert self._spec is not None
        return dict(self._spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        if self._lrs is not None or other._lrs is not None:
            return (
                self._lrs is not None
                and other._lrs is not None
                and np.array_equal(self._lrs, other._lrs)
            )
        return self._spec == other._spec

    def __hash__(self) -> int:
        if self._lrs is not None:
            return hash(("recorded", self._lrs.tobytes()))
        return hash(json.dumps(self._spec, sort_keys=True))

    def __repr__(self) -> str:
        if self._lrs is not None:
            return f"Schedule.from_array(<{self._lrs.size} recorded LRs, peak {self.peak:.3g}>)"
        return f"Schedule.from_spec({self._spec!r})"


def _parse_scalar(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    return text
