"""Bounded forecasts: an accuracy stays in [0, 1], a loss heading to 0 is forecast above it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import runcast
from runcast.errors import FitError, InvalidInputError
from runcast.forecast._bounds import infer_bounds

S = np.arange(0, 600, 5)


@pytest.mark.parametrize(
    ("name", "values", "bounds"),
    [
        ("val_acc", [0.2, 0.9], (0.0, 1.0)),
        ("eval/accuracy", [20.0, 91.0], (0.0, 100.0)),
        ("top1", [0.1, 0.5], (0.0, 1.0)),
        ("train_loss", [2.3, 0.01], (0.0, np.inf)),
        ("val_ppl", [40.0, 12.0], (1.0, np.inf)),
        (None, [3.0, 1.0], (0.0, np.inf)),  # unnamed and positive: a loss, runcast's default
        ("elbo_loss", [-3.0, 1.0], None),  # a "loss" that goes negative has no floor
        ("reward", [0.2, 0.4], None),
        ("accuracy", [-0.5, 0.5], None),
    ],
)
def test_bounds_come_from_name_and_values(
    name: str | None, values: list[float], bounds: object
) -> None:
    got = infer_bounds(name, np.array(values))
    assert (None if got is None else (got.lo, got.hi)) == bounds


def test_an_accuracy_is_forecast_inside_zero_one() -> None:
    # a validation accuracy close to 1 was forecast with a 95% interval up to 1.008
    rng = np.random.default_rng(0)
    acc = np.clip(1 - 0.9 * np.exp(-S / 80) + 0.01 * rng.standard_normal(S.size), 0, 1)
    c = runcast.Curve(S, acc, name="val_acc")
    raw = runcast.forecast(c.until(200), until=599, bounds=None)
    assert raw.samples.max() > 1.0  # what it did before: past a perfect score
    f = runcast.forecast(c.until(200), until=599)
    assert f.samples.max() <= 1.0 and f.samples.min() >= 0.0
    assert f.info["scale"] == "logit" and f.info["bounds"] == [0.0, 1.0]
    assert 0.95 < f.final.median < 1.0  # and still a forecast of where it goes


def test_a_loss_heading_to_zero_is_forecast_not_refused() -> None:
    # a classifier's training loss: the PFN took it below 0 and the forecast was refused
    rng = np.random.default_rng(0)
    truth = 2.3 * np.exp(-S / 60) + 0.002
    c = runcast.Curve(S, truth * np.exp(0.3 * rng.standard_normal(S.size)), name="train_loss")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = runcast.forecast(c.until(200), until=599)
    assert f.samples.min() > 0
    lo, hi = f.final.interval(0.95)
    assert lo < truth[-1] < hi  # the truth (0.002) is inside its 95% interval


def test_a_forecast_inside_its_bounds_is_kept_as_made() -> None:
    # the calibrated forecast on the metric's own scale is not touched when it stays inside
    c = runcast.Curve(S, 2.0 + 5.0 * ((S + 100) / 100.0) ** -0.6, name="loss")
    a = runcast.forecast(c.until(300), until=599)
    b = runcast.forecast(c.until(300), until=599, bounds=None)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert "scale" not in a.info


def test_a_named_method_keeps_its_refusal() -> None:
    # twelve points of a steep loss forecast 100x past them: the law's own error stands
    steps = 5000 + 5 * np.arange(12)
    loss = 255.0 * (1.0 + np.exp(-3.0 * (steps - 5000) / 60.0))
    spec = {"kind": "wsd", "peak": 1e-3, "warmup": 0, "total": 505_502, "decay_start": 404_400}
    curve = runcast.Curve(steps, loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FitError, match="below 0"):
            runcast.forecast(curve, 505_501, spec, method="law")


@pytest.mark.parametrize("bad", [(1.0, 0.0), ("a", 1), (np.nan, 1.0), (-np.inf, np.inf), 3])
def test_bad_bounds_are_an_invalid_input_error(bad: object) -> None:
    c = runcast.Curve(S[:20], 1.0 / (1.0 + S[:20]), name="loss")
    with pytest.raises(InvalidInputError, match="bounds must"):
        runcast.forecast(c, until=200, bounds=bad)
