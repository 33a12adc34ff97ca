"""The table of forecasting methods, and the registry ``runcast.forecast(method=NAME)`` reads.

:data:`TABLE` is the one place that lists every method: its name, the module that implements
it, whether it needs the run's LR schedule, and a one-line summary. A method is a callable
``fn(curve, until, schedule, **options) -> Forecast`` where ``curve`` is a finite
:class:`~runcast.Curve`, ``until`` the last step to forecast, and ``schedule`` the run's
:class:`~runcast.Schedule` (covering ``until``) or None. Importing a method's module registers
it (:func:`register_method`); ``runcast.forecast`` imports them lazily, on first use.

Two layers sit on this table: a single method (``runcast.forecast._api.run_method``), and on
top of it ``auto``, the fallbacks and the mixtures (``"law+pfn"``, ``"pfn+ensemble"``), which
combine single methods and never call back into the public ``runcast.forecast``.

Example:
    >>> [m.name for m in TABLE if m.needs_schedule]
    ['law', 'law+pfn']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runcast.errors import InvalidInputError

MethodFn = Callable[..., Any]


@dataclass(frozen=True)
class Method:
    """A registered forecasting method and what it needs."""

    name: str
    fn: MethodFn
    needs_schedule: bool
    summary: str


@dataclass(frozen=True)
class MethodSpec:
    """One row of :data:`TABLE`: what a method is, before its module is imported."""

    name: str
    module: str  # the runcast.forecast submodule that implements (and registers) it
    needs_schedule: bool
    summary: str
    composite: bool = False  # built from other methods (layer two)


TABLE: tuple[MethodSpec, ...] = (
    MethodSpec("law", "_known", True,
               "a loss law over the known LR schedule, fitted to the observed part"),
    MethodSpec("ensemble", "_ensemble", False,
               "Bayesian ensemble of Domhan et al.'s parametric families (no schedule needed)"),
    MethodSpec("pfn", "pfn", False,
               "learned amortised forecaster (LC-PFN style transformer trained on a synthetic "
               "prior that includes LR-schedule effects); uses the schedule when given"),
    MethodSpec("last", "_baselines", False, "baseline: the last smoothed value, flat"),
    MethodSpec("powerlaw", "_baselines", False,
               "baseline: least-squares power law c + a t^-alpha"),
    MethodSpec("mcmc", "_baselines", False,
               "baseline: emcee MCMC over the parametric ensemble (slow; needs emcee)"),
    MethodSpec("law+pfn", "_known", True,
               "equal mixture of the law and the schedule-aware PFN (the law alone without PFN)",
               composite=True),
    MethodSpec("pfn+ensemble", "_mixture", False,
               "the blind PFN mixed with the ensemble, the ensemble's share growing with the "
               "observed share of the run (schedule-agnostic)", composite=True),
)  # fmt: skip
SPECS: dict[str, MethodSpec] = {m.name: m for m in TABLE}
METHODS: dict[str, Method] = {}


def register_method(name: str) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn`` as forecasting method ``name``, as :data:`TABLE` describes it."""
    spec = SPECS[name]

    def deco(fn: MethodFn) -> MethodFn:
        METHODS[name] = Method(name, fn, spec.needs_schedule, spec.summary)
        return fn

    return deco


def get_method(name: str) -> Method:
    """The method called ``name``; the error lists the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        known = ", ".join(sorted(METHODS)) or "none registered"
        raise InvalidInputError(
            f"Unknown forecast method {name!r}; use 'auto' or one of: {known}."
        ) from None
