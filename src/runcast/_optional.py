"""Guarded imports of optional dependencies: the error names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from runcast.errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``runcast[extra]``.

    Example:
        >>> np = require("numpy", extra="core")
        >>> np.__name__
        'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        what = f" {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{module!r} is needed{what} but is not installed. "
            f'Install it with: pip install "runcast[{extra}]"'
        ) from err
