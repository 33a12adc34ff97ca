"""Mixtures of two forecasts, calibrated as a whole: methods ``"law+pfn"`` and ``"pfn+ensemble"``.

Two forecasters that err in different places make a mixture more robust than either. Mixing two
*calibrated* forecasts over-covers (two bands whose medians differ make a wider one), so each
mixture mixes the components' raw paths and has a calibration factor of its own, which scales
each component's spread about its own median.

``"pfn+ensemble"`` is what ``runcast.forecast`` uses without a schedule. The learned PFN knows
from its prior how curves usually go on, which is what an early forecast needs; the parametric
ensemble follows the observed shape, which is what a late one needs (a PFN that sees a curve
bend sharply late in its observed part, as when an LR drop it was not told of begins, can
extrapolate the bend too far). So the ensemble's share of the paths grows with the observed
share of the run: none until 30% (:data:`BLIND_RAMP`), half from 50% on, linearly between
(chosen by nested leave-one-group-out cross-validation: ``bench/README.md``, "Session 5").

Example:
    >>> import numpy as np, runcast
    >>> s = np.arange(0, 6001, 50)
    >>> c = runcast.Curve(s, 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6)
    >>> f = runcast.forecast(c, until=10_000, method="pfn+ensemble")
    >>> f.method, f.info["ensemble_share"]
    ('pfn+ensemble', 0.5)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runcast.curve import Curve
from runcast.errors import RuncastError
from runcast.forecast._calibrate import positive_warp
from runcast.forecast._types import Forecast
from runcast.schedules import Schedule

#: the observed shares of the run between which the ensemble's share of the blind mixture grows
#: from 0 to :data:`BLIND_LATE_SHARE`
BLIND_RAMP = (0.3, 0.5)
BLIND_LATE_SHARE = 0.5


def mixture(
    first: Forecast,
    second: Forecast,
    spread: float = 1.0,
    second_share: float = 0.5,
    *,
    method: str,
    info: dict[str, Any] | None = None,
) -> Forecast:
    """A mixture of two forecasts of the same steps, each one's spread scaled by ``spread``.

    Each component's paths are pulled toward (``spread < 1``) or pushed from its own per-step
    median, then ``second_share`` of the mixture's paths are taken from ``second`` and the rest
    from ``first``, evenly spaced over each one's paths: the PFN's quantile-coupled paths are
    ordered by level, so a head slice would keep only its lower part.

    Example:
        >>> a = Forecast([1, 2], np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]))
        >>> b = Forecast([1, 2], np.array([[5.0, 5.0], [6.0, 6.0], [7.0, 7.0], [8.0, 8.0]]))
        >>> mixture(a, b, 0.5, method="a+b").samples[:, 0].tolist()
        [1.75, 2.75, 5.75, 6.75]
        >>> mixture(a, b, 1.0, 0.25, method="a+b").samples[:, 0].tolist()
        [1.0, 2.0, 3.0, 5.0]
    """
    n = first.samples.shape[0]
    k = round(min(max(second_share, 0.0), 1.0) * n)
    parts = []
    for f, m in ((first, n - k), (second, k)):
        if m == 0:
            continue
        rows = np.arange(m) * f.samples.shape[0] // m
        med = np.median(f.samples, axis=0)
        part = med + spread * (f.samples[rows] - med)
        if spread > 1.0 and f.direction == "down" and f.samples.min() > 0:
            part = positive_warp(part, med)  # widened paths of a positive loss stay positive
        parts.append(part)
    out_info = dict(info or {})
    out_info["spread"] = round(float(spread), 4)
    samples = np.vstack(parts)
    return Forecast(first.steps, samples, direction=first.direction, method=method, info=out_info)


def ensemble_share(fraction: float) -> float:
    """The ensemble's share of ``"pfn+ensemble"``'s paths when ``fraction`` of the run is observed.

    Example:
        >>> [round(ensemble_share(f), 3) for f in (0.1, 0.3, 0.4, 0.5, 0.9)]
        [0.0, 0.0, 0.25, 0.5, 0.5]
    """
    lo, hi = BLIND_RAMP
    return float(BLIND_LATE_SHARE * np.clip((fraction - lo) / (hi - lo), 0.0, 1.0))


def blind_inputs(ens: Forecast) -> tuple[float, float, dict[str, float]]:
    """The observed share of the run, the ensemble's share of ``"pfn+ensemble"`` and what its
    calibration sees, from the ensemble's raw forecast (the features it records, plus
    ``ens_share``).

    Example:
        >>> import numpy as np
        >>> f = Forecast([600, 1000], np.ones((4, 2)), info={"last_observed_step": 500})
        >>> blind_inputs(f)
        (0.5, 0.5, {'ens_share': 0.5})
    """
    fraction = float(ens.info["last_observed_step"]) / float(ens.steps[-1])
    share = ensemble_share(fraction)
    return fraction, share, {**ens.info.get("features", {}), "ens_share": share}


def forecast_pfn_ensemble(
    curve: Curve, until: int, schedule: Schedule | None, **opts: Any
) -> Forecast:
    """Method ``"pfn+ensemble"``: the blind PFN and the parametric ensemble, mixed and calibrated.

    Schedule-agnostic by design: a schedule (argument or ``curve.schedule``) is not used; with
    one, ``"law"`` or ``"law+pfn"`` forecast better. The ensemble takes
    :func:`ensemble_share` of the paths. The mixture of the two raw forecasts is calibrated as a
    whole by the ``"pfn+ensemble"`` model, from the ensemble's features and its share
    (``calibrate=False``: the raw mixture). When one of the two cannot forecast the curve (too
    few points, a fit that takes a positive loss below 0), the other's own calibrated forecast
    is returned (its ``method`` says which).
    """
    from runcast.forecast._api import run_method
    from runcast.forecast._calibrate import default_calibration

    del schedule  # blind: see the docstring
    blind = curve if curve.schedule is None else Curve(curve.step, curve.value, name=curve.name)
    calibrate = bool(opts.pop("calibrate", True))
    try:
        ens = run_method("ensemble", blind, until, None, calibrate=False, **opts)
    except RuncastError:
        return run_method("pfn", blind, until, None, calibrate=calibrate, **opts)
    opts = {**opts, "steps": ens.steps}
    try:
        pfn = run_method("pfn", blind, until, None, calibrate=False, **opts)
    except RuncastError:
        return run_method("ensemble", blind, until, None, calibrate=calibrate, **opts)
    frac, share, feats = blind_inputs(ens)
    spread = default_calibration().tau("pfn+ensemble", frac, feats) if calibrate else 1.0
    info: dict[str, Any] = {
        "ensemble": ens.info,
        "pfn": {k: v for k, v in pfn.info.items() if k != "quantiles"},
        "ensemble_share": share,
        "features": feats,
        "last_observed_step": ens.info["last_observed_step"],
    }
    return mixture(pfn, ens, spread, share, method="pfn+ensemble", info=info)
