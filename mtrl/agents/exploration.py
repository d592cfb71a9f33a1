"""Temporally-extended ε-greedy exploration for collection (εz-greedy: Dabney, Ostrovski and
Barreto 2021, "Temporally-Extended ε-Greedy Exploration").

A row that is not already exploring starts, with probability ε, to play one random action
(a legal index; for continuous rows one of the search's K root samples) for n steps, n drawn
from a zeta distribution, P(n) ∝ n^-μ, capped (μ per task; a task without holds takes single
random steps, plain ε-greedy). Heavy-tailed holds keep ε-greedy's cheap
local dithering and add the occasional long straight run. The state is per environment row,
so it lives with the collector, not with the (stateless, possibly remote) actor; replay keeps
the search's policy as its target and the played action as the action.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mtrl.agents.acting import ActResult


def hold_length(rng: np.random.Generator, exponent: float, max_hold: int) -> int:
    """Steps to hold a random action: zeta-distributed, P(n) ∝ n^-exponent, at most max_hold;
    one step (plain ε-greedy) for exponent 0."""
    return min(int(rng.zipf(exponent)), max_hold) if exponent > 0 else 1


class HeldExploration:
    """Per-row exploration runs of E environment rows, each row with its task's exponent."""

    def __init__(
        self, epsilon: float, exponents: np.ndarray, max_hold: int, action_dim: int
    ) -> None:
        rows = exponents.shape[0]  # [E] zeta exponent per row, 0 for single random steps
        self.epsilon, self.exponents, self.max_hold = epsilon, exponents, max_hold
        self.left = np.zeros(rows, np.int64)  # steps each row still holds its action
        self.index = np.zeros(rows, np.int64)  # held action index (discrete and text rows)
        self.vector = np.zeros((rows, action_dim), np.float32)  # held action (continuous)

    def apply(
        self,
        result: ActResult,
        legal: np.ndarray,  # [E, A] bool, the rows' legal actions now
        continuous: np.ndarray,  # [E] bool
        rng: np.random.Generator,
    ) -> ActResult:
        """``result`` with the exploring rows' actions replaced by their held ones."""
        self._drop_illegal(legal, continuous)
        start = (self.left == 0) & (rng.random(self.left.shape[0]) < self.epsilon)
        for row in np.flatnonzero(start):
            self._start(row, result, legal[row], bool(continuous[row]), rng)
        holding = self.left > 0
        index = np.where(holding & ~continuous, self.index, result.action_index)
        dims = result.action_vector.shape[1]
        vector = np.where(
            (holding & continuous)[:, None], self.vector[:, :dims], result.action_vector
        )
        self.left[holding] -= 1
        return replace(result, action_index=index, action_vector=vector.astype(np.float32))

    def end(self, rows: np.ndarray) -> None:
        """Rows whose episode ended start the next one without a held action."""
        self.left[rows] = 0

    def _start(
        self,
        row: int,
        result: ActResult,
        legal: np.ndarray,
        continuous: bool,
        rng: np.random.Generator,
    ) -> None:
        if continuous:
            sample = result.sampled[row, rng.integers(result.sampled.shape[1])]
            self.vector[row, : sample.shape[0]] = sample
        else:
            choices = np.flatnonzero(legal)
            if not choices.size:
                return
            self.index[row] = rng.choice(choices)
        self.left[row] = hold_length(rng, float(self.exponents[row]), self.max_hold)

    def _drop_illegal(self, legal: np.ndarray, continuous: np.ndarray) -> None:
        """A held command a text game no longer offers ends the hold (the list changes)."""
        width = legal.shape[1]
        rows = np.flatnonzero((self.left > 0) & ~continuous)
        for row in rows:
            if self.index[row] >= width or not legal[row, self.index[row]]:
                self.left[row] = 0
