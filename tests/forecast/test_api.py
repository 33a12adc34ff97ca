from __future__ import annotations

import warnings

import numpy as np
import pytest

import runcast
from runcast import Curve, Schedule
from runcast.errors import (
    FitError,
    InvalidInputError,
    NotEnoughDataError,
    RuncastWarning,
    ScheduleError,
)
from runcast.forecast import available_methods, forecast
from runcast.forecast._api import resolve_method
from runcast.forecast._registry import METHODS


def _loss(s: np.ndarray) -> np.ndarray:
    return 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6


S = np.arange(0, 3001, 25)


@pytest.mark.parametrize("method", ["ensemble", "last", "powerlaw"])
def test_methods_return_a_forecast_to_until(method: str) -> None:
    f = forecast(Curve(S, _loss(S)), until=10_000, method=method)
    assert f.method == method and int(f.steps[-1]) == 10_000 and f.steps[0] > 3000
    lo, hi = f.final.interval(0.8)
    assert lo <= f.final.median <= hi


def test_runcast_forecast_is_callable_after_importing_the_subpackage() -> None:
    # importing runcast.forecast binds the module on runcast; it must still be callable
    f = runcast.forecast(Curve(S, _loss(S)), until=5000)
    assert f.method == resolve_method("auto", None)


def test_accuracy_rises() -> None:
    acc = 0.9 - 0.5 * ((S + 100) / 100.0) ** -0.5
    f = forecast(Curve(S, acc, name="acc"), until=10_000, method="ensemble")
    # an accuracy keeps rising and P(beat) means above
    assert f.direction == "up" and f.final.median > acc[-1]
    assert f.prob_beats(acc[-1]) > 0.5


def test_any_scale() -> None:
    a = forecast(Curve(S, _loss(S)), until=10_000, method="ensemble", noise=False)
    b = forecast(Curve(S, 1e-6 * _loss(S)), until=10_000, method="ensemble", noise=False)
    # scaling the curve scales the forecast: the fit works in a normalised scale
    assert b.final.median == pytest.approx(1e-6 * a.final.median, rel=1e-6)


def test_specific_steps() -> None:
    f = forecast(Curve(S, _loss(S)), until=10_000, steps=[4000, 10_000])
    assert f.steps.tolist() == [4000, 10_000]


def test_constant_curve_gives_a_flat_forecast_and_a_warning() -> None:
    with pytest.warns(RuncastWarning, match="constant"):
        f = forecast(Curve(S, np.full(S.size, 1.0)), until=5000, method="ensemble")
    assert f.final.interval(0.95) == (1.0, 1.0)


def test_law_needs_a_schedule() -> None:
    with pytest.raises(InvalidInputError, match="needs the run's LR schedule"):
        forecast(Curve(S, _loss(S)), until=5000, method="law")


def test_schedule_shorter_than_until() -> None:
    sched = Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "total": 4000})
    with pytest.raises(ScheduleError, match="covers 4000 steps"):
        forecast(Curve(S, _loss(S)), until=5000, schedule=sched)


def test_a_run_may_log_its_last_step_at_total() -> None:
    # after `total` updates the last loss is often logged at step `total`: a planned schedule
    # holds its last LR there, so forecasting until `total` works; one more step does not
    sched = Schedule.from_spec({"kind": "cosine", "peak": 1e-3, "total": 5000})
    f = forecast(Curve(S, _loss(S)), until=5000, schedule=sched)
    assert f.steps[-1] == 5000
    with pytest.raises(ScheduleError, match="covers 5000 steps"):
        forecast(Curve(S, _loss(S)), until=5001, schedule=sched)


def test_auto_with_a_schedule_runs_the_shipped_choice_for_the_kind_of_curve() -> None:
    from runcast.forecast._api import auto_choice

    spec = {"kind": "cosine", "peak": 1e-3, "end": 1e-4, "warmup": 100, "total": 10_001}
    sched = Schedule.from_spec(spec)
    for name_, kind in (("val_loss", "eval"), ("loss", "train")):
        f = forecast(Curve(S, _loss(S), name=name_), until=10_000, schedule=spec)
        name, used = auto_choice(sched, int(S[-1]) / 10_000, kind)
        assert f.method == name and f.info["auto"] == {"kind": kind, "schedule_used": used}


