"""Schedule what-ifs: the alternatives match the run's schedule, and a real law fit predicts."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from runcast import Curve, Schedule
from runcast.errors import InvalidInputError
from runcast.report import alternative_schedules, whatif_data

SPECS = [
    {"kind": "wsd", "peak": 1e-3, "end": 1e-5, "warmup": 20, "total": 400, "decay_fraction": 0.2},
    {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 0, "total": 400},
    {"kind": "constant", "peak": 1e-3, "warmup": 10, "total": 400},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["kind"])
def test_alternatives_share_length_peak_warmup_and_end(spec: dict[str, Any]) -> None:
    own = Schedule.from_spec(spec).array(400)
    alts = alternative_schedules(Schedule.from_spec(spec), 400)
    assert set(alts) == {"cosine", "constant", "wsd 10% decay", "wsd 20% decay", "wsd 40% decay"}
    # a constant run is compared with schedules that anneal to 1% of its peak
    end = spec.get("end", 0.01 * spec["peak"])
    for name, alt in alts.items():
        lrs = alt.array(400)
        # same peak, same warmup ramp (identical first steps)
        assert lrs.max() == pytest.approx(own.max()), name
        np.testing.assert_allclose(lrs[: spec["warmup"]], own[: spec["warmup"]], err_msg=name)
        if name != "constant":
            assert alt.to_spec()["end"] == pytest.approx(end), name
    # the WSD variants start decaying at 90%, 80% and 60% of the run
    assert alts["wsd 40% decay"].array(400)[239] == pytest.approx(own.max())
    assert alts["wsd 40% decay"].array(400)[241] < own.max()


def test_alternatives_need_a_real_schedule() -> None:
    with pytest.raises(InvalidInputError, match="at least 10 steps"):
        alternative_schedules(Schedule.from_spec(SPECS[0]), 5)
    with pytest.raises(InvalidInputError, match="zero everywhere"):
        alternative_schedules(Schedule.from_array(np.zeros(50)), 50)


def test_alternatives_of_a_recorded_lr_read_warmup_and_end_off_the_array() -> None:
    spec = SPECS[0]
    recorded = Schedule.from_array(Schedule.from_spec(spec).array(400))
    alts = alternative_schedules(recorded, 400)
    # warmup 20 recovered from the ramp; the end is the last recorded LR
    assert alts["cosine"].to_spec()["warmup"] == 20
    assert alts["cosine"].to_spec()["end"] == pytest.approx(recorded.array(400)[-1])


@pytest.mark.slow
def test_whatif_fits_a_law_and_predicts_the_run_itself(recorder: Any, wsd_spec: Any) -> None:
    sched = Schedule.from_spec(wsd_spec)
    lrs = sched.array()
    area = np.cumsum(lrs) / lrs.max()
    loss = 1.5 + 2.0 * (1 + area) ** -0.5 - 0.15 * (lrs.max() - lrs) / lrs.max()
    curve = Curve(np.arange(400), loss, name="loss")
    w = whatif_data(curve, sched, 400, n_points=50)
    names = [s.name for s in w.scenarios]
    # the run's own schedule is first; "wsd 20% decay" is the run's own schedule, so dropped
    assert names[0] == "this run" and w.scenarios[0].is_actual
    assert "wsd 20% decay" not in names and len(names) == 5
    own = w.scenarios[0]
    # the law fitted on the whole run reproduces its end within 1%
    assert own.final == pytest.approx(loss[-1], rel=0.01)
    assert own.step[-1] == 399 and len(own.step) == 50
    # the cooldown is what this loss rewards: the constant schedule must end highest
    const = next(s for s in w.scenarios if s.name == "constant")
    assert const.final > own.final
    assert w.best().final == min(s.final for s in w.scenarios)


def test_whatif_needs_points() -> None:
    sched = Schedule.from_spec(SPECS[0])
    with pytest.raises(InvalidInputError, match="at least 10 observed points"):
        whatif_data(Curve([0, 1, 2], [3.0, 2.0, 1.0], name="loss"), sched, 400)


def test_an_alternative_the_law_takes_below_zero_is_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a law with a huge annealing gain: fine on the run's own constant LR, below 0 under any
    # decay. The what-if keeps the run and the constant alternatives and names the dropped ones
    # (before, law.forecast's FitError on one alternative lost the whole what-if panel)
    import runcast
    from runcast.forecast.laws import MultiPowerLaw

    big = MultiPowerLaw({**MultiPowerLaw.published("25M").params, "B": 1e5})
    monkeypatch.setattr(runcast, "fit_law", lambda curves: big)
    sched = Schedule.from_spec({"kind": "constant", "peak": 3e-4, "warmup": 0, "total": 24000})
    curve = Curve(np.arange(0, 24000, 600), np.linspace(4.0, 3.3, 40), name="loss")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no "predicts a loss of -25" warning for them
        w = whatif_data(curve, sched, 24000, n_points=20)
    assert [s.name for s in w.scenarios] == ["this run"]  # its own constant LR is all that is left
    assert set(w.dropped) == {"cosine", "wsd 10% decay", "wsd 20% decay", "wsd 40% decay"}
    assert w.scenarios[0].final == pytest.approx(3.233, abs=1e-3)


def test_whatif_refuses_a_metric_that_is_no_loss() -> None:
    # the report fitted a loss law to val_acc and named the schedule with the LOWEST accuracy
    # "best"; an accuracy (it rises, and lives in [0, 1]) gets no what-if, with the reason
    sched = Schedule.from_spec(SPECS[1])
    steps = np.arange(0, 400, 10)
    acc = Curve(steps, 0.9 - 0.5 * (1 + steps / 20.0) ** -0.7, name="val_acc")
    with pytest.raises(InvalidInputError, match="what-ifs model a loss, and 'val_acc' is not"):
        whatif_data(acc, sched, 400)


def test_a_law_that_fits_poorly_recommends_nothing() -> None:
    # beside "fits poorly (typical relative residual 0.39)" the report still named a best
    # schedule with intervals of [0.05, 732]: now it says the fit is poor and shows none
    from runcast.errors import FitError

    sched = Schedule.from_spec(SPECS[1])
    steps = np.arange(0, 400, 5)
    rng = np.random.default_rng(0)
    loss = (2.0 + 1.0 / np.sqrt(1 + steps)) * np.exp(0.4 * rng.standard_normal(steps.size))
    with pytest.raises(FitError, match=r"fits this run poorly .* no schedule is recommended"):
        whatif_data(Curve(steps, loss, name="loss"), sched, 400)
