"""The ScaleZero agent, one module per part (no Ray here; the runtime reuses them):

``acting`` (one joint search over the roots of every task), ``collect`` (acting into replay),
``replay`` (per-task sequences, priorities), ``targets`` (n-step returns), ``batching``
(replay samples -> the model's ``UnrolledBatch``), ``reanalyse``, ``learner`` (losses,
conflict-aware update, DPS stages), ``dps_controller`` (when to switch), ``evaluate`` and
``gradients`` (conflict metrics and aggregators). The training loop that drives them, in both
the single-process mode and on Ray, is ``mtrl.runtime.driver``.
The package namespace re-exports the gradient API; ``mtrl`` itself re-exports the rest.
"""

from mtrl.agents.gradients import (
    GradientConfig,
    MultiTaskUpdate,
    available_aggregators,
    build_aggregator,
    by_prefix,
    conflict_metrics,
    split_parameters,
)

__all__ = [
    "GradientConfig",
    "MultiTaskUpdate",
    "available_aggregators",
    "build_aggregator",
    "by_prefix",
    "conflict_metrics",
    "split_parameters",
]
