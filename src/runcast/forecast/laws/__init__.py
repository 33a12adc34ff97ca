"""Loss laws over LR schedules: fit one or a few runs, predict the loss of any schedule.

* :class:`MomentumLaw`: the scaling law with LR annealing (Tissue et al. 2024);
* :class:`MultiPowerLaw`: the multi-power law (Luo et al. 2025);
* :class:`GridLaw`: the momentum law as ``forecast(method="law")`` fits it, in closed form on a
  grid of its exponent and decay (LR drops only count as annealing);
* :class:`RuncastLaw`: runcast's own law, the default of ``fit_law(..., law="auto")``: the
  multi-power law's form, fitted with strong priors (a regularised MAP fit).

:func:`fit_law` fits one law to one or several curves; :func:`fit_laws` fits one law per group
(e.g. per model size) jointly, sharing the shape of the LR response across groups.

Example:
    >>> from runcast.forecast.laws import MultiPowerLaw
    >>> law = MultiPowerLaw.published("25M")
    >>> sorted(law.params)[:3]
    ['A', 'B', 'C']
"""

from runcast.forecast.laws._base import LAWS, Law, Param
from runcast.forecast.laws._fit import fit_law
from runcast.forecast.laws._grid import GridLaw
from runcast.forecast.laws._joint import fit_laws
from runcast.forecast.laws._momentum import MomentumLaw
from runcast.forecast.laws._mpl import MultiPowerLaw
from runcast.forecast.laws._runcast import RuncastLaw

__all__ = [
    "LAWS",
    "GridLaw",
    "Law",
    "MomentumLaw",
    "MultiPowerLaw",
    "Param",
    "RuncastLaw",
    "fit_law",
    "fit_laws",
]
