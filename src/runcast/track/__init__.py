"""The tracker: ``runcast.init`` starts recording a run, ``run.log`` records metrics.

Example:
    >>> import tempfile, pathlib, runcast
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "runcast.db"
    >>> with runcast.init(project="mnist", config={"lr": 3e-4}, db=db) as run:
    ...     for step in range(100):
    ...         run.log({"loss": 1.0 / (step + 1)})
    >>> len(runcast.open_store(db).curve(run.id, "loss"))
    100
"""

from __future__ import annotations

from runcast.track._run import Run, init

__all__ = ["Run", "init"]
