"""``runcast.init`` and :class:`Run`: record a training run into the store.

Shaped like the trackers people know (wandb, trackio)::

    run = runcast.init(project="gpt", config={"lr": 3e-4})
    for step in range(steps):
        ...
        run.log({"loss": loss, "lr": sched.get_last_lr()[0]}, step=step)
    run.finish()

``run.log`` checks its arguments and appends them to an in-memory buffer; it never touches the
disk and never forces a device sync, so it can run every step. A background thread writes the
buffer to the store once a second (one transaction per batch); ``finish()`` and interpreter exit
write the rest.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from runcast.errors import InvalidInputError, RuncastWarning, StoreError
from runcast.store import SQLStore, Status, default_db, open_store
from runcast.track._args import check_init, file_id, short
from runcast.track._values import MAX_STEP, REAL_DTYPES, TENSOR_TYPES, check_step, check_value
from runcast.track._writer import BackgroundWriter

#: values log() accepts without a closer look (a set lookup is the cheapest type test)
_PLAIN = frozenset((float, int))
#: unfinished runs, held strongly: one that goes out of scope unfinished is still written at exit
_LIVE: set[Run] = set()
_HOOKS_PID: int | None = None
_UNCAUGHT = False


class Run:
    """A run being recorded. Make one with :func:`runcast.init`.

    Attributes:
        id: the run's id in the store (changes if the run forks, see :meth:`log`).
        name, project, config: as given to :func:`runcast.init`.
        db: the store file (a ``postgresql://`` URL for a PostgreSQL store).
        enabled: False on a non-zero rank under torch.distributed (``log`` then does nothing).
        parent_id, fork_step: set when this run is a fork.
    """

    def __init__(
        self,
        store: SQLStore | None,
        run_id: str,
        name: str,
        project: str,
        config: dict[str, Any],
        resume_last: int | None,
        resume_status: Status | None,
        flush_every: float,
    ) -> None:
        self.id = run_id
        self.name = name
        self.project = project
        self.config = config
        self.db: Path | str = store.location if store is not None else Path()
        self._where = store.where if store is not None else ""  # a URL without its password
        # which file the store is: SQLite goes on writing into a file deleted or replaced under
        # it, so finish() compares, to say so instead of losing the points without a word
        self._store_file = file_id(self.db) if isinstance(self.db, Path) and store else None
        self.enabled = store is not None
        self.parent_id: str | None = None
        self.fork_step: int | None = None
        self.step = 0 if resume_last is None else resume_last + 1
        self._store = store
        self._resume_last = resume_last
        self._resume_status = resume_status
        self._max_step = -1
        self._warned_backwards = False
        self._finished = store is None
        # a disabled run (another rank) is "finished" from the start, for the writer's sake;
        # this says whether the user finished it, so log() after finish() fails on every rank
        self._closed = False
        self._pid = os.getpid()
        self._writer: BackgroundWriter | None = None
        if store is not None:
            self._writer = BackgroundWriter(lambda: store.writer(run_id), interval=flush_every)
            # the queue's append is all log() needs; bind it once (a step costs ~1 us)
            self._push = self._writer.queue.append
            _LIVE.add(self)

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` was called: :meth:`log` would now raise.

        A disabled run (another DDP rank's) records nothing from the start, but it too is
        finished only once :meth:`finish` is called.

        Example:
            >>> import tempfile, pathlib, runcast
            >>> run = runcast.init(db=pathlib.Path(tempfile.mkdtemp()) / "f.db")
            >>> run.finished, (run.finish(), run.finished)[1]
            (False, True)
        """
        return self._finished if self.enabled else self._closed

    def __repr__(self) -> str:
        state = "finished" if self._finished else "running"
        return f"Run(id={self.id!r}, name={self.name!r}, project={self.project!r}, {state})"

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Record metric values at a step.

        Args:
            data: metric key -> value: a Python number, numpy scalar or 0-d torch tensor. NaN
                and inf are recorded as missing and counted in a warning at :meth:`finish`.
            step: the training step (non-negative int). Default: one past the largest step
                logged so far, as in wandb.

        A resumed run (``runcast.init(resume=ID)``) that logs a step it already has is not
        overwritten: logging continues in a new run forked from it at that step (see
        :func:`runcast.init`), with a RuncastWarning. Steps that go backwards within one
        session are kept too (a RuncastWarning says so); reads return points in step order,
        and the later value of a (key, step) logged twice wins.

        Example:
            >>> import tempfile, pathlib, runcast
            >>> run = runcast.init(db=pathlib.Path(tempfile.mkdtemp()) / "log.db")
            >>> run.log({"loss": 2.5, "lr": 1e-3})
            >>> run.log({"loss": 2.0}, step=5)
            >>> run.step
            6
            >>> run.finish()
        """
        if self._finished:
            if not (self.enabled or self._closed):
                return
            raise StoreError(
                f"Run {self.id} is finished; start another with runcast.init() "
                f"(or continue it with runcast.init(resume={self.id!r}))."
            )
        if step is None:
            step = self.step
        if type(step) is not int or not 0 <= step <= MAX_STEP:
            # a step past int64 would be accepted here and fail the writer's whole batch
            step = check_step(step)
        try:
            row = dict(data)  # our own copy: the caller may reuse and mutate its dict
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"run.log takes a dict of metric values, like run.log({{'loss': 0.5}}), but got "
                f"{type(data).__name__} {short(data)}. Nothing of this call was recorded."
            ) from None
        has_tensor = False
        for key, value in row.items():
            kind = type(value)
            if kind in _PLAIN and type(key) is str and key:
                continue  # the fast path: a plain Python number under a non-empty key
            if kind in TENSOR_TYPES and value.ndim == 0 and value.dtype in REAL_DTYPES:
                if value.is_cpu and type(key) is str and key:
                    # a CPU tensor: .item() involves no device sync, and converting now frees
                    # the tensor instead of keeping a second's worth of them alive until flush
                    row[key] = value.item()
                    continue
                if not value.is_meta:  # a meta tensor has no value: check_value refuses it
                    has_tensor = True  # an accelerator tensor: converted in the writer thread
                    if type(key) is str and key:
                        continue
            checked, tensor = check_value(key, value, step)  # anything else: a closer look
            row[key] = checked
            has_tensor = has_tensor or tensor
        if self._resume_last is not None and step <= self._resume_last:
            self._fork(step)
        elif step < self._max_step and not self._warned_backwards:
            self._warned_backwards = True
            warnings.warn(
                RuncastWarning(
                    f"Run {self.id}: step {step} was logged after step {self._max_step}. The "
                    "points are kept and read in step order; a value logged twice for the same "
                    "key and step is read as the later one. (Warned once per run.)"
                ),
                stacklevel=2,
            )
        self._push((step, time.time(), row, has_tensor))
        if step > self._max_step:
            self._max_step = step
            self.step = step + 1

    def _fork(self, step: int) -> None:
        assert self._store is not None and self._writer is not None
        parent = self.id
        self._writer.flush()
        child = self._store.fork(parent, step)
        if self._resume_status is not None:
            self._store.set_status(parent, self._resume_status)
        store = self._store
        self._writer.retarget(lambda: store.writer(child.id))
        warnings.warn(
            RuncastWarning(
                f"Run {parent} already has step {step} (its last step is {self._resume_last}), "
                f"so nothing is overwritten: logging continues in a new run {child.id} "
                f"({child.name!r}) forked from it at step {step}, with a copy of its points "
                f"before step {step}."
            ),
            stacklevel=3,
        )
        self.id, self.name = child.id, child.name
        self.parent_id, self.fork_step = parent, step
        self._max_step = -1  # the fork's own steps start here; earlier ones were the parent's
        self._resume_last = self._resume_status = None

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything logged so far is in the store (the writer does this itself
        every ``flush_every`` seconds; call it before reading the run from another process).

        Example:
            >>> import tempfile, pathlib, runcast
            >>> run = runcast.init(db=pathlib.Path(tempfile.mkdtemp()) / "f.db")
            >>> run.log({"loss": 1.0})
            >>> run.flush()
            >>> runcast.open_store(run.db).summary(run.id)["loss"].n_points
            1
            >>> run.finish()
        """
        if self._writer is None or self._finished:
            return
        if not self._writer.flush(timeout):
            raise StoreError(f"Run {self.id}: the writer did not flush within {timeout} s.")
        if self._writer.error is not None:
            raise StoreError(
                f"Run {self.id}: writing to {self._where!r} failed ({self._writer.error}); "
                "the points are kept in memory and retried."
            ) from self._writer.error

    def finish(self, status: Status = "finished") -> None:
        """Write every buffered point, then mark the run ``status`` (idempotent).

        Example:
            >>> import tempfile, pathlib, runcast
            >>> run = runcast.init(db=pathlib.Path(tempfile.mkdtemp()) / "fin.db")
            >>> run.finish()
            >>> runcast.open_store(run.db).run(run.id).status
            'finished'
        """
        self._finish(status, stacklevel=3)

    def _finish(self, status: Status, stacklevel: int) -> None:
        if self._finished:
            self._closed = True
            return
        if status not in ("finished", "failed", "killed"):
            raise InvalidInputError(
                f"finish(status=...) must be 'finished', 'failed' or 'killed', but got {status!r}."
            )
        self._finished = True
        _LIVE.discard(self)
        assert self._writer is not None and self._store is not None
        self._writer.close()
        error = self._writer.error
        try:
            self._store.set_status(self.id, status)
        finally:
            self._store.close()
        nonfinite = self._writer.nonfinite
        if nonfinite:
            total = sum(nonfinite.values())
            detail = ", ".join(f"{k} ({n})" for k, n in sorted(nonfinite.items()))
            warnings.warn(
                RuncastWarning(
                    f"Run {self.id}: {total} value(s) were NaN or inf and are recorded as "
                    f"missing: {detail}."
                ),
                stacklevel=stacklevel,  # point at the user's finish() call or with-block
            )
        if error is not None:
            raise StoreError(
                f"Run {self.id}: some points could not be written to {self._where!r}: {error}"
            ) from error
        if self._store_file is not None and file_id(Path(self.db)) != self._store_file:
            raise StoreError(
                f"Run {self.id}: the store file {str(self.db)!r} was deleted or replaced while "
                "the run was recording, so the points written since then are not in it. Keep "
                "stores in place while runs write to them."
            )

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._finish("finished", stacklevel=3)
        elif issubclass(exc_type, KeyboardInterrupt):
            self._finish("killed", stacklevel=3)
        else:
            self._finish("failed", stacklevel=3)


def _rank() -> tuple[int, int]:
    """(rank, world size) under torch.distributed or a launcher's env vars, else (0, 1)."""
    dist = sys.modules.get("torch.distributed")  # never import torch just to ask
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    env = os.environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        if "RANK" in env:
            return int(env["RANK"]), world
        # Lightning's ddp launcher starts ranks with LOCAL_RANK and NODE_RANK only (no RANK)
        local, node = int(env.get("LOCAL_RANK", "0")), int(env.get("NODE_RANK", "0"))
        return node * int(env.get("LOCAL_WORLD_SIZE", world)) + local, world
    except ValueError:
        return 0, 1


def init(
    project: str = "default",
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    db: str | os.PathLike[str] | None = None,
    resume: str | None = None,
    rank_zero_only: bool = True,
    flush_every: float = 1.0,
) -> Run:
    """Start recording a run (or continue one) in the store.

    Args:
        project: groups runs (``runcast runs list --project``).
        name: a human name; default ``run-<id>``.
        config: hyper-parameters to record with the run (JSON-able; others stored as repr).
        db: the store file, or a ``postgresql://`` URL (a team store, ``runcast[postgres]``);
            default ``$RUNCAST_DB`` or ./runcast.db.
        resume: the id (or name) of a run to continue. Steps continue after its last step. If
            it logs a step the run already has, the run forks: a new run (``parent_id``,
            ``fork_step`` set) gets a copy of the parent's points before that step, and
            logging continues there, with a RuncastWarning; the parent keeps its points.
        rank_zero_only: under torch.distributed (or a launcher setting RANK), only rank 0
            records; other ranks get a disabled run whose ``log`` does nothing. With False,
            each rank records its own run named ``<name>/rank<r>``, with ``rank`` in its config.
        flush_every: seconds between background writes.

    Example:
        >>> import tempfile, pathlib, runcast
        >>> db = pathlib.Path(tempfile.mkdtemp()) / "init.db"
        >>> with runcast.init(project="p", config={"lr": 0.1}, db=db) as run:
        ...     run.log({"loss": 1.0})
        >>> runcast.open_store(db).run(run.id).config
        {'lr': 0.1}
    """
    check_init(project, name, config, resume, flush_every)
    _install_hooks()
    rank, world = _rank()
    cfg = dict(config or {})
    if world > 1 and rank_zero_only and rank != 0:
        return Run(None, "", name or "", project, cfg, None, None, flush_every)
    if world > 1 and not rank_zero_only:
        name = f"{name or 'run'}/rank{rank}"
        cfg.update(rank=rank, world_size=world)
    store = open_store(default_db(db))
    try:
        if resume is not None:
            if store.run(resume).status == "running":
                raise StoreError(
                    f"Run {resume!r} is still running (its process is alive); finish it there "
                    "first, or start a new run without resume=."
                )
            before = store.claim(resume, cfg or None)
            return Run(
                store,
                before.id,
                before.name,
                before.project,
                {**before.config, **cfg},
                before.last_step,
                before.status,
                flush_every,
            )
        info = store.create_run(project, name, cfg)
    except BaseException:
        store.close()
        raise
    return Run(store, info.id, info.name, project, cfg, None, None, flush_every)


def _install_hooks() -> None:
    """Once per process: finish live runs at exit, as "failed" if an exception went uncaught."""
    global _HOOKS_PID
    if os.getpid() == _HOOKS_PID:
        return
    first, _HOOKS_PID = _HOOKS_PID is None, os.getpid()
    # a multiprocessing child started by fork ends in os._exit(): atexit never runs there, but
    # multiprocessing's finalizers do (and a forked child clears its parent's: register anew)
    multiprocessing.util.Finalize(None, _finish_all, exitpriority=10)
    if not first:
        return
    previous = sys.excepthook

    def hook(*args: Any) -> None:
        global _UNCAUGHT
        _UNCAUGHT = True
        previous(*args)

    sys.excepthook = hook
    atexit.register(_finish_all)


def _finish_all() -> None:
    for run in list(_LIVE):
        if run._pid == os.getpid():  # a forked child (DataLoader worker) must not finish it
            try:
                run.finish("failed" if _UNCAUGHT else "finished")
            except Exception as err:  # at exit, report and go on with the other runs
                print(f"runcast: could not finish run {run.id}: {err}", file=sys.stderr)
