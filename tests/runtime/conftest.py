"""One local Ray per test session (starting one takes seconds), started the way launchers start
theirs: loopback only, watched so that nothing outlives the test process."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtrl.runtime import local_ray


@pytest.fixture(scope="session")
def ray_local(mtrl_cache: Path) -> Iterator[None]:
    os.environ.pop("RAY_ADDRESS", None)
    env = {
        k: os.environ[k] for k in ("MTRL_CACHE", "MUJOCO_GL", "HF_HUB_OFFLINE") if k in os.environ
    }
    local_ray.start(num_cpus=2, env_vars=env, log_to_driver=False)
    yield
    local_ray.shutdown()
