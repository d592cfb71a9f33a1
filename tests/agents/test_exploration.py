"""Temporally-extended ε-greedy (``explore_hold``): held random actions while collecting only."""

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch

from mtrl.agents.acting import ActingConfig, ActResult
from mtrl.agents.collect import Collector
from mtrl.agents.exploration import HeldExploration
from mtrl.envs.registry import get_task
from mtrl.envs.vector import MultiTaskEnv

WIDTH, DIM, K = 6, 2, 3


def search_result(rows: int, rng: np.random.Generator) -> ActResult:
    """What the search chose: action 1 on every row, fresh continuous samples each step."""
    sampled = rng.uniform(-1, 1, (rows, K, DIM)).astype(np.float32)
    return ActResult(
        action_index=np.ones(rows, np.int64),
        action_vector=sampled[:, 0].copy(),
        policy=np.zeros((rows, WIDTH), np.float32),
        sampled=sampled,
        root_value=np.zeros(rows, np.float32),
    )


def run_lengths(actions: list[int]) -> list[int]:
    lengths, count = [], 1
    for before, now in itertools.pairwise(actions):
        if now == before:
            count += 1
        else:
            lengths.append(count)
            count = 1
    return [*lengths, count]


def test_held_actions_are_legal_and_come_in_heavy_tailed_runs() -> None:
    rng = np.random.default_rng(0)
    held = HeldExploration(1.0, np.array([2.0]), max_hold=100, action_dim=DIM)
    legal = np.zeros((1, WIDTH), bool)
    legal[0, [0, 2, 3, 5]] = True
    played = []
    for _ in range(3000):
        out = held.apply(search_result(1, rng), legal, np.array([False]), rng)
        played.append(int(out.action_index[0]))
        assert held.left[0] < 100
    assert set(played) == {0, 2, 3, 5}  # only legal actions, never the search's 1 (ε = 1)
    lengths = run_lengths(played)
    # Single random steps over 4 actions average runs of 4/3; zeta(2) holds of at most 100
    # average ~3.2 steps before a repeat of the same action merges two of them.
    assert np.mean(lengths) > 2.5 and max(lengths) >= 27


def test_continuous_rows_hold_one_of_the_searchs_samples() -> None:
    rng = np.random.default_rng(1)
    held = HeldExploration(1.0, np.array([1.5]), max_hold=50, action_dim=DIM)
    first = search_result(1, rng)
    out = held.apply(first, np.zeros((1, WIDTH), bool), np.array([True]), rng)
    assert any(np.array_equal(out.action_vector[0], s) for s in first.sampled[0])
    for _ in range(int(held.left[0])):  # the rest of the hold: the same vector, new searches
        again = held.apply(search_result(1, rng), np.zeros((1, WIDTH), bool), np.array([True]), rng)
        assert np.array_equal(again.action_vector[0], out.action_vector[0])


def test_a_hold_ends_with_its_episode_or_when_its_command_is_gone() -> None:
    rng = np.random.default_rng(2)
    held = HeldExploration(1.0, np.full(2, 1.01), max_hold=1000, action_dim=DIM)
    offered = np.zeros((2, WIDTH), bool)
    offered[:, :2] = True
    held.apply(search_result(2, rng), offered, np.array([False, False]), rng)
    held.left[:] = 500  # long holds on both rows
    held.end(np.array([1]))
    assert held.left.tolist() == [500, 0]
    others = np.zeros((2, WIDTH), bool)
    others[:, 2:4] = True  # a text game's new command list: the held index is no longer offered
    out = held.apply(search_result(2, rng), others, np.array([False, False]), rng)
    assert set(out.action_index.tolist()) <= {2, 3}


def test_no_epsilon_changes_nothing() -> None:
    rng = np.random.default_rng(3)
    held = HeldExploration(0.0, np.full(3, 2.0), max_hold=10, action_dim=DIM)
    result = search_result(3, rng)
    out = held.apply(result, np.ones((3, WIDTH), bool), np.array([False, True, False]), rng)
    assert np.array_equal(out.action_index, result.action_index)
    assert np.array_equal(out.action_vector, result.action_vector)


