"""The fast annealing areas agree with their plain references, and stay fast on long runs."""

from __future__ import annotations

import time

import numpy as np
import pytest

from runcast.forecast.laws._areas import (
    DropTerms,
    forward_area,
    forward_area_reference,
    loss_drop_reference,
    momentum_area,
    momentum_area_grad,
    momentum_area_reference,
)
from runcast.schedules import Schedule

SPECS = {
    "cosine": {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 300, "total": 3000},
    "wsd_exp": {
        "kind": "wsd", "peak": 3e-4, "end": 3e-5, "warmup": 300, "total": 3000,
        "decay_start": 2400, "decay_shape": "exponential",
    },
    "two_stage": {"kind": "two_stage", "peak": 3e-4, "second": 3e-5, "switch": 1500,
                  "warmup": 300, "total": 3000},
    "constant": {"kind": "constant", "peak": 1e-3, "total": 3000},
}  # fmt: skip


def _lrs(name: str) -> np.ndarray:
    return Schedule.from_spec(SPECS[name]).array()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_forward_and_momentum_areas_match_references(name: str) -> None:
    lrs = _lrs(name)
    steps = np.array([0, 1, 299, 1500, 2999])
    # the vectorised cumulative sum is the plain sum of LRs up to and including each step
    np.testing.assert_allclose(forward_area(lrs, steps), forward_area_reference(lrs, steps))
    for lam in (0.9, 0.999):
        for anneal_only in (False, True):
            # the IIR filter is the momentum recursion of Tissue et al., step for step, in both
            # conventions (signed, as the fitted laws; drops only, as the known-schedule path)
            np.testing.assert_allclose(
                momentum_area(lrs, steps, lam, anneal_only=anneal_only),
                momentum_area_reference(lrs, steps, lam, anneal_only=anneal_only),
                rtol=1e-10,
                atol=1e-15,
            )


@pytest.mark.parametrize("name", ["cosine", "wsd_exp", "two_stage"])
def test_momentum_area_gradient_matches_finite_difference(name: str) -> None:
    lrs, steps, lam, h = _lrs(name), np.array([500, 2000, 2999]), 0.99, 1e-7
    fd = (momentum_area(lrs, steps, lam + h) - momentum_area(lrs, steps, lam - h)) / (2 * h)
    grad = momentum_area_grad(lrs, steps, lam)
    # the analytic dS2/dlam feeds the fit's Jacobian: a wrong one stalls the optimiser
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("params", [(2.0, 0.6, 0.6), (0.3, 0.2, 0.9)])
def test_block_loss_drop_matches_exact_reference(
    name: str, params: tuple[float, float, float]
) -> None:
    lrs = _lrs(name)
    steps = np.unique(np.linspace(300, 2999, 60).astype(np.int64))
    exact = loss_drop_reference(lrs, steps, *params)
    fast = DropTerms.build(lrs, steps).value(*params)
    # block aggregation error, scaled by a typical amplitude B = 500: far below 1e-4 of a loss
    assert np.max(np.abs(fast - exact)) * 500 < 1e-4


def test_loss_drop_jacobian_matches_finite_differences() -> None:
    lrs = _lrs("cosine")
    steps = np.arange(400, 3000, 200)
    terms = DropTerms.build(lrs, steps)
    x0 = np.array([2.0, 0.6, 0.6, 0.2])
    _, jac = terms.value_and_grad(*x0)
    assert jac is not None
    for i in range(4):
        h = np.zeros(4)
        h[i] = 1e-5
        fd = (terms.value(*(x0 + h)) - terms.value(*(x0 - h))) / 2e-5
        # float32 storage limits agreement to ~1e-4 relative; the optimiser needs far less
        np.testing.assert_allclose(jac[:, i], fd, rtol=2e-3, atol=1e-6 * np.abs(fd).max())


def test_drop_weighting_by_progress_lowers_late_drops() -> None:
    spec = {"kind": "two_stage", "peak": 1e-3, "second": 1e-4, "switch": 2000, "total": 3000}
    lrs = Schedule.from_spec(spec).array()
    terms = DropTerms.build(lrs, np.array([2999]))
    # delta > 0 weights the fall at S1 = 2 by 2^-0.5 < 1, so the drop shrinks by that factor
    ratio = terms.value(2.0, 0.6, 0.6, 0.5)[0] / terms.value(2.0, 0.6, 0.6, 0.0)[0]
    assert ratio == pytest.approx(2.0**-0.5, rel=1e-3)


def test_hundred_thousand_step_schedule_is_fast() -> None:
    lrs = Schedule.from_spec(
        {"kind": "cosine", "peak": 1e-3, "end": 1e-4, "warmup": 1000, "total": 100_000}
    ).array()
    steps = np.unique(np.linspace(1000, 99_999, 300).astype(np.int64))
    t0 = time.perf_counter()
    terms = DropTerms.build(lrs, steps)
    value = terms.value(2.0, 0.6, 0.6)
    s2 = momentum_area(lrs, steps, 0.999)
    elapsed = time.perf_counter() - t0
    # O(T) / block grid: a 100k-step schedule costs well under a second (naive O(T^2): minutes)
    assert elapsed < 1.5
    # and stays accurate: spot-check against the O(T) reference, with B = 500. The error is
    # largest right at warmup's end (step 1000), where the warmup's rises are still resolving
    idx = np.array([0, 150, 299])
    err = np.abs(value[idx] - loss_drop_reference(lrs, steps[idx], 2.0, 0.6, 0.6)) * 500
    assert err[0] < 1e-3 and err[1:].max() < 1e-4
    assert np.isfinite(s2).all()
