from dataclasses import replace

import numpy as np
import pytest

from mtrl.agents.replay import ReplayConfig, TaskReplay, batch_sizes
from mtrl.envs.registry import get_task

CONFIG = ReplayConfig(capacity=64, unroll_steps=3, n_step=2, discount=0.5)


def fill_episode(
    replay: TaskReplay, env: int, length: int, terminated: bool | None, first_reward: float = 0.0
) -> list[int]:
    """Steps with obs = step number, reward = first_reward + t; end it unless None."""
    rows = []
    for t in range(length):
        obs = np.full(replay.spec.obs_shape, t, dtype=np.float32)
        policy = np.full(replay.spec.action.n, 1.0 / replay.spec.action.n)
        rows.append(replay.add(env, obs, np.ones(2, bool), t % 2, first_reward + t, policy, 0.0))
    if terminated is not None:
        replay.end_episode(env, np.full(replay.spec.obs_shape, length, np.float32), terminated)
    return rows


def test_sequences_stay_inside_one_episode_with_correct_targets() -> None:
    replay = TaskReplay(get_task("classic/CartPole"), CONFIG)
    fill_episode(replay, env=0, length=3, terminated=True, first_reward=1.0)  # rows 0..3
    fill_episode(replay, env=0, length=5, terminated=False)  # rows 4..9
    batch = replay.sample(200, np.random.default_rng(0))
    for b in range(200):
        start = batch.rows[b, 0]
        if start == 1:  # s_1 of episode 1 (terminated after s_2 -> s_3 terminal)
            assert batch.rows[b].tolist() == [1, 2, 3, 3]
            assert batch.valid[b].tolist() == [True, True, True, False]
            assert batch.has_action[b].tolist() == [True, True, False]
            assert batch.policy_mask[b].tolist() == [True, True, False, False]
            assert batch.reward[b].tolist() == [2.0, 3.0, 0.0]
            assert batch.ended[b].tolist() == [0.0, 1.0, 0.0]  # s_2 -> s_3 ended the episode
            # z_1 = 2 + 0.5*3 (then terminal), z_2 = 3, z_3 = 0
            assert batch.reward_sum[b].tolist() == [3.5, 3.0, 0.0, 0.0]
            assert batch.bootstrap_weight[b].tolist() == [0.0, 0.0, 0.0, 0.0]
        if start == 5:  # s_1 of a truncated episode: bootstrap from s_3 and s_5 (final)
            assert batch.rows[b].tolist() == [5, 6, 7, 8]
            assert batch.reward_sum[b].tolist() == [1 + 0.5 * 2, 2 + 0.5 * 3, 3 + 0.5 * 4, 4.0]
            assert batch.bootstrap_rows[b].tolist() == [7, 8, 9, 9]
            assert batch.bootstrap_weight[b].tolist() == [0.25, 0.25, 0.25, 0.5]
        if start == 7:  # the truncated episode's last transition s_3 -> s_4 ended nothing
            assert batch.has_action[b].tolist() == [True, True, False]
            assert not batch.ended[b].any()
    assert not np.any(batch.rows[:, 0] == 3) and not np.any(batch.rows[:, 0] == 9)  # finals
    episodes = np.where(batch.rows <= 3, 0, 1)
    assert np.all(episodes == episodes[:, :1])  # never crosses an episode boundary


def test_task_discounts_override_by_task_id_then_suite() -> None:
    cartpole, acrobot = get_task("classic/CartPole"), get_task("classic/Acrobot")
    balance = get_task("dmc/cartpole-balance")
    config = replace(CONFIG, task_discounts=(("classic", 0.9), ("classic/CartPole", 0.25)))
    assert config.discounts([cartpole, acrobot, balance]).tolist() == pytest.approx(
        [0.25, 0.9, 0.5]
    )
    replay = TaskReplay(cartpole, config)
    fill_episode(replay, env=0, length=3, terminated=False, first_reward=1.0)  # truncated
    batch = replay.sample(200, np.random.default_rng(0))
    first = batch.rows[:, 0] == 0
    assert first.any()
    # z_0 = 1 + 0.25 * 2 + 0.25^2 * V(s_2): the n-step sum and bootstrap use CartPole's 0.25.
    assert np.allclose(batch.reward_sum[first, 0], 1.5)
    assert np.allclose(batch.bootstrap_weight[first, 0], 0.0625)
    # Registered tasks and suites outside the run are ignored, names of none are refused.
    others = replace(config, task_discounts=(*config.task_discounts, ("atari", 0.1)))
    assert others.discounts([cartpole, balance]).tolist() == pytest.approx([0.25, 0.5])
    with pytest.raises(ValueError, match=r"unknown tasks or suites: \['atar', 'dmc/walker-wlk'\]"):
        replace(CONFIG, task_discounts=(("atar", 0.9), ("dmc/walker-wlk", 0.9))).discounts(
            [cartpole, balance]
        )
    with pytest.raises(ValueError, match=r"discount of text must be in \(0, 1\], got 1.5"):
        ReplayConfig(task_discounts=(("text", 1.5),))


