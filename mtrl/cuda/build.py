"""Build-at-first-use loader for the native search kernels.

The C++ sources live next to this file and are compiled with torch.utils.cpp_extension (ninja)
the first time they are needed; the build directory is cached under $MTRL_BUILD_DIR or
~/.cache/mtrl, keyed by the sources' hash and the torch version, so later processes just load.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

SOURCE_DIR = Path(__file__).resolve().parent
CPU_SOURCES = ("search_cpu.cpp", "search_cpu_summary.cpp")
CPU_HEADERS = ("search_cpu_common.h", "tree_pool.h")
# -ffp-contract=off: no fused multiply-adds, so float arithmetic rounds exactly like the
# torch reference's separate kernels (bit-identical trees).
CPU_CFLAGS = ("-O3", "-ffp-contract=off", "-fno-fast-math")
CUDA_SOURCES = ("search_cuda.cpp", "search_kernels.cu")
CUDA_HEADERS = ("search_kernels.cuh",)
# --fmad=false for the same reason: nvcc fuses a * b + c by default.
CUDA_FLAGS = ("-O3", "--fmad=false", "-std=c++17")
# A build takes a minute or two: a build lock older than this was left by a dead process.
STALE_LOCK_S = 900.0


def build_root() -> Path:
    return Path(os.environ.get("MTRL_BUILD_DIR", "~/.cache/mtrl")).expanduser()


def _build_dir(name: str, sources: tuple[str, ...], flags: tuple[str, ...]) -> Path:
    digest = hashlib.sha256()
    for source in sources:
        digest.update((SOURCE_DIR / source).read_bytes())
    digest.update(" ".join(flags).encode())
    tag = f"{name}-torch{torch.__version__}-{digest.hexdigest()[:12]}"
    path = build_root() / tag
    path.mkdir(parents=True, exist_ok=True)
    return path


def _ensure_ninja_on_path() -> None:
    """cpp_extension runs `ninja` from PATH; an un-activated venv has it only in its bin dir."""
    if shutil.which("ninja"):
        return
    try:
        import ninja  # the pip package the project depends on

        bin_dir = str(ninja.BIN_DIR)
    except ImportError:
        bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _load(name: str, build_dir: Path, **build: Any) -> ModuleType:
    """The extension from ``build_dir``, compiled first if it has never been completed there.

    A finished build is imported directly, without torch's build lock: a process killed while
    holding that lock (SIGKILL of a driver at start-up) would otherwise make every later
    process wait on it forever. The ``complete`` marker is written only after a build loaded.
    """
    library, marker = build_dir / f"{name}.so", build_dir / "complete"
    if marker.exists() and library.exists():
        spec = importlib.util.spec_from_file_location(name, library)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    from torch.utils.cpp_extension import load

    _clear_stale_lock(build_dir / "lock")
    _ensure_ninja_on_path()
    module = load(name=name, build_directory=str(build_dir), verbose=False, **build)
    marker.touch()
    return module


def _clear_stale_lock(lock: Path) -> None:
    """torch's build lock left by a process killed mid-build would block every later build
    forever; a build takes a minute or two, so a lock older than STALE_LOCK_S is a dead one."""
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return
    if age > STALE_LOCK_S:
        warnings.warn(f"removing a stale build lock ({age:.0f} s old): {lock}", stacklevel=3)
        lock.unlink(missing_ok=True)


@functools.lru_cache(maxsize=1)
def load_cpu_extension() -> ModuleType:
    """Compile (once per source version) and import the C++ CPU search kernels."""
    name = "mtrl_search_cpu"
    return _load(
        name,
        _build_dir(name, CPU_SOURCES + CPU_HEADERS, CPU_CFLAGS),
        sources=[str(SOURCE_DIR / source) for source in CPU_SOURCES],
        extra_cflags=list(CPU_CFLAGS),
    )


def cuda_unavailable_reason() -> str | None:
    """Why the CUDA kernels cannot be built or run here, or None when they can."""
    from torch.utils.cpp_extension import CUDA_HOME

    if not torch.cuda.is_available():
        return "no CUDA device is visible to torch (torch.cuda.is_available() is False)"
    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support"
    if CUDA_HOME is None:
        return "no CUDA toolkit found (nvcc): install it or set CUDA_HOME"
    return None


@functools.lru_cache(maxsize=1)
def load_cuda_extension() -> ModuleType:
    """Compile (once per source version and GPU architecture) and import the CUDA kernels.

    Raises RuntimeError naming what is missing when there is no GPU, no CUDA build of torch or
    no CUDA toolkit; the CPU backends remain usable.
    """
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"the CUDA search backend is unavailable: {reason}")
    major, minor = torch.cuda.get_device_capability()
    # Build for the GPU in use only: one architecture compiles in seconds, not minutes.
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
    name = "mtrl_search_cuda"
    arch = os.environ["TORCH_CUDA_ARCH_LIST"]
    return _load(
        name,
        _build_dir(f"{name}-sm{arch}", CUDA_SOURCES + CUDA_HEADERS, CUDA_FLAGS),
        sources=[str(SOURCE_DIR / source) for source in CUDA_SOURCES],
        extra_cflags=["-O3"],
        extra_cuda_cflags=list(CUDA_FLAGS),
    )
