"""Forecasting: laws over schedules, schedule-agnostic extrapolators, the Forecast type."""

from runcast.forecast._types import Distribution, Forecast

__all__ = ["Distribution", "Forecast"]
