"""Early stopping in a plain PyTorch loop, keeping the weights of the best evaluation.

:class:`BestWeights` copies a module's weights (off the device, so a long run holds one spare
copy in host memory, not on the accelerator) each time the validation metric reaches a new
best, and puts them back when asked; with a schedule-free optimizer it copies the evaluation
weights ``x``. :class:`EarlyStopping` joins it to a :class:`runcast.steer.EarlyStopper`: feed it
the training loss and each evaluation, stop when it says so, then :meth:`EarlyStopping.restore`.
The HF and Lightning callbacks (``runcast.integrations.hf`` / ``.lightning``:
``EarlyStopCallback``) use the same two pieces.

Example:
    >>> import torch
    >>> from runcast.steer import EarlyStopper
    >>> model = torch.nn.Linear(1, 1)
    >>> es = EarlyStopping(model, EarlyStopper(window=2, z=0.5, min_rise=0.0, min_evals=3))
    >>> for step, val in enumerate([3.0, 2.0, 1.5, 1.4, 1.6, 1.9]):
    ...     with torch.no_grad():
    ...         _ = model.weight.fill_(float(step))  # stands in for training
    ...     if es.evaluate(step, val):
    ...         break
    >>> es.restore(), float(model.weight.detach())  # back to the weights of the best step
    (3, 3.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runcast._optional import require
from runcast.errors import InvalidInputError
from runcast.integrations._schedulefree import eval_mode
from runcast.steer._decision import Decision
from runcast.steer._early import EarlyStopper

if TYPE_CHECKING:
    import torch

#: the run's config key that holds the best evaluation (and the stop, once there is one)
BEST_KEY = "runcast_best"


def record_best(run: Any, stopper: EarlyStopper, metric: str) -> None:
    """Write the best evaluation's step and value (and the stop's step and reason, once the
    stopper has stopped) into ``run``'s config under ``runcast_best``, in the store, so the run
    says which checkpoint to restore (``runcast runs show`` prints it).

    ``run``: a :class:`runcast.Run`, a runcast ``RuncastCallback`` (the run it records into),
    or None (nothing is written). A disabled run (another rank's) or a finished one is left
    alone; nothing is written when the entry has not changed, so this costs a store write only
    at a new best evaluation.

    Example:
        >>> import tempfile, pathlib, runcast
        >>> from runcast.steer import EarlyStopper
        >>> run = runcast.init(db=pathlib.Path(tempfile.mkdtemp()) / "b.db")
        >>> es = EarlyStopper()
        >>> _ = es.evaluate(100, 0.5)
        >>> record_best(run, es, "val_loss")
        >>> run.finish()
        >>> runcast.open_store(run.db).run(run.id).config["runcast_best"]
        {'metric': 'val_loss', 'mode': 'min', 'step': 100, 'value': 0.5}
    """
    run = getattr(run, "run", run)  # a RuncastCallback holds its run (once it has started one)
    if run is None or stopper.best_step is None or not getattr(run, "enabled", False):
        return
    if getattr(run, "finished", False):
        return
    entry: dict[str, Any] = {
        "metric": metric,
        "mode": stopper.mode,
        "step": stopper.best_step,
        "value": stopper.best_value,
    }
    if stopper.decisions:
        stop = stopper.decisions[0]
        entry |= {"stop_step": stop.step, "stop_reason": stop.reason}
    if run.config.get(BEST_KEY) != entry:
        from runcast.integrations._plan import config_update

        config_update(run, {BEST_KEY: entry})


def _torch() -> Any:
    # imported when first used, so importing runcast.integrations.torch stays cheap
    return require("torch", extra="torch", purpose="for runcast.integrations.torch")


class BestOfStopper:
    """``best_step`` and ``best_value`` read from ``self.stopper`` (an :class:`EarlyStopper`): the
    one definition the plain-loop helper and the HF and Lightning callbacks share.

    Example:
        >>> class Holder(BestOfStopper):
        ...     def __init__(self) -> None:
        ...         self.stopper = EarlyStopper()
        >>> h = Holder()
        >>> _ = h.stopper.evaluate(5, 0.3)
        >>> h.best_step, h.best_value
        (5, 0.3)
    """

    stopper: EarlyStopper

    @property
    def best_step(self) -> int | None:
        """The step of the best evaluation so far (the weights to keep)."""
        return self.stopper.best_step

    @property
    def best_value(self) -> float | None:
        """The best evaluation's value."""
        return self.stopper.best_value


class BestWeights:
    """Keep a copy of a module's weights at its best step, and restore them.

    Args:
        device: where the copy lives (``"cpu"``: host memory, the accelerator's stays free).

    Example:
        >>> import torch
        >>> m = torch.nn.Linear(2, 1)
        >>> keep = BestWeights()
        >>> keep.keep(m, step=7)
        >>> _ = torch.nn.init.zeros_(m.weight)
        >>> keep.restore(m), bool(m.weight.abs().sum() > 0)
        (7, True)
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = _torch().device(device)
        self.state: dict[str, torch.Tensor] | None = None
        self.step: int | None = None

    def keep(self, module: torch.nn.Module, step: int, optimizer: Any = None) -> None:
        """Copy ``module``'s weights as those of ``step`` (evaluation weights if schedule-free)."""
        torch = _torch()
        opts = () if optimizer is None else (optimizer,)
        # note: a device-to-host copy (a sync), once per new best evaluation, never per step
        with eval_mode(*opts), torch.no_grad():
            self.state = {
                k: v.detach().to(self.device, copy=True) for k, v in module.state_dict().items()
            }
        self.step = int(step)

    def restore(self, module: torch.nn.Module) -> int | None:
        """Load the kept weights into ``module``; returns their step (None: nothing kept)."""
        if self.state is None:
            return None
        module.load_state_dict(self.state)
        return self.step


class EarlyStopping(BestOfStopper):
    """A plain loop's early stopping: an :class:`EarlyStopper` plus the best weights.

    Args:
        model: the module whose weights to keep.
        stopper: the rule (default ``EarlyStopper()``).
        optimizer: a schedule-free optimizer's evaluation weights are the ones kept.
        device: where the kept copy lives.
        run: a :class:`runcast.Run` to record the best evaluation in (``config["runcast_best"]``:
            its step and value, and the stop once there is one).
        metric: the evaluated metric's name, as recorded there.

    ``decision`` is the decision that stopped the run (None while it runs); ``stopper.decisions``
    keeps all of them with their reasons and numbers.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        stopper: EarlyStopper | None = None,
        *,
        optimizer: Any = None,
        device: str | torch.device = "cpu",
        run: Any = None,
        metric: str = "val_loss",
    ) -> None:
        if not isinstance(model, _torch().nn.Module):
            raise InvalidInputError(
                f"EarlyStopping keeps a torch.nn.Module's weights, but got {type(model).__name__}."
            )
        self.model, self.optimizer = model, optimizer
        self.stopper = stopper if stopper is not None else EarlyStopper()
        self.best = BestWeights(device)
        self.decision: Decision | None = None
        self.run, self.metric = run, metric

    def train_step(self, step: int, loss: float) -> Decision:
        """Record one step's training loss: pass a float you already have (converting a device
        tensor here would sync every step)."""
        d = self.stopper.observe_train(step, loss)
        if d and self.decision is None:
            self.decision = d
        return d

    def evaluate(self, step: int, value: float) -> Decision:
        """Record an evaluation; keeps the weights on a new best; a true result means stop."""
        d = self.stopper.evaluate(step, value)
        if self.stopper.best_step == step and self.best.step != step:
            self.best.keep(self.model, step, self.optimizer)
        if d and self.decision is None:
            self.decision = d
        record_best(self.run, self.stopper, self.metric)
        return d

    def restore(self) -> int | None:
        """Put the best evaluation's weights back into the model; returns that step."""
        return self.best.restore(self.model)

    def state_dict(self) -> dict[str, Any]:
        """The rule's state and the kept weights (``torch.save`` them with your checkpoint)."""
        return {
            "stopper": self.stopper.state_dict(),
            "best": self.best.state,
            "step": self.best.step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.stopper.load_state_dict(state["stopper"])
        self.best.state, self.best.step = state["best"], state["step"]
        self.decision = self.stopper.decisions[0] if self.stopper.decisions else None
