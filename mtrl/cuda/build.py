"""Build-at-first-use loader for the native search kernels.

The C++ sources live next to this file and are compiled with torch.utils.cpp_extension (ninja)
the first time they are needed; the build directory is cached under $MTRL_BUILD_DIR or
~/.cache/mtrl, keyed by the sources' hash and the torch version, so later processes just load.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import torch

SOURCE_DIR = Path(__file__).resolve().parent
CPU_SOURCES = ("search_cpu.cpp",)
CPU_HEADERS = ("tree_pool.h",)
# -ffp-contract=off: no fused multiply-adds, so float arithmetic rounds exactly like the
# torch reference's separate kernels (bit-identical trees).
CPU_CFLAGS = ("-O3", "-ffp-contract=off", "-fno-fast-math")


def build_root() -> Path:
    return Path(os.environ.get("MTRL_BUILD_DIR", "~/.cache/mtrl")).expanduser()


def _build_dir(name: str, sources: tuple[str, ...]) -> Path:
    digest = hashlib.sha256()
    for source in sources:
        digest.update((SOURCE_DIR / source).read_bytes())
    digest.update(" ".join(CPU_CFLAGS).encode())
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


@functools.lru_cache(maxsize=1)
def load_cpu_extension() -> ModuleType:
    """Compile (once per source version) and import the C++ CPU search kernels."""
    from torch.utils.cpp_extension import load

    _ensure_ninja_on_path()
    name = "mtrl_search_cpu"
    return load(
        name=name,
        sources=[str(SOURCE_DIR / source) for source in CPU_SOURCES],
        build_directory=str(_build_dir(name, CPU_SOURCES + CPU_HEADERS)),
        extra_cflags=list(CPU_CFLAGS),
        verbose=False,
    )
