"""The pure-torch reference backend: the executable specification of the search.

Every simulation: ``select`` walks all B trees down in lockstep (all trees are at the same
depth in each step, so "is this the root" is one bool per step) until each reaches an
unexpanded edge; the model is called once for the batch; ``expand_and_backup`` writes node
``sim + 1`` of every tree and backs the leaf value up to the root. Readability first; the C++
backend (mtrl/cuda/search_cpu.cpp) mirrors these functions operation by operation.
"""

from __future__ import annotations

import torch

from mtrl.search import gumbel
from mtrl.search.muzero import puct_scores
from mtrl.search.numerics import masked_softmax
from mtrl.search.stats import child_stats
from mtrl.search.tree import Tree
from mtrl.search.types import ModelOutput, SearchConfig


def choose_actions(
    tree: Tree, node: torch.Tensor, at_root: bool, sim: int, config: SearchConfig
) -> torch.Tensor:
    """The action to follow from node[b] of every tree b. node: [B] int64 -> [B] int64."""
    stats = child_stats(tree, node)
    rows = torch.arange(tree.batch_size, device=tree.device)
    legal = tree.root_legal if at_root else tree.interior_legal
    if config.algorithm == "muzero":
        scores = puct_scores(
            stats, tree.visits[rows, node], legal, config.pb_c_init, config.pb_c_base
        )
    elif at_root:
        scores = gumbel.root_scores(
            stats,
            tree.raw_value[:, 0],
            tree.root_logits,
            tree.gumbel,
            legal,
            tree.considered_visits[:, sim],
            config.c_visit,
            config.c_scale,
        )
    else:
        scores = gumbel.interior_scores(
            stats, tree.raw_value[rows, node], legal, config.c_visit, config.c_scale
        )
    return scores.argmax(dim=1)  # first maximum: ties go to the lowest action index


def select(tree: Tree, sim: int, config: SearchConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Descend every tree to an unexpanded edge: (parent node [B] int64, action [B] int64)."""
    batch = tree.batch_size
    rows = torch.arange(batch, device=tree.device)
    node = torch.zeros(batch, dtype=torch.int64, device=tree.device)
    leaf_parent = torch.zeros(batch, dtype=torch.int64, device=tree.device)
    leaf_action = torch.zeros(batch, dtype=torch.int64, device=tree.device)
    active = torch.ones(batch, dtype=torch.bool, device=tree.device)
    at_root = True
    while bool(active.any()):
        action = choose_actions(tree, node, at_root, sim, config)
        child = tree.child_index[rows, node, action].long()
        stops = active & (child < 0)
        leaf_parent = torch.where(stops, node, leaf_parent)
        leaf_action = torch.where(stops, action, leaf_action)
        active &= child >= 0
        node = torch.where(active, child, node)
        at_root = False
    return leaf_parent, leaf_action


def expand(
    tree: Tree, sim: int, parent: torch.Tensor, action: torch.Tensor, out: ModelOutput
) -> None:
    """Write node sim + 1 of every tree. Below a terminal node everything is worth 0."""
    rows = torch.arange(tree.batch_size, device=tree.device)
    new = sim + 1
    parent_terminal = tree.terminal[rows, parent]
    terminal = parent_terminal if out.terminal is None else out.terminal | parent_terminal
    tree.terminal[:, new] = terminal
    tree.raw_value[:, new] = torch.where(terminal, 0.0, out.value)
    tree.reward[:, new] = torch.where(parent_terminal, 0.0, out.reward)
    tree.parent[:, new] = parent.int()
    tree.action[:, new] = action.int()
    tree.depth[:, new] = tree.depth[rows, parent] + 1
    tree.embedding_id[:, new] = out.embedding_id
    tree.child_prior[:, new] = masked_softmax(out.prior_logits, tree.interior_legal)
    tree.child_index[rows, parent, action] = new
    tree.leaf_depths[sim] = tree.depth[:, new]


def backup(tree: Tree, sim: int) -> None:
    """Add the new leaf's value to every node on its path, discounting by the tree's gamma.

    Each updated non-root node's Q = reward + gamma * mean value enters the tree's min-max
    bounds (MuZero's MinMaxStats), in float32 like the C++ backend.
    """
    batch = tree.batch_size
    rows = torch.arange(batch, device=tree.device)
    node = torch.full((batch,), sim + 1, dtype=torch.int64, device=tree.device)
    ret = tree.raw_value[:, sim + 1].clone()  # [B] f32, return from `node` onwards
    active = torch.ones(batch, dtype=torch.bool, device=tree.device)
    while bool(active.any()):
        r, n = rows[active], node[active]
        tree.visits[r, n] += 1
        tree.value_sum[r, n] += ret[active]
        reward = tree.reward[r, n]
        discount = tree.discount[r]
        q = reward + discount * (tree.value_sum[r, n] / tree.visits[r, n].float())
        not_root = n != 0
        tree.min_q[r] = torch.where(not_root, torch.minimum(tree.min_q[r], q), tree.min_q[r])
        tree.max_q[r] = torch.where(not_root, torch.maximum(tree.max_q[r], q), tree.max_q[r])
        ret[active] = reward + discount * ret[active]
        node[active] = tree.parent[r, n].long()
        active = node >= 0


class TorchBackend:
    """Backend protocol: ``select(sim) -> (parent_embedding_id, action)`` then
    ``expand_and_backup(sim, model_output)``; both act on the shared Tree in place."""

    name = "torch"

    def __init__(self, tree: Tree, config: SearchConfig) -> None:
        self.tree = tree
        self.config = config
        self._parent = torch.zeros(tree.batch_size, dtype=torch.int64, device=tree.device)
        self._action = torch.zeros(tree.batch_size, dtype=torch.int64, device=tree.device)

    def select(self, sim: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._parent, self._action = select(self.tree, sim, self.config)
        rows = torch.arange(self.tree.batch_size, device=self.tree.device)
        return self.tree.embedding_id[rows, self._parent], self._action

    def expand_and_backup(self, sim: int, out: ModelOutput) -> None:
        expand(self.tree, sim, self._parent, self._action, out)
        backup(self.tree, sim)
