from __future__ import annotations

import numpy as np
import pytest

from runcast import Curve, Schedule
from runcast.errors import FitError
from runcast.forecast import Forecast, forecast
from runcast.forecast._api import RAW_METHODS, resolve_method
from runcast.forecast._calibrate import default_calibration
from runcast.forecast._mixture import BLIND_RAMP, ensemble_share, mixture


def _loss(s: np.ndarray) -> np.ndarray:
    return 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6


def _cut(frac: float, until: int = 10_000) -> Curve:
    s = np.arange(0, int(frac * until) + 1, 25)
    return Curve(s, _loss(s))


def test_mixture_takes_its_share_evenly_from_each_component() -> None:
    a = Forecast([1], np.arange(8.0)[:, None])
    b = Forecast([1], 100.0 + np.arange(8.0)[:, None])
    m = mixture(a, b, 1.0, 0.25, method="a+b")
    # 2 of 8 paths from b, evenly spaced over b's (ordered) paths, not its head
    assert m.samples[:, 0].tolist() == [0.0, 1.0, 2.0, 4.0, 5.0, 6.0, 100.0, 104.0]
    assert m.method == "a+b" and m.info["spread"] == 1.0
    # a share of 0 or 1 is one component, untouched
    assert mixture(a, b, 1.0, 0.0, method="x").samples.tolist() == a.samples.tolist()
    assert mixture(a, b, 1.0, 1.0, method="x").samples.tolist() == b.samples.tolist()
    # the spread scales each component about its own median
    np.testing.assert_allclose(
        np.median(mixture(a, b, 0.0, 0.5, method="x").samples[:4, 0]), np.median(a.samples)
    )


def test_ensemble_share_ramps_up_with_the_observed_share() -> None:
    lo, hi = BLIND_RAMP
    shares = [ensemble_share(f) for f in np.linspace(0.0, 1.0, 101)]
    assert np.all(np.diff(shares) >= 0)
    assert ensemble_share(lo) == 0.0 and ensemble_share(hi) == 0.5 == ensemble_share(0.95)


def test_auto_without_a_schedule_is_the_blind_mixture() -> None:
    f = forecast(_cut(0.6), until=10_000)
    assert resolve_method("auto", None) == "pfn+ensemble" == f.method
    assert f.info["ensemble_share"] == pytest.approx(0.5)


def test_early_on_the_mixture_is_the_pfn_alone() -> None:
    c = _cut(0.2)
    raw = forecast(c, until=10_000, method="pfn+ensemble", calibrate=False)
    pfn = forecast(c, until=10_000, method="pfn", calibrate=False, steps=raw.steps)
    assert raw.info["ensemble_share"] == 0.0 and raw.info["spread"] == 1.0
    np.testing.assert_allclose(raw.samples, pfn.samples)


def test_late_the_median_lies_between_the_components() -> None:
    c = _cut(0.6)
    f = forecast(c, until=10_000, method="pfn+ensemble", noise=False, calibrate=False)
    parts = [
        forecast(c, until=10_000, method=m, noise=False, calibrate=False, steps=f.steps)
        for m in ("pfn", "ensemble")
    ]
    lo, hi = sorted(p.final.median for p in parts)
    # (up to the half of each component's paths the mixture keeps)
    assert lo * 0.998 <= f.final.median <= hi * 1.002
    assert f.final.median != pytest.approx(parts[0].final.median, rel=1e-6)


def test_the_mixture_is_calibrated_as_a_whole() -> None:
    c = _cut(0.6)
    f = forecast(c, until=10_000, method="pfn+ensemble")
    raw = forecast(c, until=10_000, method="pfn+ensemble", calibrate=False)
    frac = f.info["last_observed_step"] / 10_000
    # the shipped "pfn+ensemble" model, from the ensemble's features and its share
    assert f.info["features"]["ens_share"] == f.info["ensemble_share"]
    expect = default_calibration().tau("pfn+ensemble", frac, f.info["features"])
    assert f.info["spread"] == pytest.approx(expect, abs=1e-4) and expect != pytest.approx(1.0)
    width = np.subtract(*f.final.interval(0.8)[::-1])
    raw_width = np.subtract(*raw.final.interval(0.8)[::-1])
    assert (width < raw_width) == (f.info["spread"] < 1.0)


def test_it_does_not_use_a_schedule() -> None:
    sched = Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "total": 10_001})
    c = _cut(0.6)
    with_sched = Curve(c.step, c.value, schedule=sched)
    a = forecast(c, until=10_000, method="pfn+ensemble")
    b = forecast(with_sched, until=10_000, method="pfn+ensemble", schedule=sched)
    np.testing.assert_allclose(a.samples, b.samples)


def test_falls_back_to_the_pfn_when_the_ensemble_cannot_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise FitError("no family converged")

    monkeypatch.setitem(RAW_METHODS, "ensemble", broken)
    f = forecast(_cut(0.6), until=10_000, method="pfn+ensemble")
    assert f.method == "pfn" and np.isfinite(f.samples).all()


def test_an_accuracy_rises_in_the_mixture_too() -> None:
    s = np.arange(0, 6001, 25)
    acc = 0.9 - 0.5 * ((s + 100) / 100.0) ** -0.5
    f = forecast(Curve(s, acc, name="acc"), until=10_000)
    assert (f.method, f.direction, f.info["ensemble_share"]) == ("pfn+ensemble", "up", 0.5)
    assert acc[-1] < f.final.median < 0.9 and f.prob_beats(float(acc[-1])) > 0.5
