"""Native kernel sources (C++ for CPUs, CUDA) and their build-at-first-use loader.

A leaf package: it imports nothing of ``mtrl``. The backend classes that drive these kernels
with search types live in ``mtrl.search`` (``native_cpu``, ``native_cuda``).
"""

from mtrl.cuda.build import build_root, load_cpu_extension

__all__ = ["build_root", "load_cpu_extension"]
