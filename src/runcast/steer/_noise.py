"""The gradient noise scale B_simple = tr(Sigma) / |G|^2 from gradient norms at two batch sizes.

McCandlish et al. (2018, appendix A): the squared norm of a mean gradient over ``B`` examples
has expectation ``|G|^2 + tr(Sigma) / B``. Two batch sizes give two equations and so unbiased
estimates of both terms from one pair of norms:

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

Single estimates are very noisy (often negative), so both terms are averaged first (over about
``horizon`` updates, bias-corrected like Adam's; ``horizon=None``: the plain mean) and their
ratio is taken last. In training the pair comes free: a micro-batch's gradient against the
accumulated one, or one rank's against the all-reduced one (``TrainingMonitor(noise_scale=...)``
in :mod:`runcast.integrations.torch`). B_simple is in the batch sizes' unit. Accuracy: see
bench/README.md, "Batch size".

Example:
    >>> gns = GradientNoiseScale(horizon=None)
    >>> # |G|^2 = 1, tr(Sigma) = 64: E|G_B|^2 = 1 + 64 / B
    >>> gns.update(1 + 64 / 8, 1 + 64 / 64, b_small=8, b_big=64)
    >>> round(gns.b_simple, 6), round(gns.grad_sq, 6), round(gns.trace_sigma, 6)
    (64.0, 1.0, 64.0)
"""

from __future__ import annotations

import math
from typing import Any

from runcast.errors import InvalidInputError

#: updates the running averages span by default: long enough that the estimate is within a few
#: percent after ~1,000 updates, short enough to follow the noise scale as training moves on
DEFAULT_HORIZON = 500.0


def _check_batch(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidInputError(f"{name} must be a batch size > 0, but got {name}={value!r}.")
    return float(value)


class GradientNoiseScale:
    """Running unbiased estimates of ``|G|^2`` and ``tr(Sigma)``, and their ratio B_simple.

    Args:
        horizon: updates the exponential averages span (decay ``1 - 1/horizon``); None for the
            plain mean of every update so far.

    Feed it with :meth:`update` once per optimizer step; read :attr:`b_simple`. The squared
    norms may be floats or 0-d torch tensors: with tensors the averages stay on the device
    (no sync per step) until a property is read.

    Example:
        >>> gns = GradientNoiseScale(horizon=100)
        >>> for _ in range(3):
        ...     gns.update(2.0, 1.0625, b_small=16, b_big=256)
        >>> round(gns.b_simple, 3), gns.updates
        (16.0, 3)
    """

    def __init__(self, horizon: float | None = DEFAULT_HORIZON) -> None:
        if horizon is not None and (
            isinstance(horizon, bool) or not isinstance(horizon, (int, float)) or not horizon >= 1
        ):
            raise InvalidInputError(
                f"horizon must be a number of updates >= 1 (or None for the plain mean), but got "
                f"{horizon=}."
            )
        self.horizon = None if horizon is None else float(horizon)
        self._g2: Any = 0.0
        self._s: Any = 0.0
        self._n = 0
        self._weight = 0.0  # the sum of weights so far (1 - beta^n for the EMA, n for the mean)

    def update(self, sqnorm_small: Any, sqnorm_big: Any, b_small: float, b_big: float) -> None:
        """Add one pair of squared gradient norms: of the mean gradient over ``b_small`` examples
        and over ``b_big`` examples (``b_small < b_big``)."""
        bs, bb = _check_batch("b_small", b_small), _check_batch("b_big", b_big)
        if not bs < bb:
            raise InvalidInputError(
                f"b_small must be smaller than b_big (two batch sizes give the two equations), "
                f"but got b_small={b_small}, b_big={b_big}."
            )
        for name, v in (("sqnorm_small", sqnorm_small), ("sqnorm_big", sqnorm_big)):
            if isinstance(v, bool) or (isinstance(v, (int, float)) and not v >= 0):
                raise InvalidInputError(f"{name} must be a squared norm >= 0, but got {v!r}.")
        g2 = (bb * sqnorm_big - bs * sqnorm_small) / (bb - bs)
        s = (sqnorm_small - sqnorm_big) / (1.0 / bs - 1.0 / bb)
        self._n += 1
        keep = 1.0 if self.horizon is None else 1.0 - 1.0 / self.horizon
        # unnormalised weighted sums: the average is sum / weight (Adam's bias correction)
        self._g2 = keep * self._g2 + g2
        self._s = keep * self._s + s
        self._weight = keep * self._weight + 1.0

    @property
    def updates(self) -> int:
        """How many pairs have been added."""
        return self._n

    @property
    def grad_sq(self) -> float:
        """The averaged estimate of ``|G|^2`` (NaN before the first update)."""
        return float(self._g2) / self._weight if self._n else math.nan

    @property
    def trace_sigma(self) -> float:
        """The averaged estimate of ``tr(Sigma)``, the per-example gradient variance."""
        return float(self._s) / self._weight if self._n else math.nan

    @property
    def b_simple(self) -> float:
        """``tr(Sigma) / |G|^2``; NaN before the first update or while the ``|G|^2`` average
        is not positive (early, the noise can make it so)."""
        if not self._n:
            return math.nan
        g2, s = float(self._g2), float(self._s)
        return s / g2 if g2 > 0 else math.nan

    def value(self) -> Any:
        """B_simple as it is held: a 0-d tensor on the device when tensors were fed (for
        logging without a sync), else a float; NaN where :attr:`b_simple` is NaN."""
        if not self._n or isinstance(self._g2, float):
            return self.b_simple
        import torch

        g2 = self._g2
        return torch.where(g2 > 0, self._s / g2, torch.full_like(g2, math.nan))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (floats: a sync, done at checkpoint time)."""
        return {
            "horizon": self.horizon,
            "updates": self._n,
            "weight": self._weight,
            "grad_sq_sum": float(self._g2),
            "trace_sigma_sum": float(self._s),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`.

        Example:
            >>> a = GradientNoiseScale(); a.update(3.0, 1.5, 4, 32)
            >>> b = GradientNoiseScale(); b.load_state_dict(a.state_dict())
            >>> b.b_simple == a.b_simple
            True
        """
        try:
            horizon, n = state["horizon"], int(state["updates"])
            weight = float(state["weight"])
            g2, s = float(state["grad_sq_sum"]), float(state["trace_sigma_sum"])
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInputError(
                f"Not a GradientNoiseScale state_dict ({err!r}); pass what state_dict() returned."
            ) from err
        self.__init__(horizon)  # type: ignore[misc]
        self._n, self._weight, self._g2, self._s = n, weight, g2, s

    def __repr__(self) -> str:
        return f"GradientNoiseScale(b_simple={self.b_simple:.4g}, updates={self._n})"
