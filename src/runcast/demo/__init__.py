"""``runcast demo``: train a small character-level transformer under a WSD schedule, record it,
forecast its final loss live, and write a report.

The text it learns ships inside the package (CPython's help topics, PSF licence), so the demo
runs offline on any CPU in about two minutes.

Example:
    >>> from runcast.demo import DemoConfig
    >>> DemoConfig(steps=1000).cutoff_step
    200
"""

from runcast.demo._train import DemoConfig, DemoResult, Judged, StepInfo, train

__all__ = ["DemoConfig", "DemoResult", "Judged", "StepInfo", "train"]