def test_settings_are_checked_and_evaluation_never_explores() -> None:
    with pytest.raises(ValueError, match="explore_hold"):
        ActingConfig(explore_hold=0.5)
    with pytest.raises(ValueError, match="explore_max_hold"):
        ActingConfig(explore_max_hold=0)
    config = ActingConfig(explore_epsilon=0.1, explore_hold=2.0)
    assert config.for_evaluation() == replace(config, explore_epsilon=0.0, explore_hold=0.0)
    per_task = ActingConfig(explore_epsilon=0.1, task_explore_holds=(("minatar/Freeway", 2.0),))
    assert per_task.holds_exploration and not per_task.for_evaluation().holds_exploration
    with pytest.raises(ValueError, match="explore_hold of minatar/Freeway"):
        ActingConfig(task_explore_holds=(("minatar/Freeway", 1.0),))


def test_holds_are_per_task_and_unknown_names_are_refused() -> None:
    # As a checkpoint's JSON gives them: lists, which the config turns into tuples.
    config = ActingConfig(
        explore_hold=3.0, task_explore_holds=[["minatar", 2.0], ["minatar/Breakout", 0.0]]
    )
    assert config.task_explore_holds == (("minatar", 2.0), ("minatar/Breakout", 0.0))
    specs = [get_task(t) for t in ("minatar/Breakout", "minatar/Freeway", "classic/CartPole")]
    assert config.explore_holds(specs).tolist() == [0.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="unknown tasks or suites: \\['minatar/Freewy'\\]"):
        ActingConfig(task_explore_holds=(("minatar/Freewy", 2.0),)).explore_holds(specs)


def test_a_row_without_holds_takes_single_random_steps() -> None:
    rng = np.random.default_rng(4)
    held = HeldExploration(0.5, np.array([0.0, 1.2]), max_hold=100, action_dim=DIM)
    legal = np.ones((2, WIDTH), bool)
    legal[:, 1] = False  # the search's choice is 1: any other action is an exploration step
    explored = np.zeros((2, 4000), bool)
    for step in range(4000):
        explored[:, step] = (
            held.apply(search_result(2, rng), legal, np.zeros(2, bool), rng).action_index != 1
        )
    # Row 0: each step explores with probability ε, on its own (plain ε-greedy); row 1's
    # holds make exploring steps come in long runs, so they are most of its steps.
    assert abs(explored[0].mean() - 0.5) < 0.03
    assert explored[1].mean() > 0.8
    runs0 = run_lengths(explored[0].astype(int).tolist())
    assert max(runs0) < 20


class AlwaysZero:
    """A stand-in actor whose search always picks action 0."""

    def __init__(self, config: ActingConfig) -> None:
        self.config = config

    def act(self, obs, discounts=None, temperature: float = 1.0, seed: int = 0) -> ActResult:
        rows = obs.size
        return ActResult(
            action_index=np.zeros(rows, np.int64),
            action_vector=np.zeros((rows, 1), np.float32),
            policy=np.full((rows, 2), 0.5, np.float32),
            sampled=np.zeros((rows, 1, 1), np.float32),
            root_value=np.zeros(rows, np.float32),
        )


class Actions:
    """A replay stand-in that keeps the stored actions."""

    def __init__(self) -> None:
        self.actions: list[int] = []

    def add(self, row, obs, legal, action, *rest) -> None:
        self.actions.append(int(action))

    def end_episode(self, row, final, terminated) -> None:
        pass


def test_the_collector_plays_and_stores_held_actions_only_while_collecting() -> None:
    config = ActingConfig(explore_epsilon=0.5, explore_hold=2.0)
    env = MultiTaskEnv(["classic/CartPole"], envs_per_task=2, seed=0)
    sink = Actions()
    collector = Collector(env, AlwaysZero(config), {0: sink}, torch.ones(1))
    collector.collect(100, temperature=0.0)
    assert set(sink.actions) == {0}  # evaluation-like: the search's choice only
    collector.collect(200, temperature=1.0, seed=1)
    explored = sink.actions[200:]
    assert 0.1 < np.mean(explored) < 0.5  # action 1 only ever comes from a held random action
    env.close()
