"""Native kernels behind mtrl.search: the C++ CPU backend now, CUDA kernels later (issue 6).

Sources are compiled at first use (see ``build.py``); nothing here chooses algorithms.
"""

from mtrl.cuda.build import build_root, load_cpu_extension

__all__ = ["build_root", "load_cpu_extension"]
