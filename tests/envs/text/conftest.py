"""Fixtures for the text-environment tests: one cache of generated games per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtrl.envs.registry import get_task
from mtrl.envs.spec import TaskSpec
from mtrl.envs.text.games import TINY_TEXT_TASK, game


@pytest.fixture(scope="session")
def text_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``MTRL_CACHE`` pointed at a session-wide folder, so each game is generated once."""
    folder = tmp_path_factory.mktemp("mtrl-cache")
    previous = os.environ.get("MTRL_CACHE")
    os.environ["MTRL_CACHE"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["MTRL_CACHE"]
    else:
        os.environ["MTRL_CACHE"] = previous


@pytest.fixture(scope="session")
def coin_spec() -> TaskSpec:
    return get_task(TINY_TEXT_TASK)


@pytest.fixture(scope="session")
def coin_game_file(text_cache: Path) -> Path:
    """The tiny TextWorld game (coin collector, level 1), generated once per session."""
    from mtrl.envs.text.textworld_env import game_path

    return game_path(game(TINY_TEXT_TASK.partition("/")[2]))