def test_running_episode_bootstraps_from_its_newest_row() -> None:
    replay = TaskReplay(get_task("classic/CartPole"), CONFIG)
    fill_episode(replay, env=7, length=4, terminated=None)
    batch = replay.sample(100, np.random.default_rng(1))
    newest = batch.rows[:, 0] == 3
    assert newest.any()
    assert np.all(batch.bootstrap_rows[newest, 0] == 3)
    assert np.all(batch.bootstrap_weight[newest, 0] == 1.0)  # V(s_3), not terminal


def test_overwritten_rows_are_never_sampled() -> None:
    replay = TaskReplay(get_task("classic/CartPole"), ReplayConfig(capacity=8, unroll_steps=2))
    fill_episode(replay, env=0, length=20, terminated=True)
    batch = replay.sample(300, np.random.default_rng(2))
    assert batch.rows.min() >= replay.total_added - 8
    assert len(replay) == 8


def test_interleaved_envs_keep_separate_episodes() -> None:
    replay = TaskReplay(get_task("classic/CartPole"), CONFIG)
    for t in range(4):
        for env in (0, 1):
            obs = np.full(4, 10 * env + t, np.float32)
            replay.add(env, obs, np.ones(2, bool), 0, float(env), np.full(2, 0.5), 0.0)
    batch = replay.sample(100, np.random.default_rng(3))
    obs = replay.observations(batch.rows)[..., 0]
    env_of = obs // 10
    assert np.all(env_of == env_of[:, :1])
    assert np.all(batch.reward == env_of[:, :3] * batch.has_action)


def test_bytes_per_step_matches_the_documented_formula() -> None:
    atari = TaskReplay(get_task("atari/Pong"), ReplayConfig(capacity=16))
    assert atari.bytes_per_step == 3 * 64 * 64 + 30 + 4 * 18 + 18
    dmc_config = ReplayConfig(capacity=16, compact_vectors=True, sampled_actions=8)
    dmc = TaskReplay(get_task("dmc/walker-walk"), dmc_config)
    assert dmc.bytes_per_step == 2 * 24 + 30 + 4 * 8 + 4 * 6 * (8 + 1)


def test_priorities_skew_sampling_and_give_importance_weights() -> None:
    config = ReplayConfig(capacity=64, unroll_steps=1, priority_exponent=1.0)
    replay = TaskReplay(get_task("classic/CartPole"), config)
    rows = np.array(fill_episode(replay, env=0, length=10, terminated=True))
    replay.set_priorities(rows, np.where(rows == 4, 100.0, 1.0))
    batch = replay.sample(2000, np.random.default_rng(4))
    share = np.mean(batch.rows[:, 0] == 4)
    assert 0.85 < share < 0.95  # 100 / 109
    assert batch.weight[batch.rows[:, 0] == 4].max() < batch.weight.max()


def test_rows_without_a_priority_are_sampled_like_new_rows() -> None:
    """A replay restored from a uniform run holds zero priorities: sampling by priority must
    treat those rows as new (the max priority), not skip them or divide by zero."""
    config = ReplayConfig(capacity=64, unroll_steps=1, priority_exponent=1.0)
    replay = TaskReplay(get_task("classic/CartPole"), config)
    rows = np.array(fill_episode(replay, env=0, length=10, terminated=True))
    replay.priority[:] = 0.0
    replay.set_priorities(rows[:2], np.array([3.0, 0.5]))
    batch = replay.sample(4000, np.random.default_rng(5))
    shares = np.array([np.mean(batch.rows[:, 0] == row) for row in rows[:9]])
    assert shares[1] < 0.04  # 0.5 / 27.5 (10 rows: 3, 0.5 and eight at the max)
    assert np.all((shares[2:] > 0.09) & (shares[2:] < 0.16))  # 3 / 27.5: the max priority


def test_continuous_tasks_store_sampled_actions() -> None:
    replay = TaskReplay(get_task("dmc/cartpole-swingup"), CONFIG)
    samples = np.linspace(-1, 1, 8, dtype=np.float32)[:, None]
    for _ in range(3):
        replay.add(
            0,
            np.zeros(5, np.float32),
            np.zeros(0, bool),
            np.array([0.3], np.float32),
            1.0,
            np.full(8, 1 / 8),
            0.0,
            sampled_actions=samples,
        )
    batch = replay.sample(4, np.random.default_rng(5))
    assert batch.sampled.shape == (4, 4, 8, 1) and batch.action_vector.shape == (4, 3, 1)
    assert np.allclose(batch.action_vector[batch.has_action], 0.3)


def test_batch_sizes_equal_and_by_need() -> None:
    assert batch_sizes(10, ["a", "b", "c"]) == {"a": 4, "b": 3, "c": 3}
    assert batch_sizes(10, ["a", "b"], {"a": 3.0, "b": 1.0}) == {"a": 8, "b": 2}
    with pytest.raises(ValueError, match="need must be"):
        batch_sizes(10, ["a"], {"a": 0.0})


def test_errors() -> None:
    replay = TaskReplay(get_task("classic/CartPole"), CONFIG)
    with pytest.raises(ValueError, match="no sampleable step"):
        replay.sample(1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no running episode"):
        replay.end_episode(3, np.zeros(4, np.float32), True)
    with pytest.raises(ValueError, match="too small"):
        ReplayConfig(capacity=3, unroll_steps=5)
