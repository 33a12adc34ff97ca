"""runcast: forecast and steer neural-network training runs.

Record a run, forecast where it will end (with calibrated uncertainty), ask what another
learning-rate schedule would give, stop sweep trials that will not win, and catch runs that are
about to blow up.

Example:
    >>> import runcast
    >>> c = runcast.Curve([0, 1, 2], [3.0, 2.0, 1.5], name="loss")
    >>> c.name
    'loss'

The namespace holds only what users type; everything is imported lazily so that
``import runcast`` stays fast inside a training script.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from runcast._version import __version__

if TYPE_CHECKING:
    from runcast.curve import Curve
    from runcast.errors import RuncastError, RuncastWarning
    from runcast.forecast import Distribution, Forecast, Law, fit_law, fit_laws, forecast
    from runcast.schedules import Schedule
    from runcast.store import Store, open_store
    from runcast.track import Run, init

_LAZY: dict[str, str] = {
    "Curve": "runcast.curve",
    "Schedule": "runcast.schedules",
    "Forecast": "runcast.forecast",
    "Distribution": "runcast.forecast",
    "Law": "runcast.forecast",
    "fit_law": "runcast.forecast",
    "fit_laws": "runcast.forecast",
    "forecast": "runcast.forecast",
    "init": "runcast.track",
    "Run": "runcast.track",
    "open_store": "runcast.store",
    "Store": "runcast.store",
    "RuncastError": "runcast.errors",
    "RuncastWarning": "runcast.errors",
}

__all__ = [
    "Curve",
    "Distribution",
    "Forecast",
    "Law",
    "Run",
    "RuncastError",
    "RuncastWarning",
    "Schedule",
    "Store",
    "__version__",
    "fit_law",
    "fit_laws",
    "forecast",
    "init",
    "open_store",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runcast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
