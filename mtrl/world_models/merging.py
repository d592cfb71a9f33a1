"""Merging fine-tuned models without training: pure functions over task vectors.

A task vector is ``tau_t = theta_t - theta_base`` for an expert ``t`` fine-tuned from a shared
base (Ilharco et al. 2023). Every function here takes the base's tensors and the experts' task
vectors, both ``{name: tensor}`` over the same names and shapes, and returns the merged
tensors. Per-task parameters (embeddings, per-task encoders and heads) are not merged: the
checkpoint-level merge (``mtrl.runtime.merge``) takes them from the expert that owns the task.

* ``task_arithmetic``: ``theta = base + scale * sum_t tau_t``.
* ``ties`` (TIES-Merging, Yadav et al. 2023): trim each task vector to its ``keep`` share of
  largest magnitudes (over the whole vector, all tensors together), elect one sign per
  parameter (the sign of the trimmed vectors' sum: the larger total mass), and average only
  the trimmed entries that agree with it (disjoint mean); ``theta = base + scale * merged``.
* ``consensus`` (TALL masks and consensus merging, Wang et al. 2024): task ``t``'s mask keeps
  the parameters where ``|tau_t| >= threshold * |tau_sum - tau_t|`` (the task matters there
  more than the rest of the sum); a parameter survives when at least ``min_tasks`` masks keep
  it, which removes the weights only one task relies on ("selfish") or none ("catastrophic");
  ``theta = base + scale * tau_sum * consensus_mask``.
"""

from __future__ import annotations

import torch

Tensors = dict[str, torch.Tensor]


def task_vectors(base: Tensors, experts: list[Tensors]) -> list[Tensors]:
    """``expert - base`` for every name of ``base`` (float32)."""
    return [{k: e[k].float() - base[k].float() for k in base} for e in experts]


def task_arithmetic(base: Tensors, deltas: list[Tensors], scale: float) -> Tensors:
    return {k: base[k] + (scale * _sum(deltas, k)).to(base[k].dtype) for k in base}


def ties(base: Tensors, deltas: list[Tensors], keep: float, scale: float) -> Tensors:
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"ties keep must be in (0, 1], got {keep}")
    trimmed = [trim(delta, keep) for delta in deltas]
    merged = {}
    for k in base:
        stacked = torch.stack([t[k] for t in trimmed])  # [T, ...]
        merged[k] = base[k] + (scale * disjoint_mean(stacked)).to(base[k].dtype)
    return merged


def trim(delta: Tensors, keep: float) -> Tensors:
    """``delta`` with all but its ``keep`` share of largest-magnitude entries set to 0; the
    threshold is taken over every tensor of ``delta`` together (ties at it are kept)."""
    flat = torch.cat([v.abs().flatten() for v in delta.values()])
    count = max(1, round(keep * flat.numel()))
    threshold = torch.topk(flat, count, sorted=True).values[-1]
    return {k: torch.where(v.abs() >= threshold, v, 0.0) for k, v in delta.items()}


def elect_sign(stacked: torch.Tensor) -> torch.Tensor:
    """Per parameter, +1 or -1: the sign of the tasks' summed (trimmed) values; 0 where the
    sum is 0 (no task moved the parameter, or the masses cancel exactly)."""
    return torch.sign(stacked.sum(0))


def disjoint_mean(stacked: torch.Tensor) -> torch.Tensor:
    """Mean over the tasks whose nonzero value agrees with the elected sign (0 if none)."""
    sign = elect_sign(stacked)
    agree = (torch.sign(stacked) == sign) & (stacked != 0)
    total = torch.where(agree, stacked, 0.0).sum(0)
    return total / agree.sum(0).clamp(min=1)


def tall_masks(deltas: list[Tensors], threshold: float) -> list[dict[str, torch.Tensor]]:
    """Per task, per tensor: bool mask of the parameters the task relies on."""
    masks = []
    for delta in deltas:
        mask = {}
        for k, tau in delta.items():
            rest = _sum(deltas, k) - tau
            mask[k] = tau.abs() >= threshold * rest.abs()
        masks.append(mask)
    return masks


def consensus(
    base: Tensors, deltas: list[Tensors], min_tasks: int, threshold: float, scale: float
) -> Tensors:
    if min_tasks < 1:
        raise ValueError(f"consensus min_tasks must be >= 1, got {min_tasks}")
    masks = tall_masks(deltas, threshold)
    merged = {}
    for k in base:
        votes = torch.stack([m[k] for m in masks]).sum(0)
        kept = _sum(deltas, k) * (votes >= min_tasks)
        merged[k] = base[k] + (scale * kept).to(base[k].dtype)
    return merged


def _sum(deltas: list[Tensors], key: str) -> torch.Tensor:
    return torch.stack([d[key] for d in deltas]).sum(0)
