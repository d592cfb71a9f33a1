"""bench/minatar_dqn.py: its TD target, ε schedule, replay ring, and a tiny run end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def dqn():
    return load_bench("minatar_dqn")


def test_td_target_stops_at_terminations_and_lets_the_online_net_pick(dqn) -> None:
    reward = torch.tensor([1.0, 0.5])
    terminated = torch.tensor([1.0, 0.0])
    next_online = torch.tensor([[0.0, 9.0], [5.0, 1.0]])  # picks action 1, then action 0
    next_target = torch.tensor([[3.0, 4.0], [2.0, 7.0]])  # scores what the online net picked
    goal = dqn.td_target(reward, terminated, next_online, next_target, gamma=0.5)
    torch.testing.assert_close(goal, torch.tensor([1.0, 0.5 + 0.5 * 2.0]))


def test_epsilon_falls_linearly_then_holds(dqn) -> None:
    config = dqn.DqnConfig(explore_steps=100, epsilon_end=0.1)
    assert dqn.epsilon(config, 0) == 1.0
    assert dqn.epsilon(config, 50) == pytest.approx(0.55)
    assert dqn.epsilon(config, 100) == pytest.approx(0.1)
    assert dqn.epsilon(config, 10_000) == pytest.approx(0.1)


def test_replay_ring_overwrites_the_oldest_row(dqn) -> None:
    replay = dqn.Replay(size=3, shape=(1, 2, 2))
    for i in range(4):
        replay.add(np.full((1, 2, 2), i, np.uint8), i, float(i), np.zeros((1, 2, 2)), i == 3)
    assert replay.count == 3 and sorted(replay.action.tolist()) == [1, 2, 3]
    obs, action, reward, _, terminated = replay.sample(np.random.default_rng(0), 50)
    assert set(action.tolist()) == {1, 2, 3}
    torch.testing.assert_close(reward, action.float())
    assert (obs[:, 0, 0, 0].long() == action).all() and (terminated == (action == 3)).all()


def test_tiny_run_evaluates_on_schedule_and_learns_after_the_warm_up(dqn) -> None:
    config = dqn.DqnConfig(
        game="Breakout",
        steps=400,
        learning_starts=100,
        eval_every=200,
        eval_episodes=1,
        target_every=50,
        explore_steps=200,
    )
    result = dqn.train(config)
    assert [e["step"] for e in result["evaluations"]] == [0, 200, 400]
    assert all(len(e["returns"]) == 1 for e in result["evaluations"])
    assert result["episodes"] and result["episodes"][-1]["end_step"] <= 400
    assert result["config"]["game"] == "Breakout"
    assert result["updates"] == 300  # one per step from learning_starts on
