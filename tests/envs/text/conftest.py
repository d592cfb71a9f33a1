"""Fixtures for the text-environment tests: one cache of generated games per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtrl.envs.registry import get_task
from mtrl.envs.spec import TaskSpec
from mtrl.envs.text.games import TINY_TEXT_TASK, game


@pytest.fixture(scope="session")
def text_cache(mtrl_cache: Path) -> Path:
    """The session's private cache (see ``tests/conftest.py``): each game is generated once."""
    return mtrl_cache


@pytest.fixture(scope="session")
def coin_spec() -> TaskSpec:
    return get_task(TINY_TEXT_TASK)


@pytest.fixture(scope="session")
def coin_game_file(text_cache: Path) -> Path:
    """The tiny TextWorld game (coin collector, level 1), generated once per session."""
    from mtrl.envs.text.textworld_env import game_path

    return game_path(game(TINY_TEXT_TASK.partition("/")[2]))
