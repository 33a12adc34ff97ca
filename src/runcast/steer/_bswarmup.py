"""Batch-size warmup: start small and double the batch as the critical batch size grows.

Merrill et al. (2025) find the CBS near 0 at initialisation, rising fast, then levelling off; so
a run can start at a small batch and double it (multiplying Adam's LR by ``sqrt(2)``, SGD's by
2) whenever the CBS exceeds twice the batch, reaching the small batch's loss with far fewer
optimizer steps. The CBS comes from a measured trajectory (``cbs=[(examples, cbs), ...]``, e.g.
from :func:`runcast.steer.measure_cbs` at a few checkpoints of a pilot run; linear between
points, flat outside), or from the gradient noise scale times a multiplier you choose (the paper
found B_simple can be far below the CBS). The batch only grows, in powers of two from
``base_batch`` up to ``max_batch``; each change is a :class:`Decision` with its reason. Apply it
with :class:`WarmupBatchSampler` (a sampler whose batches change size) or gradient accumulation
(:meth:`BatchSizeWarmup.accumulation`); the HF and Lightning callbacks do the latter.
See bench/README.md, "Batch size".

Example:
    >>> w = BatchSizeWarmup(8, 64, cbs=[(0, 4), (1000, 40), (5000, 200)])
    >>> w.update(step=10, examples=500).action, w.batch_size
    ('grow_batch', 16)
    >>> w.update(step=20, examples=5000).reason
    'CBS 200 (measured trajectory at 5,000 examples) > 2 x 16: batch 16 -> 64, LR x 2'
    >>> w.batch_size, round(w.lr_factor, 4)  # sqrt(64 / 8)
    (64, 2.8284)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from runcast.errors import InvalidInputError
from runcast.steer._cbs import Rule, lr_factor
from runcast.steer._decision import Decision
from runcast.steer._noise import GradientNoiseScale


def _whole(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be a whole number >= 1, but got {name}={value!r}.")
    return int(value)


class BatchSizeWarmup:
    """Decide the batch size from the CBS, doubling it while the CBS exceeds twice it.

    Args:
        base_batch: the batch size to start at (examples, or tokens: the CBS's unit).
        max_batch: the largest batch size; ``base_batch`` times a power of two.
        cbs: a measured CBS trajectory, ``[(examples_seen, cbs), ...]``; or
        noise_scale: a :class:`GradientNoiseScale` whose B_simple times ``multiplier`` is
            taken as the CBS (read at each :meth:`update`).
        multiplier: CBS = ``multiplier`` x B_simple (only with ``noise_scale``).
        rule: the LR rule, ``"sqrt"`` (Adam) or ``"linear"`` (SGD): :attr:`lr_factor`.
        run: a :class:`runcast.Run` to log ``batch_size`` and ``lr_factor`` to at each change.

    Call :meth:`update` after each optimizer step with the examples seen so far.
    """

    def __init__(
        self,
        base_batch: int,
        max_batch: int,
        *,
        cbs: Sequence[tuple[float, float]] | None = None,
        noise_scale: GradientNoiseScale | None = None,
        multiplier: float = 1.0,
        rule: Rule = "sqrt",
        run: Any = None,
    ) -> None:
        self.base_batch = _whole("base_batch", base_batch)
        self.max_batch = _whole("max_batch", max_batch)
        ratio = self.max_batch / self.base_batch
        if ratio < 1 or not float(math.log2(ratio)).is_integer():
            raise InvalidInputError(
                f"max_batch must be base_batch times a power of two (the batch doubles), but got "
                f"base_batch={base_batch}, max_batch={max_batch}."
            )
        if (cbs is None) == (noise_scale is None):
            raise InvalidInputError(
                "Give the CBS one way: cbs=[(examples, cbs), ...] (measured) or "
                "noise_scale=GradientNoiseScale(...) with a multiplier, but got "
                f"{'both' if cbs is not None else 'neither'}."
            )
        if rule not in ("sqrt", "linear"):
            raise InvalidInputError(f"rule must be 'sqrt' (Adam) or 'linear' (SGD), got {rule=}.")
        if not (
            isinstance(multiplier, (int, float)) and multiplier > 0 and math.isfinite(multiplier)
        ):
            raise InvalidInputError(f"multiplier must be a number > 0, but got {multiplier=}.")
        self.trajectory: tuple[tuple[float, float], ...] | None = None
        if cbs is not None:
            self.trajectory = _check_trajectory(cbs)
        self.noise_scale = noise_scale
        self.multiplier = float(multiplier)
        self.rule: Rule = rule
        self.run = run
        self.batch_size = self.base_batch
        self.decisions: list[Decision] = []

    @property
    def lr_factor(self) -> float:
        """What to multiply the base LR by at the current batch size."""
        return lr_factor(self.batch_size / self.base_batch, self.rule)

    def accumulation(self, micro_batch: int) -> int:
        """Micro-batches of ``micro_batch`` per optimizer step at the current batch size.

        Example:
            >>> BatchSizeWarmup(8, 32, cbs=[(0, 1)]).accumulation(4)
            2
        """
        micro = _whole("micro_batch", micro_batch)
        if self.base_batch % micro:
            raise InvalidInputError(
                f"micro_batch ({micro}) must divide base_batch ({self.base_batch}) so that every "
                "batch size is whole micro-batches."
            )
        return self.batch_size // micro

    def cbs_at(self, examples: float) -> tuple[float, str]:
        """The CBS estimate after ``examples`` examples, and where it came from."""
        if self.trajectory is not None:
            xs, ys = zip(*self.trajectory, strict=True)
            value = float(np.interp(examples, xs, ys))
            return value, f"measured trajectory at {examples:,.0f} examples"
        assert self.noise_scale is not None
        b = self.noise_scale.b_simple
        return self.multiplier * b, f"{self.multiplier:g} x noise scale {b:.3g}"

    def update(self, step: int, examples: float) -> Decision:
        """Grow the batch if the CBS after ``examples`` examples exceeds twice it.

        Returns a ``"grow_batch"`` decision (``numbers``: the new ``batch_size``, the
        ``previous`` one, the ``cbs`` and the ``lr_factor``) or ``"continue"``.
        """
        cbs, source = self.cbs_at(examples)
        new = self.batch_size
        # double while the CBS exceeds twice the batch, so the batch stays below the CBS (a
        # measured lower bound of it, on a grid of powers of two); a NaN never grows it
        while cbs > 2 * new and 2 * new <= self.max_batch:
            new *= 2
        if new == self.batch_size:
            return Decision(
                "continue",
                f"CBS {cbs:.3g} ({source}) <= 2 x {self.batch_size}, or at max_batch",
                step=step,
                numbers={"batch_size": self.batch_size, "cbs": cbs},
            )
        old, self.batch_size = self.batch_size, new
        factor = lr_factor(new / old, self.rule)
        decision = Decision(
            "grow_batch",
            f"CBS {cbs:.3g} ({source}) > 2 x {old}: batch {old} -> {new}, LR x {factor:.4g}",
            step=step,
            numbers={
                "batch_size": new,
                "previous": old,
                "cbs": cbs,
                "lr_factor": self.lr_factor,
                "examples": examples,
            },
        )
        self.decisions.append(decision)
        if self.run is not None:
            self.run.log({"batch_size": new, "lr_factor": self.lr_factor}, step=step)
        return decision

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (JSON-ready)."""
        return {
            "base_batch": self.base_batch,
            "max_batch": self.max_batch,
            "cbs": None if self.trajectory is None else [list(p) for p in self.trajectory],
            "noise_scale": None if self.noise_scale is None else self.noise_scale.state_dict(),
            "multiplier": self.multiplier,
            "rule": self.rule,
            "batch_size": self.batch_size,
            "decisions": [d.to_dict() for d in self.decisions],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` (the noise scale's state too, into the one held).

        Example:
            >>> a = BatchSizeWarmup(4, 16, cbs=[(0, 9)]); _ = a.update(0, 0)
            >>> b = BatchSizeWarmup(4, 16, cbs=[(0, 9)]); b.load_state_dict(a.state_dict())
            >>> b.batch_size, str(b.decisions[0])
            (8, 'grow_batch at step 0: CBS 9 (measured trajectory at 0 examples) > 2 x 4: batch 4 -> 8, LR x 1.414')
        """  # noqa: E501
        try:
            size = _whole("batch_size", state["batch_size"])
            decisions = [
                Decision(d["action"], d["reason"], d["step"], d["numbers"])
                for d in state["decisions"]
            ]
            base, top = int(state["base_batch"]), int(state["max_batch"])
        except (KeyError, TypeError) as err:
            raise InvalidInputError(
                f"Not a BatchSizeWarmup state_dict ({err!r}); pass what state_dict() returned."
            ) from err
        if (base, top) != (self.base_batch, self.max_batch):
            raise InvalidInputError(
                f"The state is of a warmup from {base} to {top}, this one goes from "
                f"{self.base_batch} to {self.max_batch}: build it with the same batch sizes."
            )
        if state.get("noise_scale") is not None and self.noise_scale is not None:
            self.noise_scale.load_state_dict(state["noise_scale"])
        self.batch_size, self.decisions = size, decisions

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], run: Any = None) -> BatchSizeWarmup:
        """A warmup rebuilt from :meth:`state_dict` alone (a noise scale source gets a fresh
        :class:`GradientNoiseScale` holding the saved state)."""
        gns = None
        if state.get("noise_scale") is not None:
            gns = GradientNoiseScale(state["noise_scale"]["horizon"])
        warmup = cls(
            state["base_batch"],
            state["max_batch"],
            cbs=state.get("cbs"),
            noise_scale=gns,
            multiplier=state.get("multiplier", 1.0),
            rule=state.get("rule", "sqrt"),
            run=run,
        )
        warmup.load_state_dict(state)
        return warmup


def _check_trajectory(cbs: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    try:
        points = tuple((float(x), float(y)) for x, y in cbs)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"cbs must be (examples, cbs) pairs, such as [(0, 8), (50_000, 64)], but got "
            f"{cbs!r:.80} ({err})."
        ) from err
    xs = [x for x, _ in points]
    if (
        not points
        or not all(math.isfinite(v) and v >= 0 for p in points for v in p)
        or xs != sorted(set(xs))
    ):
        raise InvalidInputError(
            f"cbs must be 1+ (examples, cbs) pairs with finite values >= 0 and examples "
            f"increasing, but got {cbs!r:.80}."
        )
    return points


class WarmupBatchSampler:
    """Random batches of indices whose size follows a :class:`BatchSizeWarmup`.

    For ``DataLoader(dataset, batch_sampler=WarmupBatchSampler(...))``: each batch is drawn at
    the warmup's current size, so keep ``num_workers=0`` (workers prefetch batches drawn before
    the size changed) or use gradient accumulation instead. Indices come from a seeded
    permutation per epoch; :meth:`state_dict` keeps the epoch and position, so resuming
    yields exactly the batches an uninterrupted run would have.

    Example:
        >>> w = BatchSizeWarmup(2, 4, cbs=[(0, 1), (4, 10)])
        >>> sampler = WarmupBatchSampler(w, n=10, seed=0)
        >>> it = iter(sampler)
        >>> len(next(it)), (w.update(0, 4), len(next(it)))[1]
        (2, 4)
    """

    def __init__(self, warmup: BatchSizeWarmup, n: int, seed: int = 0) -> None:
        self.warmup = warmup
        self.n = _whole("n", n)
        self.seed = seed
        self.epoch = 0
        self.position = 0

    def _order(self) -> np.ndarray:
        return np.random.default_rng((self.seed, self.epoch)).permutation(self.n)

    def __iter__(self) -> Iterator[list[int]]:
        order = self._order()
        while True:
            size = self.warmup.batch_size
            batch: list[int] = []
            while len(batch) < size:
                if self.position >= self.n:
                    self.epoch, self.position = self.epoch + 1, 0
                    order = self._order()
                take = min(size - len(batch), self.n - self.position)
                batch.extend(int(i) for i in order[self.position : self.position + take])
                self.position += take
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The epoch and position in it."""
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue where :meth:`state_dict` was taken."""
        self.seed, self.epoch, self.position = state["seed"], state["epoch"], state["position"]
