"""Atari, DMC and classic adapters: shapes, dtypes, determinism, bounds and reset semantics."""

import numpy as np
import pytest

from mtrl.envs.base import TaskEnv
from mtrl.envs.check import random_action
from mtrl.envs.make import make_env
from mtrl.envs.settings import EnvSettings


def rollout(env: TaskEnv, seed: int, steps: int) -> tuple[list, list[float]]:
    rng = np.random.default_rng(seed)
    step = env.reset(seed=seed)
    observations, rewards = [step.obs], []
    for _ in range(steps):
        step = env.step(random_action(env, step, rng))
        observations.append(step.obs)
        rewards.append(step.reward)
        if step.done:
            step = env.reset()
    return observations, rewards


@pytest.mark.parametrize(
    ("task_id", "shape", "dtype"),
    [
        ("atari/Pong", (3, 64, 64), np.uint8),
        ("dmc/cheetah-run", (17,), np.float32),
        ("classic/CartPole", (4,), np.float32),
        ("classic/Pendulum", (3,), np.float32),
    ],
)
def test_shapes_dtypes_and_determinism_under_a_seed(task_id: str, shape: tuple, dtype) -> None:
    first_obs, first_rewards = rollout(make_env(task_id, seed=3), seed=3, steps=40)
    again_obs, again_rewards = rollout(make_env(task_id, seed=3), seed=3, steps=40)
    assert all(o.shape == shape and o.dtype == dtype for o in first_obs)
    assert all(np.array_equal(a, b) for a, b in zip(first_obs, again_obs, strict=True))
    assert first_rewards == again_rewards
    other_obs, _ = rollout(make_env(task_id, seed=4), seed=4, steps=40)
    assert not all(np.array_equal(a, b) for a, b in zip(first_obs, other_obs, strict=True))


def test_atari_settings_change_the_frames() -> None:
    settings = EnvSettings().with_overrides(
        {"atari.size": 84, "atari.grayscale": True, "atari.frame_stack": 4}
    )
    env = make_env("atari/Breakout", settings, seed=0)
    assert env.spec.obs_shape == (4, 84, 84)
    first = env.reset(seed=0)
    assert first.obs.shape == (4, 84, 84)
    assert np.all(first.obs[:3] == 0)  # a fresh episode's stack is padded with blank frames
    step = env.step(1)
    assert np.array_equal(step.obs[2], first.obs[3])  # the stack shifts by one frame


def test_atari_life_loss_is_a_signal_not_an_episode_end() -> None:
    env = make_env("atari/Breakout", seed=0)
    env.reset(seed=0)
    life_losses, step = 0, None
    for _ in range(400):
        step = env.step(0)  # alternate NOOP and FIRE: the ball is served and then missed
        step = env.step(1)
        life_losses += step.info["life_loss"]
        if step.done:
            break
    assert life_losses >= 1
    assert step is not None and step.terminated  # all 5 lives lost ends the game


def test_atari_noop_starts_vary_the_first_frame() -> None:
    settings = EnvSettings().with_overrides({"atari.noop_max": 30})
    firsts = [make_env("atari/Seaquest", settings).reset(seed=s).obs for s in range(4)]
    assert len({f.tobytes() for f in firsts}) > 1


def test_dmc_episode_is_truncated_at_the_limit_with_returns_on_1000_scale() -> None:
    env = make_env("dmc/cartpole-balance", seed=0)
    env.reset(seed=0)
    total, steps, step = 0.0, 0, None
    while True:
        step = env.step(np.zeros(1, dtype=np.float32))
        total, steps = total + step.reward, steps + 1
        if step.done:
            break
    assert steps == env.spec.max_episode_steps == 250
    assert step.truncated and not step.terminated
    assert 0.0 < total <= 1000.0
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(1, dtype=np.float32))


def test_dmc_action_repeat_setting() -> None:
    settings = EnvSettings().with_overrides({"dmc.action_repeat": 2})
    env = make_env("dmc/walker-walk", settings)
    assert env.spec.action_repeat == 2 and env.spec.max_episode_steps == 500


def test_dmc_pixels_option_renders_frames() -> None:
    settings = EnvSettings().with_overrides({"dmc.pixels": True, "dmc.pixel_size": 32})
    env = make_env("dmc/cartpole-swingup", settings, seed=0)
    step = env.reset(seed=0)
    assert env.spec.modality.value == "image" and step.obs.shape == (3, 32, 32)
    assert step.obs.dtype == np.uint8 and step.obs.std() > 0


@pytest.mark.parametrize(
    ("task_id", "bad", "message"),
    [
        ("atari/Pong", 18, "illegal action 18"),
        ("atari/Pong", -1, "illegal action -1"),
        ("classic/CartPole", 2.5, "illegal action 2.5"),
        ("dmc/cheetah-run", np.zeros(5, dtype=np.float32), r"shape \(6,\)"),
        ("dmc/cheetah-run", np.full(6, np.nan, dtype=np.float32), "non-finite"),
    ],
)
def test_bad_actions_raise_naming_the_value(task_id: str, bad, message: str) -> None:
    env = make_env(task_id, seed=0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(bad)


def test_continuous_actions_are_clipped_to_bounds() -> None:
    env = make_env("classic/Pendulum", seed=0)
    env.reset(seed=0)
    assert env._to_env(np.array([5.0], dtype=np.float32))[0] == pytest.approx(2.0)
    assert env._to_env(np.array([-1.0], dtype=np.float32))[0] == pytest.approx(-2.0)


def test_reset_returns_zero_reward_and_no_end() -> None:
    for task_id in ("atari/Pong", "dmc/reacher-easy", "classic/Acrobot"):
        step = make_env(task_id, seed=1).reset(seed=1)
        assert step.reward == 0.0 and not step.done
