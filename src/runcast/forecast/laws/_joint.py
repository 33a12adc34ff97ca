"""fit_laws: fit one law per group of curves (e.g. per model size), sharing what few curves cannot
pin down.

A few short runs of one model size determine its loss level and power-law descent (``L0, A,
alpha``) and the size of its annealing gain (``B``) well, but not the *shape* of the LR response
(the multi-power law's ``C, beta, gamma``): these trade off against each other and an exact fit
of three short curves moves them wherever they fit noise best. Across model sizes the shape is
nearly the same (the multi-power law paper's published fits: ``C`` 2.0-2.1, ``beta`` 0.58-0.60,
``gamma`` 0.63-0.66 from 25M to 400M), so users who have runs of several sizes can fit the shape
once from all of them and the rest per size.

Two ways to pool (``pooling=``):

* ``"prior"`` (default): each group is fitted alone, with runcast's law's priors on the shared
  parameters centred where the joint fit of the *other* groups puts them (empirical Bayes:
  leave-one-group-out priors). A group's own curves can still move them.
* ``"shared"``: one Huber least-squares problem on log losses over every group's curves, with a
  parameter vector that holds each shared parameter once and every other one once per group.
  The law's priors apply once per parameter slot, with runcast's law's strength.

How the defaults were chosen, by cross-validation on the multi-power law benchmark's three *fit*
curves of each of 25M, 100M, 400M only (leave one curve out of every size and predict it; fit all
three cut at step 12000 and predict the rest; mean relative error over sizes, LOCO / horizon):
one law per size 0.00125 / 0.00109; ``"shared"`` ``C, beta, gamma`` 0.00116 / 0.00098 (priors
x0.3: 0.00135 / 0.00098; x3: 0.00123 / 0.00096; shared priors weighed once per group: 0.00111 /
0.00101; ``alpha`` shared too: 0.00129 / 0.00107, as it falls with model size); ``"prior"``
0.00112 / 0.00092 (prior widths x0.5: 0.00111 / 0.00092; x0.25: 0.00110 / 0.00107). With
runcast's law's priors later centred at ``C 1, beta 0.45`` (see ``_runcast``): per size 0.00105
/ 0.00087, ``"shared"`` 0.00106 / 0.00092, ``"prior"`` 0.00104 / 0.00080 (worst LOCO error per
size 0.0101 / 0.0044 / 0.0042 vs 0.0104 / 0.0043 / 0.0048 per size).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from runcast.curve import Curve
from runcast.errors import FitError, InvalidInputError, NotEnoughDataError
from runcast.forecast.laws._areas import FloatArray
from runcast.forecast.laws._base import DEFAULT_MODEL_ERROR, LAWS, Law, check_fit, lr_grid
from runcast.forecast.laws._data import FitCurve, prepare_curves
from runcast.forecast.laws._fit import _fit_law, best_of_starts, check_options, fit_law, law_name

# What the multi-power form's laws share by default: the shape of the response to an LR drop.
DEFAULT_SHARED: dict[str, tuple[str, ...]] = {
    "mpl": ("C", "beta", "gamma"),
    "runcast": ("C", "beta", "gamma"),
    "momentum": ("lam",),
}


@dataclass(frozen=True)
class Layout:
    """Where each group's parameters sit in the joint vector: ``index[g][j]``."""

    index: tuple[tuple[int, ...], ...]
    size: int

    @classmethod
    def build(cls, law: type[Law], n_groups: int, shared: Sequence[str]) -> Layout:
        """Shared parameters first (one slot each), then each group's own.

        Example:
            >>> from runcast.forecast.laws import MultiPowerLaw
            >>> lay = Layout.build(MultiPowerLaw, 2, ("C", "beta", "gamma"))
            >>> lay.size, lay.index[1]
            (11, (7, 8, 9, 10, 0, 1, 2))
        """
        names = [p.name for p in law.PARAMS]
        slot = {n: i for i, n in enumerate(n for n in names if n in shared)}
        nxt = len(slot)
        index = []
        for _ in range(n_groups):
            row = []
            for n in names:
                if n in slot:
                    row.append(slot[n])
                else:
                    row.append(nxt)
                    nxt += 1
            index.append(tuple(row))
        return cls(tuple(index), nxt)


