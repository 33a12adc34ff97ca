"""Checking what ``runcast.init`` gets, before anything is written to the store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from runcast.errors import InvalidInputError


def file_id(path: Path) -> tuple[int, int] | None:
    """Which file ``path`` is now (device, inode), or None if there is none.

    Example:
        >>> file_id(Path("/no/such/file")) is None
        True
    """
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def short(value: object) -> str:
    """``repr(value)``, cut to 60 characters for an error message.

    Example:
        >>> short("x" * 100)[-5:]
        'x...'
    """
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def check_init(
    project: object, name: object, config: object, resume: object, flush_every: object
) -> None:
    """Refuse init's bad arguments up front, before a run is created in the store.

    Example:
        >>> check_init("p", None, {"lr": 0.1}, None, 1.0)
    """
    for arg, value in (("project", project), ("name", name), ("resume", resume)):
        if not (isinstance(value, str) or (value is None and arg != "project")):
            raise InvalidInputError(
                f"runcast.init got {arg}={short(value)} ({type(value).__name__}); "
                f"{arg} must be a string."
            )
    if config is not None and not isinstance(config, Mapping):
        raise InvalidInputError(
            f"runcast.init got config={short(config)} ({type(config).__name__}); config must "
            "be a dict of hyper-parameters, like config={'lr': 3e-4}."
        )
    if (
        isinstance(flush_every, bool)
        or not isinstance(flush_every, int | float)
        or not 0 < flush_every < float("inf")
    ):
        raise InvalidInputError(
            f"flush_every must be a positive number of seconds, but got {flush_every=}."
        )
