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


@pytest.fixture(params=["torch", "cpp"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend; cpp requests the compiled extension first."""
    if request.param == "cpp":
        request.getfixturevalue("cpp_extension")
    return request.param