def _joint_problem(
    law: type[Law], groups: Sequence[Sequence[FitCurve]], lay: Layout, delta: float, prior: float
) -> tuple[Any, Any, FloatArray]:
    params = law.PARAMS
    preps = [[law._prepare(c.lrs, c.steps) for c in g] for g in groups]
    log_y = [np.log(np.concatenate([c.losses for c in g])) for g in groups]
    # one prior residual per slot: a shared parameter is pulled once, not once per group
    pri: dict[int, tuple[float, float]] = {}
    for g, data in enumerate(groups):
        losses = np.concatenate([c.losses for c in data])
        peak = max(float(c.lrs.max()) for c in data)
        own = {p.name: p.prior for p in params if p.prior is not None}
        own.update(law._data_priors(losses, peak))
        for j, p in enumerate(params):
            if p.name in own and lay.index[g][j] not in pri:
                prior_p = own[p.name]
                assert prior_p is not None
                pri[lay.index[g][j]] = prior_p
    slots = sorted(pri)
    w = prior * law.PRIOR_SCALE * delta
    jp = np.zeros((len(slots), lay.size))
    for row, s in enumerate(slots):
        jp[row, s] = w / pri[s][1]
    n_res = sum(y.size for y in log_y)
    cache: dict[str, FloatArray] = {}

    def fun(z: FloatArray) -> FloatArray:
        res = np.empty(n_res + len(slots))
        jac = np.zeros((n_res, lay.size))
        at = 0
        for g, gp in enumerate(preps):
            zg = z[list(lay.index[g])]
            theta = np.array([p.from_z(float(v)) for p, v in zip(params, zg, strict=True)])
            dxdz = np.array([p.dx_dz(float(x)) for p, x in zip(params, theta, strict=True)])
            for prep in gp:
                pred, j = law._evaluate(theta, prep, True)
                assert j is not None
                safe = np.maximum(pred, 1e-12)
                n = safe.size
                # rows of group g fill its own slots and the shared ones (distinct within a group)
                jac[at : at + n, list(lay.index[g])] = -(j * dxdz) / safe[:, None]
                res[at : at + n] = -np.log(safe)
                at += n
        res[:n_res] += np.concatenate(log_y)
        res[n_res:] = [w * (z[s] - pri[s][0]) / pri[s][1] for s in slots]
        cache["z"], cache["jac"] = z.copy(), np.vstack([jac, jp])
        return res

    def jac(z: FloatArray) -> FloatArray:
        if "z" not in cache or not np.array_equal(cache["z"], z):
            fun(z)
        return cache["jac"]

    return fun, jac, np.concatenate(log_y)


def _solve(
    law: type[Law],
    groups: Sequence[Sequence[FitCurve]],
    lay: Layout,
    starts: Sequence[FloatArray],
    delta: float,
    prior: float,
    max_nfev: int,
) -> Any:
    fun, jac, log_y = _joint_problem(law, groups, lay, delta, prior)
    lo1, hi1 = np.array([p.z_bounds() for p in law.PARAMS]).T
    lo, hi = np.empty(lay.size), np.empty(lay.size)
    for row in lay.index:
        lo[list(row)], hi[list(row)] = lo1, hi1
    best = best_of_starts(fun, jac, starts, lo, hi, delta=delta, max_nfev=max_nfev)
    if best is None:
        raise FitError(
            f"The joint {law.name} fit failed from all {len(starts)} starts. Fit each group "
            "alone with fit_law to find the curve that does not follow the law."
        )
    check_fit(float(best.cost), log_y.size)
    return best


def _theta_of(law: type[Law], z: FloatArray, lay: Layout, g: int) -> FloatArray:
    zg = z[list(lay.index[g])]
    return np.array([p.from_z(float(v)) for p, v in zip(law.PARAMS, zg, strict=True)])


def _group_starts(
    law: type[Law], singles: Sequence[Law], lay: Layout, shared: Sequence[str]
) -> FloatArray:
    """A joint start from per-group fits: own parameters as fitted, shared ones at their median
    in fitting space (a robust middle of the groups' guesses)."""
    z = np.empty(lay.size)
    for g, single in enumerate(singles):
        for j, p in enumerate(law.PARAMS):
            z[lay.index[g][j]] = p.to_z(single.params[p.name])
    for j, p in enumerate(law.PARAMS):
        if p.name in shared:
            z[lay.index[0][j]] = float(np.median([p.to_z(s.params[p.name]) for s in singles]))
    return z


