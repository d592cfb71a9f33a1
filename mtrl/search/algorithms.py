"""What each search algorithm means to the code around the search, in one place.

Callers outside ``mtrl.search`` (acting, evaluation) ask ``get_algorithm(name)`` for the behaviour
they need instead of comparing algorithm names, so adding an algorithm touches this table and
the search, not its callers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mtrl.search.types import ALGORITHMS, SearchOutput

# choose(out, temperature, generator) -> [B] int64: the action each tree plays.
ChooseFn = Callable[[SearchOutput, float, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Algorithm:
    """One search algorithm as the acting and evaluation code see it."""

    name: str
    choose: ChooseFn
    greedy_play: str  # what temperature 0 (evaluation) plays, in words, for reports
    sampled_play: str  # what a temperature above 0 plays

    def play_note(self, temperature: float) -> str:
        """What this algorithm plays at ``temperature``, in words."""
        return self.greedy_play if temperature == 0 else self.sampled_play


def _muzero_choice(
    out: SearchOutput, temperature: float, generator: torch.Generator
) -> torch.Tensor:
    """MuZero samples visit counts with ``N^(1/temperature)``; temperature 0 takes the most
    visited (ties to the lowest index). With no visits (S == 0) it plays the search's action."""
    if out.visit_counts.sum() == 0:
        return out.action
    visits = out.visit_counts.double()
    if temperature == 0.0:
        return visits.argmax(dim=1)
    weights = visits ** (1.0 / temperature)
    return torch.multinomial(weights / weights.sum(1, keepdim=True), 1, generator=generator)[:, 0]


def _gumbel_choice(
    out: SearchOutput, temperature: float, generator: torch.Generator
) -> torch.Tensor:
    """Gumbel MuZero above temperature 0 plays the search's own choice (sequential halving's
    winner; its Gumbel noise is the exploration). At temperature 0 it plays the argmax of the
    improved policy: the same rule without the noise (mctx's advice for evaluation is a Gumbel
    scale of 0), so one unlucky draw cannot throw away an episode. Ties to the lowest index."""
    if temperature == 0.0:
        return out.action_weights.argmax(dim=1)
    return out.action


_TABLE = {
    a.name: a
    for a in (
        Algorithm(
            "muzero",
            _muzero_choice,
            greedy_play="the most visited action",
            sampled_play="actions sampled from visit counts ** (1 / temperature)",
        ),
        Algorithm(
            "gumbel_muzero",
            _gumbel_choice,
            greedy_play="the improved policy's argmax (Gumbel MuZero without its Gumbel noise)",
            sampled_play="Gumbel MuZero plays the search's own choice (its Gumbel noise explores)",
        ),
    )
}


def get_algorithm(name: str) -> Algorithm:
    """The behaviour of search algorithm ``name`` (one of ``ALGORITHMS``)."""
    if name not in _TABLE:
        raise ValueError(f"unknown algorithm {name!r}; expected one of {ALGORITHMS}")
    return _TABLE[name]
