"""Stop without a validation set: the training dynamics say learning has stopped.

The idea of Ahmad, Trahan and Islam ("When do Convolutional Neural Networks Stop Learning?",
2024), who watch how much a network's outputs still vary from epoch to epoch and stop once that
variation settles, read on any training signal a loop has: the training loss (the default), or
a layer-output statistic per epoch as in the paper. The signal is cut into blocks of ``block``
updates; each block is summarised by its median (robust to noisy batches), and a block's gain
is the fraction of all the progress so far that it made: ``(m[k-1] - m[k]) / (m[0] - m[k])``.
Learning has stopped when ``patience`` blocks in a row each gained less than ``tol``. The
weights to keep are the latest: there is no validation value to pick a better step by. See
bench/README.md, "Early stopping that pays", for what it saves and costs on real runs.

Example:
    >>> tp = TrainingPlateau(block=10, tol=0.02, patience=2)
    >>> losses = [1.0 / (1 + 0.5 * s) if s < 60 else 1.0 / 31 for s in range(200)]
    >>> next(s for s, v in enumerate(losses) if tp.update(s, v))
    79
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from runcast.errors import InvalidInputError
from runcast.steer._decision import Decision


class TrainingPlateau:
    """Stop once a training signal (by default the loss) has stopped falling.

    Args:
        block: updates per block (e.g. a twentieth of the budget, or one per epoch for a
            per-epoch signal).
        tol: a block that makes less than this fraction of the progress so far is flat.
        patience: flat blocks in a row that stop the run.
        min_blocks: never stop before this many blocks.

    Example:
        >>> tp = TrainingPlateau(block=1, tol=0.05, patience=1, min_blocks=2)
        >>> [tp.update(i, v).action for i, v in enumerate([2.0, 1.0, 0.99])]
        ['continue', 'continue', 'stop']
    """

    def __init__(
        self, block: int, tol: float = 0.01, patience: int = 2, min_blocks: int = 3
    ) -> None:
        if block < 1 or patience < 1 or min_blocks < 2:
            raise InvalidInputError(
                f"need block >= 1, patience >= 1 and min_blocks >= 2, but got {block=}, "
                f"{patience=}, {min_blocks=}."
            )
        if not (math.isfinite(tol) and tol >= 0):
            raise InvalidInputError(f"tol must be a finite number >= 0, but got {tol=}.")
        self.block, self.tol, self.patience, self.min_blocks = block, tol, patience, min_blocks
        self.medians: list[float] = []
        self.flat = 0
        self._current: list[float] = []

    def update(self, step: int, value: float) -> Decision:
        """Record one value of the signal at ``step``; decides when a block closes."""
        self._current.append(float(value))
        if len(self._current) < self.block:
            return Decision("continue", "block not complete", step=step)
        cur = np.asarray(self._current)
        self._current = []
        finite = cur[np.isfinite(cur)]
        # a block with no finite value is no evidence of a plateau (a guard handles NaN)
        self.medians.append(float(np.median(finite)) if finite.size else math.nan)
        k = len(self.medians)
        if k < 2 or not math.isfinite(self.medians[-1]):
            return Decision("continue", f"{k} block(s)", step=step)
        first, prev, now = self.medians[0], self.medians[-2], self.medians[-1]
        progress = first - now
        gain = (prev - now) / progress if progress > 0 else 0.0
        self.flat = self.flat + 1 if gain < self.tol else 0
        numbers = {
            "block_median": now,
            "gain": gain,
            "tol": self.tol,
            "flat_blocks": float(self.flat),
            "patience": float(self.patience),
        }
        why = (
            f"the last block made {gain:.2%} of the progress so far (tol {self.tol:.2%}); "
            f"{self.flat} flat block(s) in a row"
        )
        if k >= self.min_blocks and self.flat >= self.patience:
            return Decision("stop", f"training stopped learning: {why}", step=step, numbers=numbers)
        return Decision("continue", why, step=step, numbers=numbers)

    def state_dict(self) -> dict[str, Any]:
        """The rule's state, for checkpoints."""
        return {"medians": list(self.medians), "flat": self.flat, "current": list(self._current)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.medians = [float(v) for v in state["medians"]]
        self.flat = int(state["flat"])
        self._current = [float(v) for v in state["current"]]
