"""The run a framework callback records into: one it was given, or one it starts and finishes.

The Hugging Face and Lightning callbacks share this: each starts the run on its main process
(the framework says which) with the framework's own config under the user's ``config``.

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

from collections.abc import Mapping
from typing import Any


class RunOwner:
    """Holds ``run``; starts it with :func:`runcast.init` when none was given.

    Args:
        project, name, db, config: for :func:`runcast.init` (``config`` wins over the
            framework's).
        run: an already started :class:`runcast.Run` to log to instead (never finished here).
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
