"""Forecasting: laws over schedules, schedule-agnostic extrapolators, the Forecast type."""

import sys
import types
from typing import Any

from runcast.forecast._api import available_methods, forecast
from runcast.forecast._types import Distribution, Forecast

__all__ = ["Distribution", "Forecast", "available_methods", "forecast"]

# loss laws over LR schedules (runcast.forecast.laws)
from runcast.forecast.laws import Law, MomentumLaw, MultiPowerLaw, RuncastLaw, fit_law, fit_laws

__all__ += ["Law", "MomentumLaw", "MultiPowerLaw", "RuncastLaw", "fit_law", "fit_laws"]


class _CallableModule(types.ModuleType):
    """``runcast.forecast`` is both this subpackage and the function users call.

    Importing a subpackage binds it on its parent, so after any ``from runcast.forecast import
    ...`` the name ``runcast.forecast`` is this module, not the function; calling the module
    calls the function, so ``runcast.forecast(curve, until=...)`` works whatever was imported.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Forecast:
        return forecast(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
