"""The CUDA backend: the search loop's two calls per simulation become two kernel launches.

The tree, the selected edges handed to the model and the model's outputs all stay on the GPU;
nothing here reads a device value back, so the loop never waits for the GPU and the whole
search can be captured in a CUDA graph (mtrl.search.cuda_graph).
"""

from __future__ import annotations

import torch

from mtrl.cuda.build import load_cuda_extension
from mtrl.search.native_cpu import NativeBackend
from mtrl.search.tree import Tree
from mtrl.search.types import ModelOutput, SearchConfig

MAX_ACTIONS = 256  # kMaxActions in search_kernels.cuh: 8 actions per lane of a warp


class CudaBackend(NativeBackend):
    """Kernels over the Tree's device tensors; the model sees reused [B] int64 device buffers.

    Arguments are checked here, before any kernel: on some torch builds an error raised inside
    a compiled extension crashed the process instead of raising."""

    name = "cuda"

    def __init__(self, tree: Tree, config: SearchConfig) -> None:
        if tree.device.type != "cuda":
            raise ValueError(f"backend 'cuda' needs the roots on a CUDA device, got {tree.device}")
        if tree.num_actions > MAX_ACTIONS:
            raise ValueError(
                f"the CUDA search supports at most {MAX_ACTIONS} actions per tree, "
                f"got {tree.num_actions}"
            )
        self.num_simulations = config.num_simulations
        super().__init__(tree, config, load_cuda_extension().CudaSearch)

    def select(self, sim: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(sim)
        return super().select(sim)

    def expand_and_backup(self, sim: int, out: ModelOutput) -> None:
        self._check(sim)
        super().expand_and_backup(sim, out)

    def _check(self, sim: int) -> None:
        if not 0 <= sim < self.num_simulations:
            raise IndexError(f"simulation index {sim} out of range [0, {self.num_simulations})")
