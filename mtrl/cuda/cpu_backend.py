"""The C++ CPU backend: a thin adapter between the search loop and search_cpu.cpp."""

from __future__ import annotations

import torch

from mtrl.cuda.build import load_cpu_extension
from mtrl.search.tree import Tree
from mtrl.search.types import ModelOutput, SearchConfig

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


class CppBackend:
    """Two C++ calls per simulation; the model sees reused [B] int64 buffers."""

    name = "cpp"

    def __init__(self, tree: Tree, config: SearchConfig) -> None:
        extension = load_cpu_extension()
        batch = tree.batch_size
        self.parent_embedding = torch.zeros(batch, dtype=torch.int64)
        self.action = torch.zeros(batch, dtype=torch.int64)
        self.parent_node = torch.zeros(batch, dtype=torch.int64)
        fields = [
            *(field.contiguous() for field in tree_fields(tree)),
            self.parent_embedding,
            self.action,
            self.parent_node,
        ]
        for field, original in zip(fields, tree_fields(tree), strict=False):
            if field.data_ptr() != original.data_ptr():
                raise ValueError("tree fields must be contiguous to be shared with C++")
        self._kernels = extension.CpuSearch(
            fields,
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
