"""Gumbel MuZero's sequential-halving visit schedule."""

from __future__ import annotations

import pytest

from mtrl.search.schedule import considered_visit_table


def test_hand_checked_rows() -> None:
    table = considered_visit_table(4, 8)
    # m = 1: the single action takes every simulation.
    assert table[1].tolist() == list(range(8))
    # m = 2, one phase of 8 // (1 * 2) = 4 rounds over both actions.
    assert table[2].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    # m = 4: two phases; 8 // (2 * 4) = 1 round over four, then 8 // (2 * 2) = 2 over two.
    assert table[4].tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    # m = 3: ceil(log2 3) = 2 phases; 8 // 6 = 1 round over three, then 2 rounds over two.
    assert table[3].tolist() == [0, 0, 0, 1, 1, 2, 2, 3]


@pytest.mark.parametrize(("m", "sims"), [(16, 50), (5, 7), (16, 3), (8, 200), (2, 1)])
def test_visits_follow_the_schedule(m: int, sims: int) -> None:
    """Replaying the schedule with "visit an action that has exactly k visits" never runs out
    of candidates, and the total is the simulation count."""
    visits = [0] * m
    for k in considered_visit_table(m, sims)[m].tolist():
        candidates = [a for a in range(m) if visits[a] == k]
        assert candidates, f"no action with {k} visits: {visits}"
        visits[candidates[0]] += 1
    assert sum(visits) == sims
