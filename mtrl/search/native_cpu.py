"""The C++ CPU backend: a thin adapter between the search loop and search_cpu.cpp (and the
part of it the CUDA backend shares)."""

from __future__ import annotations

import torch

from mtrl.cuda.build import load_cpu_extension
from mtrl.search.summary import summarize
from mtrl.search.tree import Tree
from mtrl.search.types import ModelOutput, SearchConfig, SearchOutput

ALGORITHM_IDS = {"muzero": 0, "gumbel_muzero": 1}


def tree_fields(tree: Tree) -> list[torch.Tensor]:
    """The tree tensors in the order search_cpu.cpp's constructor expects them."""
    return [
        tree.visits,
        tree.value_sum,
        tree.raw_value,
        tree.reward,
        tree.parent,
        tree.action,
        tree.depth,
        tree.terminal,
        tree.embedding_id,
        tree.child_index,
        tree.child_prior,
        tree.root_logits,
        tree.gumbel,
        tree.root_legal,
        tree.interior_legal,
        tree.discount,
        tree.min_q,
        tree.max_q,
        tree.considered_visits,
        tree.leaf_depths,
    ]


class NativeBackend:
    """What the C++ and CUDA backends share: the tree tensors plus three reused [B] int64
    buffers (parent embedding, action, parent node) handed once to a compiled search object,
    then two calls per simulation. The model sees the buffers, valid during its call."""

    name = ""

    def __init__(self, tree: Tree, config: SearchConfig, search_class: type) -> None:
        batch, device = tree.batch_size, tree.device
        self.parent_embedding = torch.zeros(batch, dtype=torch.int64, device=device)
        self.action = torch.zeros(batch, dtype=torch.int64, device=device)
        self.parent_node = torch.zeros(batch, dtype=torch.int64, device=device)
        fields = tree_fields(tree)
        if not all(field.is_contiguous() for field in fields):
            raise ValueError(
                f"tree fields must be contiguous to be shared with the {self.name} kernels"
            )
        self._kernels = search_class(
            [*fields, self.parent_embedding, self.action, self.parent_node],
            ALGORITHM_IDS[config.algorithm],
            config.pb_c_init,
            config.pb_c_base,
            config.c_visit,
            config.c_scale,
        )

    def select(self, sim: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._kernels.select(sim)
        return self.parent_embedding, self.action

    def expand_and_backup(self, sim: int, out: ModelOutput) -> None:
        self._kernels.expand_and_backup(
            sim, out.prior_logits, out.value, out.reward, out.embedding_id, out.terminal
        )


class CppBackend(NativeBackend):
    """The C++ kernels (search_cpu.cpp), threaded across trees."""

    name = "cpp"

    def __init__(self, tree: Tree, config: SearchConfig) -> None:
        self._extension = load_cpu_extension()
        super().__init__(tree, config, self._extension.CpuSearch)
        self.tree, self.config = tree, config

    def summarize(self) -> SearchOutput:
        """The search's outputs. Gumbel's root summary is one native call (search_cpu_summary.cpp):
        in torch it is ~25 small ops, ~0.55 ms at B = 256 (a ~4-5 ms search), natively ~0.06 ms.
        MuZero's (a visit distribution) stays the torch summary."""
        tree, config = self.tree, self.config
        if config.algorithm != "gumbel_muzero":
            return summarize(tree, config)
        action, weights, visits, root_value = self._extension.gumbel_summary(
            tree_fields(tree), config.c_visit, config.c_scale
        )
        return SearchOutput(
            action=action,
            action_weights=weights,
            visit_counts=visits,
            root_value=root_value,
            leaf_depths=tree.leaf_depths,
            tree=tree,
        )
