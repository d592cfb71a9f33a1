"""Gradient-conflict metrics on the shared parameters, and their TensorBoard-ready dict.

Everything is read off the ``[T, T]`` Gramian ``J J^T`` of the per-task gradients, so once the
per-task Jacobian exists the metrics cost one small matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ConflictMetrics:
    """``norms[T]``, ``cosine[T, T]`` (0 where a gradient is zero), conflict summaries."""

    norms: Tensor
    cosine: Tensor
    conflict_fraction: float
    mean_cosine: float


def conflict_metrics_from_gramian(gramian: Tensor) -> ConflictMetrics:
    if gramian.ndim != 2 or gramian.shape[0] != gramian.shape[1]:
        raise ValueError(f"gramian must be square [T, T], got {tuple(gramian.shape)}")
    g = gramian.detach().to(torch.float64)
    norms = g.diagonal().clamp_min(0).sqrt()
    # Zero gradients have no direction: report cosine 0 with everything rather than NaN.
    inv = torch.where(norms > 0, 1.0 / norms.clamp_min(1e-300), torch.zeros_like(norms))
    cosine = (g * inv[:, None] * inv[None, :]).clamp(-1.0, 1.0)
    cosine.diagonal().copy_((norms > 0).to(cosine.dtype))
    num_tasks = g.shape[0]
    if num_tasks < 2:
        return ConflictMetrics(norms.float(), cosine.float(), 0.0, 0.0)
    upper = torch.triu_indices(num_tasks, num_tasks, offset=1)
    pairs = cosine[upper[0], upper[1]]
    return ConflictMetrics(
        norms=norms.float(),
        cosine=cosine.float(),
        conflict_fraction=float((pairs < 0).to(torch.float64).mean()),
        mean_cosine=float(pairs.mean()),
    )


def conflict_metrics(jacobian: Tensor) -> ConflictMetrics:
    """Metrics of the per-task gradients, the rows of ``jacobian [T, n]``."""
    if jacobian.ndim != 2:
        raise ValueError(f"jacobian must be [T, n], got {tuple(jacobian.shape)}")
    j = jacobian.detach()
    return conflict_metrics_from_gramian(j @ j.T)


def metrics_to_log_dict(
    metrics: ConflictMetrics,
    task_names: Sequence[str],
    weights: Tensor | None = None,
    prefix: str = "grad",
) -> dict[str, float | Tensor]:
    """``{"grad/cosine": [T, T] tensor, "grad/norm/<task>": float, ...}`` for TensorBoard."""
    if len(task_names) != metrics.norms.shape[0]:
        raise ValueError(
            f"{len(task_names)} task names for {metrics.norms.shape[0]} tasks: {list(task_names)}"
        )
    out: dict[str, float | Tensor] = {
        f"{prefix}/cosine": metrics.cosine.cpu(),
        f"{prefix}/conflict_fraction": metrics.conflict_fraction,
        f"{prefix}/mean_cosine": metrics.mean_cosine,
    }
    norms = metrics.norms.cpu().tolist()
    for name, norm in zip(task_names, norms, strict=True):
        out[f"{prefix}/norm/{name}"] = norm
    if weights is not None:
        for name, weight in zip(task_names, weights.detach().cpu().tolist(), strict=True):
            out[f"{prefix}/weight/{name}"] = weight
    return out