def test_auto_sends_an_accuracy_with_a_schedule_to_the_pfn() -> None:
    # the laws model a loss; the PFN uses the schedule for an accuracy too
    spec = {"kind": "cosine", "peak": 1e-3, "end": 1e-4, "warmup": 100, "total": 10_001}
    acc = 0.9 - 0.5 * ((S + 100) / 100.0) ** -0.5
    dense = np.arange(1, 3001)  # auto's choice for a training curve with a schedule is a law's
    acc = 0.9 - 0.5 * ((dense + 100) / 100.0) ** -0.5
    f = forecast(Curve(dense, acc, name="train_acc"), until=10_000, schedule=spec)
    assert f.method == ("pfn" if "pfn" in METHODS else "ensemble")
    assert f.direction == "up" and f.info.get("schedule", True)


def _far_wsd() -> tuple[Curve, dict[str, object], int]:
    # twelve points over 55 steps of a positive loss, forecast 100x past them: the law's fit
    # extrapolates the loss below 0 (to about -285 from 271) long before the cooldown
    steps = 5000 + 5 * np.arange(12)
    loss = 255.0 * (1.0 + np.exp(-3.0 * (steps - 5000) / 60.0))
    until = 505_501
    spec = {"kind": "wsd", "peak": 1e-3, "warmup": 0, "total": until + 1, "decay_start": 404_400}
    return Curve(steps, loss), spec, until


def test_a_law_that_takes_a_positive_loss_below_zero_is_an_error() -> None:
    curve, spec, until = _far_wsd()
    with pytest.raises(FitError, match=r"below 0 .* forecast a nearer step"):
        forecast(curve, until, spec, method="law")
    # a nearer step is a forecast again
    near = forecast(curve, 5200, spec, method="law")
    assert near.samples.min() > 0


def test_auto_answers_a_law_below_zero_with_the_pfn_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import runcast.forecast._api as api
    from runcast.forecast._calibrate import Calibration

    # whatever the shipped table names, the law is what this case is about
    monkeypatch.setattr(api, "default_calibration",
                        lambda: Calibration({}, auto={"known": {0.1: "law"}}))  # fmt: skip
    curve, spec, until = _far_wsd()
    if "pfn" not in METHODS:
        with pytest.raises(FitError, match="below 0"):
            forecast(curve, until, spec)
        return
    with pytest.warns(RuncastWarning, match=r"below 0 .* with method='pfn' instead"):
        f = forecast(curve, until, spec)
    assert f.method == "pfn" and f.final.median > 0 and f.samples.min() > 0


def test_auto_with_too_few_points_keeps_the_laws_error() -> None:
    spec = {"kind": "cosine", "peak": 1e-3, "total": 10_001}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuncastWarning)  # and no "instead" fallback on the way
        with pytest.raises(NotEnoughDataError, match="at least"):
            forecast(Curve(S[:3], _loss(S[:3])), until=10_000, schedule=spec)


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match="ensemble"):
        forecast(Curve(S, _loss(S)), until=5000, method="nope")
    assert {"ensemble", "law", "last", "powerlaw", "mcmc"} <= set(available_methods())


def test_noisy_dense_curve_is_fast_and_robust_to_spikes() -> None:
    rng = np.random.default_rng(0)
    s = np.arange(1, 60_001)
    v = _loss(s) + 0.05 * rng.standard_normal(s.size)
    v[rng.choice(s.size, 50, replace=False)] += 20.0  # 50 loss spikes
    f = forecast(Curve(s, v), until=120_000, method="ensemble", noise=False)
    # spikes do not drag the forecast up: within 2% of the truth
    assert f.final.median == pytest.approx(_loss(np.array([120_000]))[0], rel=0.02)
    assert f.info["seconds"] < 0.5


@pytest.mark.parametrize("method", ["ensemble", "powerlaw", "last"])
def test_six_points_from_step_zero(method: str) -> None:
    # the fewest points accepted, the first at step 0 (where a power law is infinite)
    c = Curve([0, 10, 20, 30, 40, 50], [3.0, 2.5, 2.2, 2.0, 1.9, 1.85])
    f = forecast(c, until=10_000, method=method)
    assert np.isfinite(f.samples).all() and f.final.median < 3.0


def test_auto_without_a_schedule_prefers_the_pfn_mixture_when_installed() -> None:
    # the benchmark's verdict: the PFN mixed with the ensemble beats either without a schedule
    assert resolve_method("auto", None) == ("pfn+ensemble" if "pfn" in METHODS else "ensemble")
    assert resolve_method("auto", Schedule.from_spec({"kind": "constant", "peak": 1.0})) == "law"


