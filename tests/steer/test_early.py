"""EarlyStopper: the turn test against the noise, the forecast rule, the best step, state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runcast.curve import Curve
from runcast.errors import InvalidInputError
from runcast.forecast import Forecast
from runcast.schedules import Schedule
from runcast.steer import EarlyStopper, StopRule, eval_noise


def _overfit(seed: int, n: int = 80, noise: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """A validation curve that falls to a minimum at evaluation 30, then rises; training falls."""
    rng = np.random.default_rng(seed)
    i = np.arange(n, dtype=float)
    val = 1.0 + 2.0 * np.exp(-i / 6) + 0.004 * np.maximum(i - 30, 0) ** 1.3
    train = 3.0 * np.exp(-i / 10) + 0.1
    return val + rng.normal(0, noise, n), train


def _run(es: EarlyStopper, val: np.ndarray, train: np.ndarray | None = None) -> int | None:
    for k, v in enumerate(val):
        tl = None if train is None else float(train[k])
        if es.evaluate(10 * k, float(v), train_loss=tl):
            return k
    return None


@pytest.mark.parametrize("sigma", [0.001, 0.01, 0.05])
def test_eval_noise_reads_the_noise_not_the_trend(sigma: float) -> None:
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 500)
    v = 3.0 * np.exp(-3 * x) + rng.normal(0, sigma, x.size)
    # within 15% of the true noise, although the curve falls by 2.85 over the series
    assert eval_noise(v) == pytest.approx(sigma, rel=0.15)
    assert np.isnan(eval_noise(np.array([1.0, 2.0, np.nan])))  # too few points


@pytest.mark.parametrize("seed", range(5))
def test_stops_soon_after_an_overfitting_turn(seed: int) -> None:
    val, train = _overfit(seed)
    es = EarlyStopper(window=5, z=2.0)
    k = _run(es, val, train)
    # it stops after the minimum (evaluation 30 +- noise) but well before the end (80)
    assert k is not None and 30 < k < 60
    d = es.decisions[0]
    assert d.action == "stop" and d.reason.startswith("validation turned")
    assert d.numbers["rise"] > d.numbers["rise_needed"] > 0.02 * d.numbers["level_low"] * 0.99
    assert d.numbers["recent_slope"] > 0 and d.numbers["train_fall"] > 0
    # the best step is the minimum the run reached before stopping
    assert es.best_value == pytest.approx(float(np.min(val[: k + 1])))
    assert es.best_step == 10 * int(np.argmin(val[: k + 1]))


def test_one_bad_evaluation_does_not_stop() -> None:
    i = np.arange(60, dtype=float)
    val = 1.0 + np.exp(-i / 10)
    val[30] += 0.5  # one evaluation far off (a bad batch of the eval set)
    es = EarlyStopper(window=3, z=1.0, min_rise=0.0)
    assert _run(es, val, 2.0 - i / 60) is None


@pytest.mark.parametrize("seed", range(10))
def test_a_noisy_plateau_that_still_falls_is_not_stopped(seed: int) -> None:
    rng = np.random.default_rng(seed)
    i = np.arange(100, dtype=float)
    val = 1.0 + np.exp(-i / 8) - 0.0005 * i + rng.normal(0, 0.01, i.size)
    assert _run(EarlyStopper(), val, 2.0 - i / 100) is None


def test_rising_training_loss_is_not_overfitting() -> None:
    val, _ = _overfit(0)
    rising = np.linspace(1.0, 3.0, val.size)  # training diverges too: an instability
    assert _run(EarlyStopper(), val, rising) is None
    assert _run(EarlyStopper(), val, None) is not None  # no train loss: validation alone


def test_mode_max_mirrors_min() -> None:
    val, train = _overfit(3)
    k_min = _run(EarlyStopper(), val, train)
    es = EarlyStopper(mode="max")
    assert _run(es, -val, train) == k_min
    assert es.best_value == pytest.approx(-float(np.min(val[: k_min + 1])))  # type: ignore[operator]


def test_min_rise_asks_for_a_material_rise() -> None:
    val, train = _overfit(0)
    k = _run(EarlyStopper(), val, train)
    k_rise = _run(EarlyStopper(min_rise=0.05), val, train)
    assert k is not None and k_rise is not None and k_rise > k  # a 5% rise comes later


def test_forecast_rule_stops_a_run_whose_rest_will_not_pay() -> None:
    flat = Forecast([0, 1000], np.full((50, 2), 1.0))

    def forecaster(curve: Curve, until: int) -> Forecast:
        return flat

    rule = StopRule(tolerance=0.01, relative=True, forecaster=forecaster)
    es = EarlyStopper(stop_rule=rule, until=1000, forecast_every=2)
    first = next(k for k in range(20) if es.evaluate(10 * k, 1.0 + 1e-4 * (20 - k)))
    # StopRule's min_points is 10 and it is asked every 2nd evaluation: the 10th decides
    assert first == 9 and es.decisions[0].reason.startswith("stopped learning")
    assert es.decisions[0].numbers["p_improve"] == 0.0
    assert es.best_step == 90 and es.stopped


def test_a_failing_forecast_does_not_end_training() -> None:
    def broken(curve: Curve, until: int) -> Forecast:
        raise ValueError("Probabilities contain NaN")

    es = EarlyStopper(stop_rule=StopRule(forecaster=broken), until=1000)
    ds = [es.evaluate(k, 1.0 / (k + 1)) for k in range(15)]
    assert not any(ds) and "no forecast (ValueError" in ds[-1].reason


def test_state_dict_resumes_exactly() -> None:
    val, train = _overfit(4)
    whole = EarlyStopper()
    ref = [
        whole.evaluate(10 * k, float(v), train_loss=float(t))
        for k, (v, t) in enumerate(zip(val, train, strict=True))
    ]
    a = EarlyStopper()
    for k in range(25):
        a.evaluate(10 * k, float(val[k]), train_loss=float(train[k]))
    a.observe_train(251, 0.5)  # a pending training loss travels too
    b = EarlyStopper()
    b.load_state_dict(a.state_dict())
    assert b._pending == [0.5]
    b._pending = []
    rest = [b.evaluate(10 * k, float(val[k]), train_loss=float(train[k])) for k in range(25, 80)]
    assert [d.action for d in rest] == [d.action for d in ref[25:]]
    assert (
        b.best_step == whole.best_step and b.decisions[0].to_dict() == whole.decisions[0].to_dict()
    )


def test_observe_train_feeds_the_interval_median() -> None:
    es = EarlyStopper()
    for s, loss in enumerate([5.0, 1.0, 2.0]):
        es.observe_train(s, loss)
    es.evaluate(2, 1.0)
    assert es.train == [2.0]  # the median of the interval, robust to the first spike


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "up"},
        {"window": 1},
        {"z": -1.0},
        {"train_z": float("nan")},
        {"min_rise": -0.01},
        {"stop_rule": StopRule()},  # without until
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        EarlyStopper(**kwargs)  # type: ignore[arg-type]


def test_bad_value_names_it() -> None:
    with pytest.raises(InvalidInputError, match="'abc' at step 3"):
        EarlyStopper().evaluate(3, "abc")  # type: ignore[arg-type]


def test_a_bump_that_is_already_coming_back_down_is_not_a_turn() -> None:
    # epoch-wise double descent (a real sweep trial's shape): the validation loss falls to
    # 0.0045, jumps to 0.0176 while the training loss falls, then falls back below 0.0045 by
    # the end. Measured against the best alone it looked like overfitting; against the window
    # before, it stops rising before the turn test could act, so the run is never stopped.
    bump = [1.07, 0.248, 0.047, 0.0076, 0.0045, 0.0104, 0.0159, 0.0176, 0.0174, 0.0168, 0.0158]
    val = np.concatenate([bump, np.geomspace(0.0149, 0.0040, 29)])
    train = np.geomspace(1.1, 1e-4, val.size)
    es = EarlyStopper()
    assert _run(es, val, train) is None
    assert es.best_value == pytest.approx(0.0040)


def test_a_drifting_validation_with_a_stalled_training_loss_is_not_overfitting() -> None:
    # the validation loss drifts up by 1% over 20 evaluations while the training loss is a
    # flat, noisy plateau: a plateau (that may yet come back down), not a turn
    rng = np.random.default_rng(2)
    i = np.arange(60, dtype=float)
    val = 0.27 + 0.0004 * np.maximum(i - 20, 0) + rng.normal(0, 0.0003, i.size)
    train = 0.25 + rng.normal(0, 0.03, i.size)
    # a chance fall of the noisy training loss between two windows is not enough: train_z
    assert _run(EarlyStopper(window=5, train_z=2.0), val, train) is None
    # the same validation with a training loss that keeps falling is overfitting
    assert _run(EarlyStopper(window=5, train_z=2.0), val, 0.25 * np.exp(-i / 15)) is not None


def test_the_training_fall_is_read_in_log_units() -> None:
    # a memorising run: training loss 1e-3 -> 1e-6 (by factors, tiny in absolute terms, with
    # multiplicative batch noise), validation loss rising steadily after evaluation 20
    rng = np.random.default_rng(5)
    i = np.arange(80, dtype=float)
    val = 0.14 + 0.002 * np.maximum(i - 20, 0) + rng.normal(0, 0.0005, i.size)
    train = 1e-3 * np.exp(-i / 12) * np.exp(rng.normal(0, 0.3, i.size))
    es = EarlyStopper(window=5, train_z=2.0)
    k = _run(es, val, train)
    assert k is not None and 20 < k < 40
    # the fall from the lowest validation level's window to now is (evaluations apart) / 12 in
    # log units, whatever the loss's scale (two medians of 5 with log noise 0.3: se ~0.24)
    n = es.decisions[0].numbers
    apart = (es.decisions[0].step - n["level_low_step"]) / 10
    assert apart >= 5 and n["train_fall"] == pytest.approx(apart / 12, abs=0.24)
    assert n["train_fall"] > n["train_fall_needed"]
    # train_then / train_now are the medians themselves, not their logs
    assert 0 < es.decisions[0].numbers["train_now"] < es.decisions[0].numbers["train_then"] < 1e-3


def test_settings_rebuild_the_same_rule() -> None:
    es = EarlyStopper(mode="max", window=4, z=2.5, train_z=1.5, min_rise=0.01)
    again = EarlyStopper(**es.settings())
    assert again.settings() == es.settings()
    assert again.mode == "max" and again.train_z == 1.5
    # the stall test's settings and the budget's end travel too (the schedule is an object)
    stall = EarlyStopper(patience=12, stall=0.25, lr_drop=0.5, until=999)
    assert EarlyStopper(**stall.settings()).settings() == stall.settings()
    assert stall.settings()["until"] == 999 and stall.settings()["patience"] == 12


def test_it_stops_within_a_window_or_two_of_a_clean_turn() -> None:
    # the smoothed level is compared with its own lowest value, not a window with the window
    # before: a clear rise (1% of the loss per evaluation from evaluation 30) stops the run
    # once one window of 4 has passed the lowest level and the rise passes 2% (min_rise)
    rng = np.random.default_rng(0)
    i = np.arange(80, dtype=float)
    val = 1.0 + 0.5 * np.exp(-i / 5) + 0.01 * np.maximum(i - 30, 0) + rng.normal(0, 0.001, 80)
    es = EarlyStopper(window=4)
    k = _run(es, val, 2.0 * np.exp(-i / 20))
    assert k is not None and 34 <= k <= 38
    d = es.decisions[0].numbers
    assert d["level_low_step"] >= 300 and d["rise"] > 0.02 * d["level_low"]


def test_a_small_rise_that_comes_back_is_not_stopped() -> None:
    # a real run's shape (mlp_overfit in the corpus): the training loss memorises (to 1e-5),
    # the validation loss rises 1.2% from its low and then falls 2% below it by the end; a
    # rise under min_rise (2%: what the corpus counts as overfitting) does not stop it
    rise = [0.17681, 0.17161, 0.17217, 0.17255, 0.17334, 0.17354, 0.17366, 0.17341, 0.17294]
    val = np.concatenate([np.geomspace(0.19, 0.178, 8), rise, np.linspace(0.1725, 0.1686, 37)])
    train = np.geomspace(1.0, 1e-5, val.size)
    assert _run(EarlyStopper(), val, train) is None
    assert _run(EarlyStopper(min_rise=0.0), val, train) is not None  # noise alone: it stops


def _plateau(seed: int, n: int = 60) -> np.ndarray:
    """A validation loss that falls to a flat, noisy plateau by evaluation ~15."""
    rng = np.random.default_rng(seed)
    i = np.arange(n, dtype=float)
    return 0.5 + np.exp(-i / 3) + rng.normal(0, 0.005, n)


def _flat_train() -> np.ndarray:
    """A training loss that has stopped falling (a noisy plateau): no turn, a stall."""
    rng = np.random.default_rng(9)
    return 0.4 + np.exp(-np.arange(60) / 3) + rng.normal(0, 0.01, 60)


@pytest.mark.parametrize(("patience", "stall"), [(10, 0.0), (4, 0.3)])
def test_a_plateau_at_the_lr_it_keeps_is_stopped(patience: int, stall: float) -> None:
    val = _plateau(0)
    train = _flat_train()
    constant = Schedule.from_spec({"kind": "constant", "peak": 1.0})
    es = EarlyStopper(patience=patience, stall=stall, schedule=constant, until=599)
    k = _run(es, val, train)
    d = es.decisions[0]
    assert k is not None and d.reason.startswith("stalled")
    # it stops once the lowest running median is patience evaluations old and stall of the
    # evaluations so far (k + 1), not before
    since = d.numbers["evals_since_low"]
    assert since == k - d.numbers["level_low_step"] / 10
    assert since == max(patience, math.ceil(stall * (k + 1)))
    assert d.numbers["lr_now"] == d.numbers["lr_min_ahead"] == 1.0
    # the kept weights are the best evaluation seen, from the plateau
    assert es.best_value == pytest.approx(float(np.min(val[: k + 1])))


def test_a_plateau_before_an_lr_decay_is_not_stopped() -> None:
    val = _plateau(0)
    # warmup-stable-decay: the LR falls to 0 over the last 20% of 600 steps
    wsd = Schedule.from_spec({"kind": "wsd", "peak": 1.0, "total": 600, "decay_fraction": 0.2})
    es = EarlyStopper(patience=10, schedule=wsd, until=599)
    train = _flat_train()
    ds = [
        es.evaluate(10 * k, float(v), train_loss=float(t))
        for k, (v, t) in enumerate(zip(val, train, strict=True))
    ]
    assert not any(ds)
    waits = [d for d in ds if "the decay may lower the plateau" in d.reason]
    assert waits and all(d.numbers["lr_min_ahead"] < 0.3 * d.numbers["lr_now"] for d in waits)
    # with lr_drop 0 (never wait for a decay) the same run is stopped
    never_wait = EarlyStopper(patience=10, lr_drop=0.0, schedule=wsd, until=599)
    assert _run(never_wait, val, train) is not None


def test_without_a_schedule_a_stall_is_not_stopped() -> None:
    es = EarlyStopper(patience=10)
    train = _flat_train()
    ds = [
        es.evaluate(10 * k, float(v), train_loss=float(t))
        for k, (v, t) in enumerate(zip(_plateau(1), train, strict=True))
    ]
    assert not any(ds) and "pass schedule= and until=" in ds[-1].reason
    # patience=None turns the stall test off, even with a schedule
    off = EarlyStopper(
        patience=None, schedule=Schedule.from_spec({"kind": "constant", "peak": 1.0}), until=599
    )
    assert _run(off, _plateau(1), train) is None


@pytest.mark.parametrize(
    "kwargs", [{"patience": 0}, {"lr_drop": 1.5}, {"lr_drop": -0.1}, {"stall": float("nan")}]
)
def test_bad_stall_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        EarlyStopper(**kwargs)  # type: ignore[arg-type]
