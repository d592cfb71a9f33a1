"""The CUDA backend: the search loop's two calls per simulation become two kernel launches.

The tree, the selected edges handed to the model and the model's outputs all stay on the GPU;
nothing here reads a device value back, so the loop never waits for the GPU and the whole
search can be captured in a CUDA graph (mtrl.search.cuda_graph).
"""

from __future__ import annotations

import torch

from mtrl.cuda.build import load_cuda_extension
from mtrl.cuda.cpu_backend import ALGORITHM_IDS, tree_fields
from mtrl.search.tree import Tree
from mtrl.search.types import ModelOutput, SearchConfig

MAX_ACTIONS = 256  # kMaxActions in search_kernels.cuh: 8 actions per lane of a warp


class CudaBackend:
    """Kernels over the Tree's device tensors; the model sees reused [B] int64 device buffers."""

    name = "cuda"

    def __init__(self, tree: Tree, config: SearchConfig) -> None:
        if tree.device.type != "cuda":
            raise ValueError(f"backend 'cuda' needs the roots on a CUDA device, got {tree.device}")
        if tree.num_actions > MAX_ACTIONS:
            raise ValueError(
                f"the CUDA search supports at most {MAX_ACTIONS} actions per tree, "
                f"got {tree.num_actions}"
            )
        extension = load_cuda_extension()
        batch, device = tree.batch_size, tree.device
        self.parent_embedding = torch.zeros(batch, dtype=torch.int64, device=device)
        self.action = torch.zeros(batch, dtype=torch.int64, device=device)
        self.parent_node = torch.zeros(batch, dtype=torch.int64, device=device)
        fields = tree_fields(tree)
        if not all(field.is_contiguous() for field in fields):
            raise ValueError("tree fields must be contiguous to be shared with the CUDA kernels")
        self.num_simulations = config.num_simulations
        self._kernels = extension.CudaSearch(
            [*fields, self.parent_embedding, self.action, self.parent_node],
            ALGORITHM_IDS[config.algorithm],
            config.pb_c_init,
            config.pb_c_base,
            config.c_visit,
            config.c_scale,
        )

    def select(self, sim: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(sim)
        self._kernels.select(sim)
        return self.parent_embedding, self.action

    def expand_and_backup(self, sim: int, out: ModelOutput) -> None:
        self._check(sim)
        self._kernels.expand_and_backup(
            sim, out.prior_logits, out.value, out.reward, out.embedding_id, out.terminal
        )

    def _check(self, sim: int) -> None:
        if not 0 <= sim < self.num_simulations:
            raise IndexError(f"simulation index {sim} out of range [0, {self.num_simulations})")
