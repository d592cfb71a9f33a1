"""Gumbel MuZero's sequential-halving visit schedule (Danihelka et al. 2022)."""

from __future__ import annotations

import functools
import math

import torch


@functools.lru_cache(maxsize=64)
def considered_visit_table(max_considered: int, num_simulations: int) -> torch.Tensor:
    """Row m: the visit count an action must have to be picked at each simulation, for m
    considered actions. It encodes the paper's sequential halving: ceil(log2(m)) phases; in
    each, every remaining action gets n // (ceil(log2(m)) * remaining) more visits (at least
    one), then the better half remains (never fewer than 2). Visiting only actions with exactly
    this count realises the halving without storing the remaining set: the first round's k = 0
    picks the Gumbel-top-m, and each later round visits the best of those with k visits.
    """
    table = torch.zeros(max_considered + 1, num_simulations, dtype=torch.int32)
    for m in range(1, max_considered + 1):
        table[m] = torch.tensor(_halving_sequence(m, num_simulations), dtype=torch.int32)
    return table


def _halving_sequence(num_considered: int, num_simulations: int) -> list[int]:
    if num_considered == 1:
        return list(range(num_simulations))
    phases = math.ceil(math.log2(num_considered))
    sequence: list[int] = []
    visits = 0
    remaining = num_considered
    while len(sequence) < num_simulations:
        extra = max(1, num_simulations // (phases * remaining))
        for _ in range(extra):
            sequence.extend([visits] * remaining)
            visits += 1
        remaining = max(2, remaining // 2)
    return sequence[:num_simulations]
