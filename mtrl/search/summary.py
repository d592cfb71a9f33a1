"""Turn a finished tree into the search's outputs (once per search, vectorized over trees)."""

from __future__ import annotations

import torch

from mtrl.search import gumbel
from mtrl.search.stats import child_stats
from mtrl.search.tree import Tree
from mtrl.search.types import SearchConfig, SearchOutput


def summarize(tree: Tree, config: SearchConfig) -> SearchOutput:
    root = torch.zeros(tree.batch_size, dtype=torch.int64, device=tree.device)
    stats = child_stats(tree, root)
    visits = stats.visits  # [B, A] int32
    legal = tree.root_legal
    if config.algorithm == "muzero":
        weights = _visit_distribution(visits, stats.prior)
        # Most visited action; ties go to the higher prior, then to the lowest index.
        score = torch.where(legal, visits.double() + stats.prior.double() * 1e-3, -torch.inf)
        action = score.argmax(dim=1)
    else:
        sigma, _ = gumbel.completed_sigma(
            stats, tree.raw_value[:, 0], config.c_visit, config.c_scale
        )
        weights = gumbel.improved_policy(tree.root_logits, sigma, legal)
        action = _gumbel_action(tree, stats.visits, sigma)
    return SearchOutput(
        action=action,
        action_weights=weights,
        visit_counts=visits,
        root_value=tree.value_sum[:, 0] / tree.visits[:, 0].float(),
        leaf_depths=tree.leaf_depths,
        tree=tree,
    )


def _visit_distribution(visits: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    total = visits.sum(dim=1, keepdim=True)
    # With no simulations there is nothing to count: the prior is the best estimate.
    return torch.where(total > 0, visits.float() / total.clamp(min=1).float(), prior)


def _gumbel_action(tree: Tree, visits: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """argmax of g + logits + sigma(completed Q) among the actions that survived sequential
    halving, i.e. the most visited legal ones (the paper's final action choice)."""
    most_visited = torch.where(tree.root_legal, visits, -1).amax(dim=1, keepdim=True)
    score = tree.gumbel.double() + tree.root_logits.double() + sigma
    eligible = tree.root_legal & (visits == most_visited)
    return torch.where(eligible, score, -torch.inf).argmax(dim=1)
