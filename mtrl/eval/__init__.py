"""Checkpoint evaluation, baselines as data, aggregates with CIs, reports, TensorBoard layout.

Names import on first use: the training driver reads the TensorBoard layout and aggregates
from here and must not pay for (or drag into Ray's driver process) the report's matplotlib.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Baseline": "baselines",
    "load_baselines": "baselines",
    "LoadedCheckpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "aggregate_scalars": "metrics",
    "human_normalized": "metrics",
    "iqm": "metrics",
    "normalized_score": "metrics",
    "optimality_gap": "metrics",
    "stratified_bootstrap": "metrics",
    "EvalOptions": "run",
    "evaluate_checkpoint": "run",
    "build_layout": "tensorboard",
    "write_layout": "tensorboard",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mtrl.eval' has no attribute {name!r}")
    value = getattr(import_module(f"mtrl.eval.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
