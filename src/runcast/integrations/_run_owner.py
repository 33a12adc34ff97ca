"""What the Hugging Face and Lightning callbacks share: the run they record into, and decisions
made once, on rank 0, and shared with every rank.

The run: one the user gave, or one the callback starts on its main process (the framework says
which) with the framework's own config under the user's ``config``, and finishes.

Decisions under DDP: a stop must happen at the same step on every rank, or the ranks that go on
wait forever for the ones that stopped in their next collective (a gradient all-reduce). So only
rank 0 decides (its forecast is the one that counts, and the other ranks do not spend time on
one), and every rank calls :meth:`RunOwner.share` at the same point, which sends rank 0's
decision to all of them. A decision that fails (the forecaster raises) becomes a warning and
"no decision": rank 0 still reaches the broadcast, and training goes on unsteered rather than
dying, or hanging the other ranks, over advice.

Example:
    >>> import tempfile, pathlib
    >>> db = str(pathlib.Path(tempfile.mkdtemp()) / "o.db")
    >>> owner = RunOwner(project="demo", name="a", db=db, config={"lr": 0.1}, run=None)
    >>> owner.start_run("a", {"lr": 0.5, "epochs": 3})
    >>> owner.run.config
    {'lr': 0.1, 'epochs': 3}
    >>> owner.finish_run()
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from runcast.errors import InvalidInputError, RuncastWarning
from runcast.integrations._plan import PLAN_KEY, config_update
from runcast.steer._decision import Decision

_log = logging.getLogger("runcast.integrations")

#: broadcast(obj) -> rank 0's obj, called by every rank at the same point
Broadcast = Callable[[Any], Any]


class RunOwner:
    """Holds ``run``; starts it with :func:`runcast.init` when none was given.

    Args:
        project, name, db, config: for :func:`runcast.init` (``config`` wins over the
            framework's).
        run: an already started :class:`runcast.Run` to log to instead (never finished here).

    ``decisions`` lists every decision that stopped the run, the same on every rank.
    """

    def __init__(
        self,
        *,
        project: str,
        name: str | None,
        db: str | None,
        config: Mapping[str, Any] | None,
        run: Any,
    ) -> None:
        self.project = project
        self.name = name
        self.db = db
        self.config = dict(config or {})
        self.run = run
        self._own_run = False
        self._warned_failure = False
        self.decisions: list[Decision] = []

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (``ddp_spawn`` sends callbacks to the processes it starts), without a live run.

        A run recording in this process (a writer thread, a database connection) cannot travel;
        a disabled run (a non-zero rank's) or none at all can.
        """
        if getattr(self.run, "enabled", False):
            from runcast.errors import InvalidInputError

            raise InvalidInputError(
                f"This callback holds run {self.run.id!r}, which records in this process, and "
                "cannot be sent to the processes a spawning launcher (strategy='ddp_spawn') "
                "starts. Leave run= unset and pass project=, name=, db= instead: the callback "
                "then starts the run on rank 0 itself."
            )
        return dict(self.__dict__)

    def release_finished_run(self) -> bool:
        """Before a new ``train()``/``fit()``: drop this callback's own finished run (True: the
        caller starts afresh, a new run and empty buffers); refuse a finished one the user gave.

        A user's finished ``run=`` is refused here, before any step: its log() would raise
        StoreError at the first log, steps into training. A second ``train()``/``fit()`` (another
        round, or a resume from a checkpoint) finds the run of the first one finished, and
        records into a new one.
        """
        if self.run is None or not self.run.finished:
            return False
        if not self._own_run:
            raise InvalidInputError(
                f"The run given to RuncastCallback(run=...), {self.run.id}, is finished; "
                "pass a running one (runcast.init(resume=ID) continues it) or leave run= "
                "unset so the callback starts one."
            )
        self.run, self._own_run = None, False
        return True

    def start_run(self, name: str | None, framework_config: Mapping[str, Any]) -> None:
        """Start the run unless there is one; the user's ``config`` overrides the framework's."""
        if self.run is not None:
            return
        import runcast

        self.run = runcast.init(
            project=self.project,
            name=name,
            config={**framework_config, **self.config},
            db=self.db,
        )
        self._own_run = True

    def finish_run(self) -> None:
        """Finish the run if this object started it (a given run is the caller's to finish)."""
        if self._own_run and self.run is not None:
            self.run.finish()

    def record_plan(self, plan: Mapping[str, Any]) -> None:
        """Add the planned schedule to a run that was given (an own run gets it at start)."""
        if plan and self.run is not None and not self._own_run and PLAN_KEY not in self.run.config:
            config_update(self.run, plan)

    def append_after_finish(self, values: Mapping[str, float], step: int) -> bool:
        """Record ``values`` into this object's own run after it finished; False for a given
        run (the caller's to finish, and maybe already closed on purpose).

        ``trainer.evaluate()`` after ``train()`` is how nearly everyone evaluates: its numbers
        belong to the run that was just trained, at its last step. The run's status stays
        finished; its points are written straight into the store.
        """
        if not self._own_run or self.run is None or not getattr(self.run, "enabled", False):
            return False
        import runcast
        from runcast.store._writer import Series

        store = runcast.open_store(self.run.db)
        try:
            with store.writer(self.run.id) as writer:
                batch = {k: Series.of([step], [v]) for k, v in values.items()}
                writer.write(batch, heartbeat=False)
        finally:
            store.close()
        return True

    def decide(self, rule: Callable[[], Decision | None], step: int) -> Decision | None:
        """``rule()``, or None with a warning (once per callback) if it raises.

        Example:
            >>> owner = RunOwner(project="p", name=None, db=None, config=None, run=None)
            >>> owner.decide(lambda: Decision("stop", "flat", step=3), 3).action
            'stop'
        """
        try:
            return rule()
        except Exception as err:  # advice failed: never kill (or hang) the user's training
            message = (
                f"runcast could not decide whether to stop at step {step} "
                f"({type(err).__name__}: {err}); training goes on without this check."
            )
            if self._warned_failure:
                _log.debug(message)
            else:
                self._warned_failure = True
                warnings.warn(
                    RuncastWarning(message + " (Warned once; later failures log at DEBUG.)"),
                    stacklevel=2,
                )
            return None

    def share(self, decision: Decision | None, broadcast: Broadcast, is_zero: bool) -> bool:
        """Send rank 0's stop decision to every rank; True where training must stop.

        Every rank must call this at the same point (it is a collective under DDP). A stop is
        kept in ``decisions`` on every rank and, on rank 0, recorded in the run as a
        ``runcast_stop`` point at its step.

        Example:
            >>> owner = RunOwner(project="p", name=None, db=None, config=None, run=None)
            >>> owner.share(Decision("stop", "flat", step=3), lambda obj: obj, is_zero=True)
            True
            >>> str(owner.decisions[0])
            'stop at step 3: flat'
        """
        # only a stop travels (a Decision's read-only numbers do not pickle; its dict does)
        sent = decision.to_dict() if decision is not None and decision.action == "stop" else None
        received = broadcast(sent)
        if received is None:
            return False
        stop = Decision(**received)
        self.decisions.append(stop)
        if is_zero:
            _log.info("runcast stops training: %s", stop)
            if self.run is not None and getattr(self.run, "enabled", True):
                self.run.log({"runcast_stop": 1.0}, step=stop.step)
        return True


def torch_broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank under torch.distributed; ``obj`` itself without it.

    Example:
        >>> torch_broadcast({"action": "stop"})  # no process group here: returned as is
        {'action': 'stop'}
    """
    dist = sys.modules.get("torch.distributed")  # never import torch just to ask
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return obj
    if dist.get_world_size() < 2:
        return obj
    box = [obj]
    # note: one small collective per check (not per step); NCCL sends it from the current device
    dist.broadcast_object_list(box, src=0)
    return box[0]