@pytest.mark.parametrize("method", ["ensemble", "pfn", "pfn+ensemble", "powerlaw", "last"])
def test_calibrate_false_gives_the_raw_bands_for_every_method(method: str) -> None:
    s = np.arange(0, 3001, 25)
    c = runcast.Curve(s, 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6)
    raw = runcast.forecast(c, until=10_000, method=method, calibrate=False)
    cal = runcast.forecast(c, until=10_000, method=method)
    # same method, same centre: calibration only rescales the spread (never an unknown option)
    assert raw.method == cal.method
    assert raw.final.median == pytest.approx(cal.final.median, rel=0.02)
    if method.startswith("pfn"):
        assert raw.info["spread"] == 1.0  # the network's raw spread
    else:
        assert raw.info["tau"] == 1.0  # the method's own discrepancy scale
    # every method records what the calibration model saw (the README points users at it)
    assert cal.info["features"]["log_frac"] == pytest.approx(np.log(3000 / 10_000), abs=0.01)


@pytest.mark.parametrize("n", [3, 4, 5])
def test_every_method_needs_six_points(n: int) -> None:
    # the README's rule for every method: "auto" went on from 4 points with the PFN and at 3
    # said "The pfn forecaster needs at least 4 finite points", naming an internal method
    c = Curve(np.arange(n) * 10, 3.0 / (1.0 + np.arange(n)))
    want = f"^Forecasting needs at least 6 finite points, but the curve has {n}"
    for method in ("auto", "pfn+ensemble", "ensemble"):
        with pytest.raises(NotEnoughDataError, match=want):
            forecast(c, until=100, method=method)


def test_a_forecast_far_past_its_data_warns_once() -> None:
    s = np.arange(0, 3001, 25)
    c = Curve(s, 2.0 + 5.0 * ((s + 100) / 100.0) ** -0.6)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        forecast(c, until=100_000_000_000)
    far = [w for w in said if "steps observed" in str(w.message)]
    # once, though the mixture forecasts with each of its halves inside
    assert len(far) == 1 and "33,322,226x the 3,001 steps observed" in str(far[0].message)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        forecast(c, until=30_000)  # 10x the data: what the calibration covers
    assert not [w for w in said if "steps observed" in str(w.message)]


def test_auto_follows_the_shipped_table_per_kind_and_may_ignore_a_known_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import runcast.forecast._api as api
    from runcast.forecast._calibrate import Calibration

    if "pfn" not in available_methods():  # (which loads the methods)
        pytest.skip("the PFN needs torch")  # CI installs it: RUNCAST_NO_SKIPS fails this
    table = Calibration({}, auto={"known:train": {0.2: "law"}, "known:eval": {0.2: "pfn"},
                                  "blind:eval": {0.2: "ensemble"}})  # fmt: skip
    monkeypatch.setattr(api, "default_calibration", lambda: table)
    spec = {"kind": "cosine", "peak": 1e-3, "end": 1e-5, "total": 10_000}
    sched = Schedule.from_spec(spec)
    dense_steps = np.arange(1, 2001)  # every step: a per-step training loss
    sparse_steps = np.arange(50, 2001, 50)  # an evaluation every 50 steps
    cases = (
        (dense_steps, "", "law", True, "train"),  # unnamed: the logging decides
        (sparse_steps, "", "pfn", False, "eval"),
        (sparse_steps, "loss", "law", True, "train"),  # the HF Trainer's training loss, every 10
        (dense_steps, "eval/loss", "pfn", False, "eval"),  # the name decides
    )
    for steps, metric, want, uses_schedule, kind in cases:
        # the schedule travels on the curve: a blind choice must not let the PFN read it there
        c = Curve(steps, 2.0 + 3.0 * (steps / 50.0) ** -0.4, schedule=sched, name=metric)
        f = forecast(c, until=9_999)
        assert f.method == want
        assert f.info["auto"] == {"kind": kind, "schedule_used": uses_schedule}
        if want == "pfn":
            assert f.info["schedule"] is uses_schedule
    assert resolve_method("auto", None, 0.2) == "ensemble"
    # a kind the table does not hold falls back to the documented defaults
    assert resolve_method("auto", None, 0.2, kind="train") == "pfn+ensemble"


def test_law_plus_pfn_answers_with_the_half_that_can_forecast() -> None:
    # the law takes this far-extrapolated loss below 0: the mixture is the PFN's forecast alone
    curve, spec, until = _far_wsd()
    if "pfn" not in available_methods():
        pytest.skip("the PFN needs torch")  # CI installs it: RUNCAST_NO_SKIPS fails this
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuncastWarning)  # the 100x-past-the-data warning
        f = forecast(curve, until, spec, method="law+pfn")
    assert f.method == "pfn" and f.samples.min() > 0
