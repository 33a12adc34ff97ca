"""Forecasting: laws over schedules, schedule-agnostic extrapolators, the Forecast type.

The package imports lightly: ``from runcast.forecast import Forecast`` loads numpy and the type
only, so the steer, report and integration modules can import the types at the top. The
forecasting methods (``forecast``, ``available_methods``) and the loss laws (``fit_law``,
``Law``, ...), which need scipy, load on first use.
"""

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from runcast.forecast._types import Distribution, Forecast

if TYPE_CHECKING:
    from runcast.forecast._api import available_methods, forecast
    from runcast.forecast.laws import (
        GridLaw,
        Law,
        MomentumLaw,
        MultiPowerLaw,
        RuncastLaw,
        fit_law,
        fit_laws,
    )

__all__ = [
    "Distribution",
    "Forecast",
    "GridLaw",
    "Law",
    "MomentumLaw",
    "MultiPowerLaw",
    "RuncastLaw",
    "available_methods",
    "fit_law",
    "fit_laws",
    "forecast",
]

#: the names that load their module on first use (scipy and the methods come with them)
_LAZY = {
    "forecast": "runcast.forecast._api",
    "available_methods": "runcast.forecast._api",
    **{
        name: "runcast.forecast.laws"
        for name in (
            "GridLaw", "Law", "MomentumLaw", "MultiPowerLaw", "RuncastLaw", "fit_law", "fit_laws"
        )
    },
}


class _CallableModule(types.ModuleType):
    """``runcast.forecast`` is both this subpackage and the function users call.

    Importing a subpackage binds it on its parent, so after any ``from runcast.forecast import
    ...`` the name ``runcast.forecast`` is this module, not the function; calling the module
    calls the function, so ``runcast.forecast(curve, until=...)`` works whatever was imported.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Forecast:
        from runcast.forecast._api import forecast as fn

        return fn(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        mod = _LAZY.get(name)
        if mod is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(mod), name)
        # a submodule import may have bound a same-named module here (runcast.forecast.laws
        # binds ``laws``, never these names), so setting the value is safe and makes it fast
        setattr(self, name, value)
        return value


sys.modules[__name__].__class__ = _CallableModule
