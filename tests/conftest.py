"""Test-session settings: offline, headless, one torch thread per test process.

pytest-xdist runs one worker per core; torch's default of one thread per core in every worker
oversubscribes the machine, and small models then run many times slower.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mtrl_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``MTRL_CACHE`` pointed at a session-wide folder: generated games are made once per
    session and nothing is written into the user's own cache."""
    folder = tmp_path_factory.mktemp("mtrl-cache")
    previous = os.environ.get("MTRL_CACHE")
    os.environ["MTRL_CACHE"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["MTRL_CACHE"]
    else:
        os.environ["MTRL_CACHE"] = previous


@pytest.fixture
def cuda_device() -> torch.device:
    """The GPU, for tests of the GPU paths; CI has none, so they skip there (their CPU twins
    run everywhere)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: GPU paths are tested on GPU machines only")
    return torch.device("cuda")
