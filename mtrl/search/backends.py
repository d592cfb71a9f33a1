"""Backend dispatch: one search loop, interchangeable tree kernels.

"torch" is the reference; "cpp" the C++ CPU backend and "cuda" the CUDA kernels, both from
mtrl/cuda and built at first use; "auto" picks by the device of the roots: cuda for CUDA
tensors, else cpp, falling back to torch with a warning when the C++ extension cannot be
built. An explicit "cuda" without a GPU or toolkit raises an error naming what is missing.
A new backend implements ``TreeBackend`` over the same ``Tree`` arrays.
"""

from __future__ import annotations

import subprocess
import warnings
from typing import Protocol

import torch

from mtrl.search.reference import TorchBackend
from mtrl.search.tree import Tree
from mtrl.search.types import BACKENDS, ModelOutput, SearchConfig

_cpp_failure: list[str] = []  # why the C++ build failed in this process, once it has


class TreeBackend(Protocol):
    name: str

    def select(self, sim: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def expand_and_backup(self, sim: int, out: ModelOutput) -> None: ...


def resolve_backend(name: str, device: torch.device) -> str:
    """The concrete backend for a requested name and the device the roots live on."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
    if name == "auto":
        return "cuda" if device.type == "cuda" else "auto"
    if device.type != "cpu" and name == "cpp":
        raise ValueError(f"backend {name!r} runs on the CPU, but the roots are on {device}")
    if device.type != "cuda" and name == "cuda":
        raise ValueError(
            f"backend 'cuda' needs the roots on a CUDA device, but they are on {device}"
        )
    return name


def make_backend(name: str, tree: Tree, config: SearchConfig) -> TreeBackend:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
    if name == "torch":
        return TorchBackend(tree, config)
    if name == "cuda":
        from mtrl.search.native_cuda import CudaBackend

        return CudaBackend(tree, config)
    from mtrl.search.native_cpu import CppBackend

    if name == "cpp":
        return CppBackend(tree, config)
    if _cpp_failure:  # "auto" after a failed build: do not recompile on every search
        return TorchBackend(tree, config)
    try:
        return CppBackend(tree, config)
    except (OSError, RuntimeError, ImportError, subprocess.CalledProcessError) as error:
        _cpp_failure.append(str(error))
        warnings.warn(
            f"C++ search backend unavailable ({error}); using the torch reference",
            RuntimeWarning,
            stacklevel=3,
        )
        return TorchBackend(tree, config)
