"""Gumbel MuZero maths (Danihelka et al. 2022, "Policy improvement by planning with Gumbel").

Pure batched torch functions over one node per tree ([B, A] child statistics). Selection maths
runs in float64 on float32 tree fields; the C++ backend does the same operations in the same
order, which keeps both backends' decisions identical.
"""

from __future__ import annotations

import torch

from mtrl.search.numerics import masked_softmax, normalize_q, ordered_sum
from mtrl.search.stats import ChildStats


def mixed_value(
    raw_value: torch.Tensor, prior: torch.Tensor, q: torch.Tensor, visits: torch.Tensor
) -> torch.Tensor:
    """The paper's v_mix: the network value mixed with the prior-weighted Q of the
    visited children. raw_value [B] f32, prior [B, A] f32, q [B, A] f32, visits [B, A] -> [B] f64.
    """
    visited = visits > 0
    prior64 = prior.double()
    sum_n = visits.double().sum(dim=1)
    sum_pq = ordered_sum(torch.where(visited, prior64 * q.double(), 0.0))
    sum_p = ordered_sum(torch.where(visited, prior64, 0.0))
    weighted_q = torch.where(sum_p > 0.0, sum_pq / sum_p, 0.0)
    mixed = (raw_value.double() + sum_n * weighted_q) / (1.0 + sum_n)
    return torch.where((sum_n > 0.0) & (sum_p > 0.0), mixed, raw_value.double())


def sigma_scale(visits: torch.Tensor, c_visit: float, c_scale: float) -> torch.Tensor:
    """(c_visit + max_b N(b)) * c_scale: the monotone sigma transform's slope. [B] f64."""
    return (c_visit + visits.amax(dim=1).double()) * c_scale


def completed_sigma(
    stats: ChildStats, raw_value: torch.Tensor, c_visit: float, c_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """sigma(completed Q) per child [B, A] f64 and sigma(v_mix) [B] f64."""
    v_mix = mixed_value(raw_value, stats.prior, stats.q, stats.visits)
    scale = sigma_scale(stats.visits, c_visit, c_scale)
    sigma_mix = scale * normalize_q(v_mix, stats.min_q, stats.max_q)
    sigma_visited = scale[:, None] * normalize_q(stats.q, stats.min_q, stats.max_q)
    sigma = torch.where(stats.visits > 0, sigma_visited, sigma_mix[:, None])
    return sigma, sigma_mix


def interior_scores(
    stats: ChildStats,
    raw_value: torch.Tensor,
    legal: torch.Tensor,
    c_visit: float,
    c_scale: float,
) -> torch.Tensor:
    """Deterministic non-root selection (the paper's rule): argmax pi'(a) - N(a) / (1 + sum N).

    pi' = softmax(logits + sigma(completed Q)) is computed as prior * exp(sigma - sigma_mix),
    normalised: unvisited children share sigma_mix, so they need no exp at all.
    """
    sigma, sigma_mix = completed_sigma(stats, raw_value, c_visit, c_scale)
    visited = stats.visits > 0
    weight = torch.where(visited, torch.exp(sigma - sigma_mix[:, None]), 1.0)
    weight = torch.where(legal, stats.prior.double() * weight, 0.0)
    improved = weight * (1.0 / ordered_sum(weight))[:, None]
    visits64 = stats.visits.double()
    score = improved - visits64 * (1.0 / (1.0 + visits64.sum(dim=1, keepdim=True)))
    return torch.where(legal, score, -torch.inf)


def root_scores(
    stats: ChildStats,
    raw_value: torch.Tensor,
    logits: torch.Tensor,
    gumbel: torch.Tensor,
    legal: torch.Tensor,
    considered_visit: torch.Tensor,
    c_visit: float,
    c_scale: float,
) -> torch.Tensor:
    """Root selection: g + logits + sigma(completed Q) over legal actions whose visit count
    equals this simulation's considered visit (sequential halving); -inf elsewhere."""
    sigma, _ = completed_sigma(stats, raw_value, c_visit, c_scale)
    score = gumbel.double() + logits.double() + sigma
    eligible = legal & (stats.visits == considered_visit[:, None])
    return torch.where(eligible, score, -torch.inf)


def improved_policy(logits: torch.Tensor, sigma: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """softmax(logits + sigma(completed Q)) over legal actions: the policy target. [B, A] f32."""
    return masked_softmax(logits.double() + sigma, legal)
