"""The ScaleZero agent: targets, unrolled loss, gradient aggregation, DPS, replay rules.

The package namespace re-exports the gradient-aggregation API (``mtrl.agents.gradients``);
the other agent modules are imported from their submodules.
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