def fit_laws(
    groups: Mapping[str, Curve | Sequence[Curve]],
    law: str = "auto",
    *,
    shared: Sequence[str] | None = None,
    pooling: str = "prior",
    seed: int = 0,
    huber_delta: float = 1e-3,
    prior_strength: float = 1.0,
    max_points: int = 256,
    calibrate: bool = True,
) -> dict[str, Law]:
    """Fit one law per group of curves jointly, sharing the ``shared`` parameters.

    Use it when you have runs of several model sizes (or datasets, ...): ``groups`` maps a name
    (e.g. ``"25M"``) to that group's curves, each with its schedule. Parameters in ``shared``
    are pooled across groups (by default through priors centred on the other groups' fit, see
    ``pooling``); the others are fitted per group. With one group it is :func:`fit_law`.

    Args:
        groups: group name -> a Curve or a list of Curves (as for :func:`fit_law`).
        law: ``"auto"`` (runcast's law), ``"runcast"``, ``"mpl"`` or ``"momentum"``.
        shared: names of the parameters all groups share; default: the shape of the LR
            response (``C, beta, gamma`` for the multi-power laws, ``lam`` for the momentum law).
        pooling: ``"prior"``: each group is fitted alone, but with its priors on the
            ``shared`` parameters centred where the *other* groups' joint fit puts them (a
            group's own curves can still move them); ``"shared"``: the ``shared`` parameters
            take one value, fitted from every group's curves at once.
        seed: seeds the per-group fits that start the joint one.
        huber_delta: the Huber loss's scale on log-loss residuals (relative error).
        prior_strength: weight of the law's priors (see :func:`fit_law`).
        max_points: curves longer than this are reduced to means of equal step bins.
        calibrate: refit leaving each curve position out to calibrate every group's bands.

    Returns:
        ``{group name: Law}``; each law predicts and forecasts on its own, and its ``info``
        names the groups and parameters it was fitted with.

    Example:
        >>> import numpy as np, runcast
        >>> from runcast.forecast.laws import MultiPowerLaw
        >>> specs = [{"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 2160, "total": 16000},
        ...          {"kind": "constant", "peak": 3e-4, "warmup": 2160, "total": 16000}]
        >>> steps = np.arange(2200, 16000, 400)
        >>> def runs(size):
        ...     truth = MultiPowerLaw.published(size)
        ...     return [runcast.Curve(steps, truth.predict(s, steps),
        ...                           schedule=runcast.Schedule.from_spec(s)) for s in specs]
        >>> groups = {"25M": runs("25M"), "400M": runs("400M")}
        >>> laws = fit_laws(groups, pooling="shared", calibrate=False)
        >>> laws["25M"].params["beta"] == laws["400M"].params["beta"]  # one shared shape
        True
        >>> laws = fit_laws(groups, calibrate=False)  # "prior": the 25M fit centres 400M's
        >>> err = np.abs(laws["400M"].predict(specs[0], steps) / runs("400M")[0].value - 1)
        >>> bool(err.max() < 3e-3)
        True
    """
    name = law_name(law)
    cls = LAWS[name]
    if not isinstance(groups, Mapping) or not groups:
        raise InvalidInputError(
            "fit_laws needs a dict of group name -> curves, e.g. {'25M': [c1, c2], '100M': [...]}."
        )
    names = [p.name for p in cls.PARAMS]
    share = tuple(DEFAULT_SHARED.get(name, ()) if shared is None else shared)
    unknown = [s for s in share if s not in names]
    if unknown:
        raise InvalidInputError(
            f"shared={list(share)} names {unknown}, not parameters of the {name} law; "
            f"choose among {names}."
        )
    check_options(huber_delta=huber_delta, prior_strength=prior_strength, max_points=max_points)
    if pooling not in ("shared", "prior"):
        raise InvalidInputError(f"pooling must be 'shared' or 'prior', but got {pooling=}.")
    t0 = time.perf_counter()
    keys = list(groups)
    data = [prepare_curves(groups[k], max_points=max_points, min_step=None) for k in keys]
    for key, grp in zip(keys, data, strict=True):
        n = sum(c.steps.size for c in grp)
        if n < len(names) - len(share) + 3:
            raise NotEnoughDataError(
                f"Group {key!r} has {n} points after warmup; the {name} law needs at least "
                f"{len(names) - len(share) + 3} per group. Log the loss more often."
            )
    singles = [
        fit_law(groups[k], name, seed=seed, huber_delta=huber_delta,
                prior_strength=prior_strength, max_points=max_points, calibrate=False)
        for k in keys
    ]  # fmt: skip
    if pooling == "prior" and len(keys) > 1:
        laws = {}
        for g, key in enumerate(keys):
            rest = [j for j in range(len(keys)) if j != g]
            if len(rest) == 1:
                centre = singles[rest[0]].params
            else:
                sub = [data[j] for j in rest]
                lay = Layout.build(cls, len(rest), share)
                start = _group_starts(cls, [singles[j] for j in rest], lay, share)
                best = _solve(cls, sub, lay, [start], huber_delta, prior_strength, 300)
                centre = dict(zip(names, _theta_of(cls, best.x, lay, 0), strict=True))
            centres = {n: centre[n] for n in share}
            law_g = _fit_law(
                centred(cls, centres), groups[key], seed=seed, restarts=None, fast=False,
                huber_delta=huber_delta, prior_strength=prior_strength, max_points=max_points,
                min_step=None, calibrate=calibrate,
            )  # fmt: skip
            law_g.info.update(
                group=key, groups=list(keys), shared=list(share), pooling="prior",
                prior_centres=centres, fit_seconds=time.perf_counter() - t0,
            )  # fmt: skip
            laws[key] = law_g
        return laws
    lay = Layout.build(cls, len(keys), share)
    start = _group_starts(cls, singles, lay, share)
    best = _solve(cls, data, lay, [start], huber_delta, prior_strength, 300)
    errors = _held_out(cls, data, lay, best.x, huber_delta, prior_strength) if calibrate else None
    return _laws_of(cls, keys, data, lay, best, share, errors, time.perf_counter() - t0)


