"""Statistics of the children of one node per tree, gathered from the tree arrays."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mtrl.search.tree import Tree


@dataclass(frozen=True)
class ChildStats:
    prior: torch.Tensor  # [B, A] float32
    visits: torch.Tensor  # [B, A] int32, 0 for unexpanded children
    q: torch.Tensor  # [B, A] float32, reward + discount * mean value; 0 where unvisited
    min_q: torch.Tensor  # [B] float32, the tree's normalisation bounds
    max_q: torch.Tensor  # [B] float32


def child_stats(tree: Tree, node: torch.Tensor) -> ChildStats:
    """Children of node[b] in tree b. node: [B] int64."""
    rows = torch.arange(tree.batch_size, device=tree.device)
    index = tree.child_index[rows, node].long()  # [B, A]
    expanded = index >= 0
    safe = index.clamp(min=0)
    visits = torch.where(expanded, tree.visits.gather(1, safe), 0)
    value_sum = tree.value_sum.gather(1, safe)
    mean = value_sum / visits.clamp(min=1).float()
    q = tree.reward.gather(1, safe) + tree.discount[:, None] * mean
    return ChildStats(
        prior=tree.child_prior[rows, node],
        visits=visits,
        q=torch.where(expanded, q, 0.0),
        min_q=tree.min_q,
        max_q=tree.max_q,
    )
