"""TextWorld adapter on a generated game (coin collector, level 1; generated once a session)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mtrl.envs.registry import get_task
from mtrl.envs.settings import TextSettings
from mtrl.envs.spec import TaskSpec
from mtrl.envs.text import textworld_env
from mtrl.envs.text.games import TINY_TEXT_TASK, game
from mtrl.envs.text.textworld_env import TextWorldEnv

COIN = game(TINY_TEXT_TASK.partition("/")[2])


def make(spec: TaskSpec, settings: TextSettings, seed: int | None = 0) -> TextWorldEnv:
    return TextWorldEnv(spec, settings, COIN, seed=seed)


def test_step_shapes_and_types(coin_game_file: Path, coin_spec: TaskSpec) -> None:
    env = make(coin_spec, TextSettings())
    first = env.reset(seed=1)
    assert isinstance(first.obs, str) and "Location:" in first.obs and "coin" in first.obs
    assert "$$" not in first.obs  # the ASCII-art banner is not part of the observation
    assert first.reward == 0.0 and not first.done
    assert first.legal.dtype == np.bool_ and first.legal.shape == (env.spec.action.n,)
    assert len(first.commands) == first.legal.sum() <= env.spec.action.n
    assert all(isinstance(c, str) for c in first.commands)
    assert list(first.commands) == sorted(first.commands)
    assert "take coin" in first.commands


def test_winning_sequence_scores_the_max_and_terminates(
    coin_game_file: Path, coin_spec: TaskSpec
) -> None:
    env = make(coin_spec, TextSettings())
    step = env.reset(seed=0)
    last = env.step(step.commands.index("take coin"))
    assert last.reward == env.max_score == coin_spec.max_score == 1.0
    assert last.terminated and not last.truncated and last.info["won"]
    assert last.commands == () and not last.legal.any()
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(0)
    again = env.reset()
    assert again.reward == 0.0 and "take coin" in again.commands


def test_step_before_reset_and_illegal_actions(coin_game_file: Path, coin_spec: TaskSpec) -> None:
    env = make(coin_spec, TextSettings())
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    step = env.reset(seed=0)
    n_legal = int(step.legal.sum())
    for bad in (n_legal, -1, env.spec.action.n, 0.5):
        with pytest.raises(ValueError, match="illegal action"):
            env.step(bad)
    assert env.step(np.array([0])).reward == 0.0  # a one-element array is an index too


def test_same_seed_same_episode(coin_game_file: Path, coin_spec: TaskSpec) -> None:
    def rollout(seed: int) -> list[tuple[str, tuple[str, ...] | None, float]]:
        env = make(coin_spec, TextSettings(), seed=seed)
        rng = np.random.default_rng(seed)
        step, out = env.reset(), []
        for _ in range(6):
            out.append((step.obs, step.commands, step.reward))
            if step.done:
                step = env.reset()
            else:
                step = env.step(int(rng.choice(np.flatnonzero(step.legal))))
        return out

    assert rollout(3) == rollout(3)


def test_truncates_at_the_step_limit(coin_game_file: Path, coin_spec: TaskSpec) -> None:
    env = make(replace(coin_spec, max_episode_steps=2), TextSettings())
    step = env.reset(seed=0)
    step = env.step(step.commands.index("look"))
    assert not step.done
    step = env.step(step.commands.index("look"))
    assert step.truncated and not step.terminated and step.legal.any()
    with pytest.raises(RuntimeError):
        env.step(0)


def test_capping_follows_the_setting(coin_game_file: Path, coin_spec: TaskSpec) -> None:
    env = make(coin_spec, TextSettings(max_commands=2))
    step = env.reset(seed=0)
    assert env.spec.action.n == 2 and step.legal.shape == (2,) and step.legal.all()
    # Uncapped: examine coin, inventory, look, take coin; acting is kept before looking.
    assert "take coin" in step.commands and len(step.commands) == 2


def test_cached_game_is_not_regenerated(
    coin_game_file: Path, coin_spec: TaskSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    mtime = coin_game_file.stat().st_mtime_ns

    def refuse(*args: object) -> None:
        raise AssertionError("a cached game was generated again")

    monkeypatch.setattr(textworld_env, "generate_game", refuse)
    env = make(coin_spec, TextSettings())
    assert env.path == coin_game_file and coin_game_file.stat().st_mtime_ns == mtime
    assert env.reset().commands


def test_generation_is_atomic_and_race_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def fake_generate(entry: object, path: Path) -> None:
        calls.append(path)
        path.write_text(f"game {len(calls)}")

    monkeypatch.setattr(textworld_env, "generate_game", fake_generate)
    folder = tmp_path / "textworld" / "some-game"
    textworld_env._generate_into(folder, COIN)
    # A second process that lost the race: its rename fails, its copy is dropped quietly.
    textworld_env._generate_into(folder, COIN)
    assert len(calls) == 2 and calls[0].parent != folder
    assert (folder / textworld_env.GAME_FILE).read_text() == "game 1"
    assert os.listdir(folder.parent) == ["some-game"]  # no temp folders left behind


@pytest.mark.parametrize("name", ["tw-treasure_hunter-l1", "tw-simple-dense"])
def test_table_max_score_matches_the_generated_game(name: str, text_cache: Path) -> None:
    env = TextWorldEnv(get_task(f"text/{name}"), TextSettings(), game(name), seed=0)
    assert env.max_score == env.spec.max_score
