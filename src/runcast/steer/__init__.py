"""Steer runs: stop what stopped learning, prune what will not win, guard against blow-ups.

Every rule returns a :class:`Decision` that records what to do and why, with the numbers.

- :class:`StopRule` / :func:`should_stop`: the forecast says the remaining budget will improve
  the metric by less than a tolerance (with a stated confidence).
- :class:`PlateauDetector`: no new best evaluation for ``patience`` evaluations.
- :class:`EarlyStopper`: the validation metric has turned (overfitting, judged against its
  noise) or a :class:`StopRule` says the rest is not worth it; keeps the best step.
  :class:`TrainingPlateau` stops from the training dynamics alone (no validation set).
- :func:`prune_decision` / :class:`PruneRule`: the sweep pruning rule shared by the Optuna and
  Ray Tune integrations: ``P(final beats best completed) < threshold``, with the forecast from
  the sweep's other trials (:func:`analog_forecast`, or :func:`peer_forecast`) or the trial's
  own curve; :func:`metric_bounds`: the metric's range, which no forecast passes.
- :class:`InstabilityGuard`: loss and grad-norm spikes (robust z), NaN/inf, forecast divergence;
  warn, skip, lower the LR, or roll back.
- :class:`TransformerMonitor` and :func:`z_loss`: attention-logit growth and output log Z.
- :class:`GradientNoiseScale`: B_simple from gradient norms at two batch sizes;
  :func:`measure_cbs`: the critical batch size bracketed by branched runs;
  :class:`BatchSizeWarmup` / :class:`WarmupBatchSampler`: grow the batch as the CBS grows.

Example:
    >>> from runcast.steer import PlateauDetector
    >>> PlateauDetector(patience=1).update(0, 1.0).action
    'continue'
"""

from runcast.steer._bswarmup import BatchSizeWarmup, WarmupBatchSampler
from runcast.steer._cbs import Branch, CBSResult, measure_cbs
from runcast.steer._decision import Decision
from runcast.steer._dynamics import TrainingPlateau
from runcast.steer._early import EarlyStopper, eval_noise
from runcast.steer._guard import InstabilityGuard, robust_z
from runcast.steer._noise import GradientNoiseScale
from runcast.steer._peers import analog_forecast, peer_forecast
from runcast.steer._plateau import PlateauDetector
from runcast.steer._prune import PruneRule, default_forecaster, metric_bounds, prune_decision
from runcast.steer._stop import StopRule, should_stop
from runcast.steer._transformer import TransformerMonitor, z_loss

__all__ = [
    "BatchSizeWarmup",
    "Branch",
    "CBSResult",
    "Decision",
    "EarlyStopper",
    "GradientNoiseScale",
    "InstabilityGuard",
    "PlateauDetector",
    "PruneRule",
    "StopRule",
    "TrainingPlateau",
    "TransformerMonitor",
    "WarmupBatchSampler",
    "analog_forecast",
    "default_forecaster",
    "eval_noise",
    "measure_cbs",
    "metric_bounds",
    "peer_forecast",
    "prune_decision",
    "robust_z",
    "should_stop",
    "z_loss",
]
