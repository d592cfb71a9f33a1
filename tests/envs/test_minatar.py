"""MinAtar through the registry, the adapter and ``MultiTaskEnv`` (mixed with vector tasks)."""

from __future__ import annotations

import sys

import minatar  # a main dependency: its absence is a failure, not a skip
import numpy as np
import pytest

from mtrl.envs import get_suite, get_task
from mtrl.envs.make import make_env
from mtrl.envs.settings import EnvSettings
from mtrl.envs.vector import MultiTaskEnv

GAMES = ("Breakout", "Asterix", "Freeway", "Seaquest", "SpaceInvaders")
MIXED = [*(f"minatar/{g}" for g in GAMES), "classic/CartPole", "dmc/cartpole-balance"]


def settings(**values: object) -> EnvSettings:
    return EnvSettings().with_overrides({f"minatar.{k}": v for k, v in values.items()})


def test_registry_matches_the_installed_games() -> None:
    specs = get_suite("minatar")
    assert [s.name for s in specs] == list(GAMES)
    for spec in specs:
        game = minatar.Environment(spec.source)
        channels = game.state_shape()[2]
        assert spec.obs_shape == (channels, 10, 10) and spec.modality.value == "image"
        assert spec.action.n == len(game.minimal_action_set())  # the game's own set
        assert spec.random_score is not None and spec.random_score >= 0
    with pytest.raises(ValueError, match=r"unknown task 'minatar/Pong'; valid .*minatar/Breakout"):
        get_task("minatar/Pong")


def random_legal(obs_legal: np.ndarray, rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(obs_legal)))


def play(env: MultiTaskEnv, steps: int, seed: int) -> list[np.ndarray]:
    """Random legal actions for every row; the image arrays seen, in order."""
    rng = np.random.default_rng(seed)
    obs, frames = env.reset(), []
    for _ in range(steps):
        frames.append(obs.image.copy())
        actions = [
            rng.uniform(-1, 1, 1).astype(np.float32)
            if env.tasks[t].action.is_continuous
            else random_legal(obs.legal[row], rng)
            for row, t in enumerate(obs.task_ids)
        ]
        obs = env.step(actions).obs
    return frames


def test_minatar_batches_with_vector_tasks() -> None:
    env = MultiTaskEnv(MIXED, envs_per_task=2, seed=1)
    obs = env.reset()
    assert env.tasks.max_image_shape == (10, 10, 10)  # Seaquest has the most channels
    assert obs.image.shape == (10, 10, 10, 10) and obs.image.dtype == np.uint8
    assert set(np.unique(obs.image)) <= {0, 255}  # binary grids, as 0/255 frames
    assert obs.image_rows.tolist() == list(range(10))
    assert obs.vector.shape == (4, 5) and obs.vector_dims.tolist() == [4, 4, 5, 5]
    assert obs.legal.shape == (14, 6)  # Seaquest's 6 actions are the widest
    for row, task in enumerate(obs.task_ids):
        spec = env.tasks[task]
        n = 0 if spec.action.is_continuous else spec.action.n
        assert obs.legal[row, :n].all() and not obs.legal[row, n:].any()
        if spec.suite == "minatar":  # zero padding past the game's own channels
            assert not obs.image[row, spec.obs_shape[0] :].any()
    frames = play(env, 60, seed=0)
    assert sum(len(r) for r in env.recent_returns[:5]) > 0  # MinAtar episodes ended, reset
    assert all(f.shape == (10, 10, 10, 10) for f in frames)
    env.close()


def test_seeded_runs_repeat_and_seeds_differ() -> None:
    def frames(seed: int) -> np.ndarray:
        env = MultiTaskEnv(["minatar/Asterix", "minatar/SpaceInvaders"], seed=seed)
        out = np.stack(play(env, 40, seed=7))
        env.close()
        return out

    first = frames(11)
    assert np.array_equal(first, frames(11))
    assert not np.array_equal(first, frames(12))


def test_sticky_actions_take_effect() -> None:
    def paddle_after_moving_right(prob: float) -> int:
        env = make_env("minatar/Breakout", settings(sticky_action_prob=prob))
        step = env.reset(seed=0)
        start = int(np.flatnonzero(step.obs[0, 9])[0])  # channel 0: the paddle, bottom row
        for _ in range(3):
            step = env.step(2)  # "r" in Breakout's own set (n, l, r)
        return int(np.flatnonzero(step.obs[0, 9])[0]) - start

    assert paddle_after_moving_right(0.0) == 3
    assert paddle_after_moving_right(0.99) == 0  # the reset's no-op sticks


def test_difficulty_ramping_takes_effect() -> None:
    def noop_episode(ramping: bool) -> tuple[int, int]:
        env = make_env("minatar/Asterix", settings(difficulty_ramping=ramping))
        step, length = env.reset(seed=0), 0
        while not step.done:
            step, length = env.step(0), length + 1
        return length, env._env.env.difficulty_ramp()

    (length_on, ramp_on), (length_off, ramp_off) = noop_episode(True), noop_episode(False)
    assert ramp_on >= 1 and ramp_off == 0 and length_on != length_off


def test_time_limit_truncates() -> None:
    env = make_env("minatar/Freeway", settings(max_episode_steps=5))  # Freeway runs 2,500
    assert env.spec.max_episode_steps == 5
    step = env.reset(seed=0)
    for _ in range(5):
        assert not step.done
        step = env.step(0)
    assert step.truncated and not step.terminated


def test_bad_settings_and_actions_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"bad setting minatar.sticky_action_prob=1.5"):
        settings(sticky_action_prob=1.5)
    with pytest.raises(ValueError, match=r"unknown config key 'minatar.sticky'"):
        settings(sticky=0.1)
    env = make_env("minatar/Breakout")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"illegal action 3; legal indices now: \[0, 1, 2\]"):
        env.step(3)


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "minatar", None)  # import minatar -> ImportError
    with pytest.raises(ImportError, match=r"need the minatar package: pip install minatar"):
        make_env("minatar/Breakout")