def centred(law: type[Law], centres: Mapping[str, float]) -> type[Law]:
    """A variant of ``law`` whose priors on ``centres``' parameters sit at the given values
    (their widths unchanged); it fits like ``law`` and its fits return a ``law``.

    Example:
        >>> from runcast.forecast.laws import RuncastLaw
        >>> var = centred(RuncastLaw, {"gamma": 0.5})
        >>> [p.prior for p in var.PARAMS if p.name == "gamma"], var.name
        ([(0.5, 0.3)], 'runcast')
    """
    params = []
    for p in law.PARAMS:
        if p.name in centres:
            sd = p.prior[1] if p.prior is not None else 1.0
            p = replace(p, prior=(p.to_z(float(centres[p.name])), sd))
        params.append(p)
    # no ``name`` of its own: the variant stays out of the LAWS registry (see Law)
    return type(f"Centred{law.__name__}", (law,), {"PARAMS": tuple(params)})


def _held_out(
    law: type[Law],
    data: Sequence[Sequence[FitCurve]],
    lay: Layout,
    z: FloatArray,
    delta: float,
    prior: float,
) -> list[list[float]]:
    """Each group's RMS log error on its curves left out: the i-th curve of every group (that
    has more than one) is dropped at once and the joint law refitted from the optimum."""
    out: list[list[float]] = [[] for _ in data]
    for i in range(max(len(g) for g in data)):
        rest = [[c for j, c in enumerate(g) if j != i] if len(g) > 1 else list(g) for g in data]
        res = _solve(law, rest, lay, [z], delta, prior, 30)
        for g, group in enumerate(data):
            if len(group) < 2 or i >= len(group):
                continue
            held = group[i]
            theta = _theta_of(law, res.x, lay, g)
            pred = law._evaluate(theta, law._prepare(held.lrs, held.steps), False)[0]
            err = np.log(held.losses) - np.log(np.maximum(pred, 1e-12))
            out[g].append(float(np.sqrt(np.mean(err**2))))
    return out


def _laws_of(
    law: type[Law],
    keys: Sequence[str],
    data: Sequence[Sequence[FitCurve]],
    lay: Layout,
    best: Any,
    shared: Sequence[str],
    errors: list[list[float]] | None,
    seconds: float,
) -> dict[str, Law]:
    """One law per group from the joint optimum: its parameters, their (marginal) covariance
    from the joint Laplace approximation, its own residual noise and held-out error."""
    n_res = sum(c.steps.size for g in data for c in g)
    r_all = best.fun[:n_res]
    s2 = max(float(np.sum(r_all**2)) / max(n_res - lay.size, 1), 1e-12)
    cov_all = s2 * np.linalg.pinv(best.jac.T @ best.jac, rcond=1e-12)
    out: dict[str, Law] = {}
    at = 0
    for g, key in enumerate(keys):
        n = sum(c.steps.size for c in data[g])
        r = r_all[at : at + n]
        at += n
        noise = float(1.4826 * np.median(np.abs(r - np.median(r))))
        idx = list(lay.index[g])
        # the joint s2 pools every group's residuals; a noisier group keeps its own, larger one
        cov = cov_all[np.ix_(idx, idx)] * max(1.0, noise**2 / s2)
        s1 = np.concatenate([c.s1 for c in data[g]])
        info: dict[str, Any] = {
            "n_points": n,
            "curves": [c.name for c in data[g]],
            "s1_max": float(s1.max()),
            "fit_lr": [lr_grid(c.planned, c.planned.size - 1) for c in data[g]],
            "last_step": int(max(c.steps[-1] for c in data[g])),
            "nfev": int(best.nfev),
            "rms_rel_error": float(np.sqrt(np.mean(r**2))),
            "group": key,
            "groups": list(keys),
            "shared": list(shared),
            "pooling": "shared",
            "fit_seconds": seconds,
        }
        model_error = DEFAULT_MODEL_ERROR
        if errors is not None and errors[g]:
            model_error = float(np.sqrt(np.mean(np.square(errors[g]))))
            info["held_out_rms"] = errors[g]
        theta = _theta_of(law, best.x, lay, g)
        out[key] = law(
            dict(zip([p.name for p in law.PARAMS], theta, strict=True)),
            cov=0.5 * (cov + cov.T),
            noise=noise,
            model_error=max(model_error, noise),
            info=info,
        )
    return out
