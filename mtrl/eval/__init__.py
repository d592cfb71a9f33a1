"""Checkpoint evaluation, baselines as data, aggregates with CIs, reports, TensorBoard layout."""

from mtrl.eval.baselines import Baseline, load_baselines
from mtrl.eval.checkpoint import LoadedCheckpoint, load_checkpoint
from mtrl.eval.metrics import (
    aggregate_scalars,
    human_normalized,
    iqm,
    normalized_score,
    optimality_gap,
    stratified_bootstrap,
)
from mtrl.eval.run import EvalOptions, evaluate_checkpoint
from mtrl.eval.tensorboard import build_layout, write_layout

__all__ = [
    "Baseline",
    "EvalOptions",
    "LoadedCheckpoint",
    "aggregate_scalars",
    "build_layout",
    "evaluate_checkpoint",
    "human_normalized",
    "iqm",
    "load_baselines",
    "load_checkpoint",
    "normalized_score",
    "optimality_gap",
    "stratified_bootstrap",
    "write_layout",
]
