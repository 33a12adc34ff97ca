"""The learned forecaster (method ``"pfn"``): an LC-PFN-style transformer conditioned on the LR
schedule, trained by runcast on a synthetic prior; inference runs in numpy from ``weights.npz``.

Importing this package registers the method; it never imports torch (only ``train`` does).

Example:
    >>> from runcast.forecast._registry import get_method
    >>> import runcast.forecast.pfn
    >>> get_method("pfn").needs_schedule
    False
"""

from runcast.forecast.pfn._method import pfn_forecast

__all__ = ["pfn_forecast"]
