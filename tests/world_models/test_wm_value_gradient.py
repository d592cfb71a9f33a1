"""The value-gradient policy term (``policy_value_coef``): what it trains and what it leaves."""

from __future__ import annotations

import copy

import torch
from test_wm_model import randomize
from wm_helpers import random_actions, random_batch, random_obs

from mtrl.envs.batch import TaskSet
from mtrl.world_models import WorldModel, preset
from mtrl.world_models.losses import score_scale, value_gradient
from mtrl.world_models.types import Observations, TaskGroups, observations_from_batch

ROWS = [2, 3, 0, 2, 4, 3]  # continuous, continuous, image, continuous, text, continuous
GAMMA = torch.full((6,), 0.99)


def expected_score(model: WorldModel, critic: WorldModel, obs: Observations, h) -> torch.Tensor:
    """[N] the critic's r + γ V of the policy's actions, mean of 64 fixed noise draws."""
    groups, gen = TaskGroups.of(obs.task_ids), torch.Generator().manual_seed(0)
    with torch.no_grad():
        _, mean, log_std = model.pi(h, groups, *model.commands(obs))
        root = critic.initial_inference(obs)
        scores = []
        for _ in range(64):
            noise = torch.randn(mean.shape, generator=gen)
            action = model.clip_actions(mean + log_std.exp() * noise, obs.task_ids)
            step = critic.recurrent_inference(root.state, action)
            scores.append(step.reward + 0.99 * step.value)
    return torch.stack(scores).mean(0)


def test_the_policy_climbs_the_critics_score_and_nothing_else_learns(tasks: TaskSet) -> None:
    """A random critic is a rough landscape: 100 noisy steps raise the continuous rows'
    expected score by 83 % in all (43.5 -> 79.6); nothing but the policy head learns."""
    torch.manual_seed(0)
    model = WorldModel(tasks, preset("tiny"))
    critic = copy.deepcopy(model).requires_grad_(False)
    randomize(critic)
    obs = observations_from_batch(random_obs(tasks, ROWS, seed=3))
    groups = TaskGroups.of(obs.task_ids)
    h = torch.randn(len(ROWS), model.cfg.embed_dim)
    offered = model.commands(obs)
    continuous = torch.tensor([0, 1, 3, 5])
    before = expected_score(model, critic, obs, h)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    for step in range(100):
        optimizer.zero_grad()
        loss = value_gradient(model, critic, obs, h, offered, groups, GAMMA)
        assert loss[[2, 4]].eq(0).all()  # image and text rows: no term
        loss.sum().backward()
        if step == 0:
            learned = {n for n, p in model.named_parameters() if p.grad is not None}
            assert learned and all(n.startswith("policy_head.") for n in learned), learned
            assert all(p.grad is None for p in critic.parameters())
        optimizer.step()
    after = expected_score(model, critic, obs, h)
    assert after[continuous].sum() > 1.4 * before[continuous].sum(), (before, after)
    torch.testing.assert_close(after[[2, 4]], before[[2, 4]])  # untouched rows


def test_the_scale_is_each_tasks_spread_not_its_offset() -> None:
    score = torch.tensor([100.0, 110.0, 120.0, 0.1, 0.2, 0.3])
    groups = TaskGroups.of(torch.tensor([2, 2, 2, 3, 3, 3]))
    scale = score_scale(score, groups)
    torch.testing.assert_close(scale[:3], torch.full((3,), 18.0))  # 95th - 5th percentile
    torch.testing.assert_close(scale[3:], torch.ones(3))  # a spread below 1 is not blown up
    torch.testing.assert_close(score_scale(score + 1e4, groups), scale)


def test_the_learner_adds_the_term_only_when_its_coefficient_is_set(tasks: TaskSet) -> None:
    batch = random_batch(tasks, ROWS, steps=3)
    losses = []
    for coef in (0.0, 1.0):
        torch.manual_seed(0)
        model = WorldModel(tasks, preset("tiny", policy_value_coef=coef))
        critic = copy.deepcopy(model).requires_grad_(False)
        randomize(critic)
        losses.append(model.losses(batch, critic, GAMMA).policy.detach())
    moved = (losses[1] - losses[0]).abs() > 1e-6
    assert moved.tolist() == [False, False, True, True, False, False]  # continuous tasks only


def test_observations_select_keeps_each_rows_own_observation(tasks: TaskSet) -> None:
    obs = observations_from_batch(random_obs(tasks, ROWS, seed=4))
    rows = torch.tensor([1, 2, 4, 5])
    picked = obs.select(rows)
    assert picked.task_ids.tolist() == [3, 0, 4, 3]
    assert picked.image_rows.tolist() == [1] and picked.text_rows.tolist() == [2]
    assert picked.vector_rows.tolist() == [0, 3]
    torch.testing.assert_close(picked.vector, obs.vector[[1, 3]])  # rows 1 and 5 of 4 vectors
    assert picked.text == obs.text and picked.commands == obs.commands


def test_an_imagined_step_differentiates_to_its_action(tasks: TaskSet) -> None:
    """With autograd on, the step copies each layer's cache: same outputs as search's step."""
    torch.manual_seed(0)
    model = WorldModel(tasks, preset("tiny"))
    randomize(model)
    obs = random_obs(tasks, ROWS, seed=5)
    actions = random_actions(tasks, ROWS, (), seed=1)
    with torch.no_grad():
        root = model.initial_inference(obs)
        searched = model.recurrent_inference(root.state, actions)
    vector = actions.vector.clone().requires_grad_(True)
    step = model.recurrent_inference(root.state, type(actions)(actions.index, vector))
    torch.testing.assert_close(step.value, searched.value)
    torch.testing.assert_close(step.reward, searched.reward)
    (step.value + step.reward).sum().backward()
    assert vector.grad is not None and vector.grad[[0, 1, 3, 5]].abs().sum() > 0
