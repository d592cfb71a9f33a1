"""Fixtures: the ``tiny`` suite (Atari, DMC, text, classic) and a seeded tiny model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from mtrl.envs import get_suite
from mtrl.envs.batch import TaskSet
from mtrl.world_models import WorldModel, WorldModelConfig, preset


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny ops run fastest on one thread, and far faster than 2 threads on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tasks() -> TaskSet:
    # Pong, Boxing (image, 18 actions), cartpole/pendulum swingup (vector, continuous),
    # tw-coin_collector (text, 20 commands), CartPole (vector, 2 discrete actions).
    return TaskSet(get_suite("tiny"))


@pytest.fixture
def cfg() -> WorldModelConfig:
    return preset("tiny")


@pytest.fixture
def model(tasks: TaskSet, cfg: WorldModelConfig) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(tasks, cfg)
