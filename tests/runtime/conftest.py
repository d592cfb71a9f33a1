"""One local Ray per test session (starting one takes seconds), bound to 127.0.0.1."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray


@pytest.fixture(scope="session")
def ray_local(mtrl_cache: Path) -> Iterator[None]:
    os.environ.pop("RAY_ADDRESS", None)
    env = {
        k: os.environ[k] for k in ("MTRL_CACHE", "MUJOCO_GL", "HF_HUB_OFFLINE") if k in os.environ
    }
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": env},
        log_to_driver=False,
    )
    yield
    ray.shutdown()
