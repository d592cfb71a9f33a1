"""Agent-test fixtures: a private cache for generated text games, shared by the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def game_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("agents-cache")
    previous = os.environ.get("MTRL_CACHE")
    os.environ["MTRL_CACHE"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["MTRL_CACHE"]
    else:
        os.environ["MTRL_CACHE"] = previous
