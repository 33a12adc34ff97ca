"""runcast's law: the multi-power law's form, fitted as a strongly regularised MAP estimate.

The plain least-squares optimum of the multi-power law fits its fit curves better than the
paper's published parameters yet predicts other schedules worse: three short curves cannot pin
down the drop's four parameters (``B, C, beta, gamma``), and the optimum overstates what a long,
slow decay gains. runcast makes the regularisation explicit: the multi-power law's own weak
priors made ``PRIOR_SCALE`` times stronger, centred at ``C = 1, beta = 0.45``, both chosen by
cross-validation on fit curves only (the selection tables and what was tried are in
bench/README.md, "Research log: the regularised multi-power law").
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np

from runcast.forecast.laws._base import Param
from runcast.forecast.laws._mpl import MultiPowerLaw

PRIOR_SCALE = 30.0
# where the priors on the drop's shape sit (the multi-power law's own: C 2, beta 0.6)
PRIOR_CENTRES = {"C": 1.0, "beta": 0.45}


class RuncastLaw(MultiPowerLaw):
    """runcast's law: the multi-power law with priors ``PRIOR_SCALE`` times stronger in the fit
    (centred at ``PRIOR_CENTRES`` for the shape of the loss drop).

    Parameters are the multi-power law's: L0, A, alpha, B, C, beta, gamma.

    Example:
        >>> import numpy as np, runcast
        >>> from runcast.forecast.laws import MultiPowerLaw, fit_law
        >>> truth = MultiPowerLaw.published("25M")
        >>> specs = [{"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 2160, "total": 16000},
        ...          {"kind": "constant", "peak": 3e-4, "warmup": 2160, "total": 16000}]
        >>> steps = np.arange(2200, 16000, 250)
        >>> curves = [runcast.Curve(steps, truth.predict(s, steps),
        ...                         schedule=runcast.Schedule.from_spec(s)) for s in specs]
        >>> law = fit_law(curves, "runcast", calibrate=False)
        >>> err = np.abs(law.predict(specs[0], steps) / curves[0].value - 1).max()
        >>> type(law).__name__, bool(err < 2e-3)
        ('RuncastLaw', True)
    """

    name: ClassVar[str] = "runcast"
    summary: ClassVar[str] = "multi-power law form, fitted with strong priors (runcast)"
    PRIOR_SCALE: ClassVar[float] = PRIOR_SCALE
    PARAMS: ClassVar[tuple[Param, ...]] = tuple(
        replace(p, prior=(float(np.log(PRIOR_CENTRES[p.name])), p.prior[1]))
        if p.name in PRIOR_CENTRES and p.prior is not None
        else p
        for p in MultiPowerLaw.PARAMS
    )
