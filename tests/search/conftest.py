"""Search test fixtures: the C++ extension is compiled once per test session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `search_fakes`


@pytest.fixture(scope="session")
def cpp_extension() -> ModuleType:
    if shutil.which("c++") is None:
        pytest.skip("no C++ compiler on this machine: the cpp backend cannot be built")
    from mtrl.cuda.build import load_cpu_extension

    return load_cpu_extension()


@pytest.fixture(scope="session")
def cuda_extension() -> ModuleType:
    """The CUDA kernels, compiled once per session; skips where they cannot run."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the cuda backend is tested on GPU machines only")
    from mtrl.cuda.build import load_cuda_extension

    return load_cuda_extension()


@pytest.fixture(params=["torch", "cpp", pytest.param("cuda", marks=pytest.mark.gpu)])
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend; cpp and cuda request their compiled extension first (cuda skips without
    a GPU). Tests run cuda through ``search_fakes.search``, which bridges CPU fakes to the GPU."""
    if request.param in ("cpp", "cuda"):
        request.getfixturevalue(f"{request.param}_extension")
    return request.param


@pytest.fixture(params=["torch", "cpp"])
def host_backend(request: pytest.FixtureRequest) -> str:
    """The CPU backends only (for paths whose inputs live on the host)."""
    if request.param == "cpp":
        request.getfixturevalue("cpp_extension")
    return request.param
