"""The tree layout: struct-of-arrays preallocated once per search, no per-node objects.

Node ``0`` is the root; simulation ``s`` (0-based) always creates node ``s + 1``, so a search
with S simulations needs exactly N = S + 1 nodes and node indices fit in int32. Fields are
mutated in place by the backends (the dataclass is frozen: the arrays are fixed, not their
contents). Every backend reads and writes these same tensors, which is what lets the pure-torch
reference and the C++ backend be compared field by field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mtrl.search.numerics import masked_softmax
from mtrl.search.schedule import considered_visit_table
from mtrl.search.types import RootInput, SearchConfig

UNEXPANDED = -1  # child_index value of an edge whose child does not exist yet


@dataclass(frozen=True)
class Tree:
    # Node fields.
    visits: torch.Tensor  # [B, N] int32, 1 for the node's own expansion + simulations below
    value_sum: torch.Tensor  # [B, N] float32, sum of backed-up returns from the node
    raw_value: torch.Tensor  # [B, N] float32, the network's value (0 for terminal nodes)
    reward: torch.Tensor  # [B, N] float32, reward on the edge from the parent
    parent: torch.Tensor  # [B, N] int32, -1 for the root and unused nodes
    action: torch.Tensor  # [B, N] int32, action taken from the parent
    depth: torch.Tensor  # [B, N] int32
    terminal: torch.Tensor  # [B, N] bool, absorbing node
    embedding_id: torch.Tensor  # [B, N] int64, opaque model id
    # Child (edge) fields.
    child_index: torch.Tensor  # [B, N, A] int32, UNEXPANDED or the child's node index
    child_prior: torch.Tensor  # [B, N, A] float32, softmax of the node's logits over legal a
    # Per-tree fields.
    root_logits: torch.Tensor  # [B, A] float32, logits minus their legal max; -inf illegal
    gumbel: torch.Tensor  # [B, A] float32, Gumbel(0, 1) * gumbel_scale (zeros for MuZero)
    root_legal: torch.Tensor  # [B, A] bool
    interior_legal: torch.Tensor  # [B, A] bool
    discount: torch.Tensor  # [B] float32
    min_q: torch.Tensor  # [B] float32, min-max normalisation bounds (+inf/-inf when empty)
    max_q: torch.Tensor  # [B] float32
    considered_visits: torch.Tensor  # [B, S] int32, Gumbel sequential-halving schedule
    leaf_depths: torch.Tensor  # [S, B] int32

    @property
    def batch_size(self) -> int:
        return self.visits.shape[0]

    @property
    def device(self) -> torch.device:
        return self.visits.device

    @property
    def num_actions(self) -> int:
        return self.child_index.shape[2]


NUMPY_DTYPES = {
    torch.int32: np.int32,
    torch.int64: np.int64,
    torch.float32: np.float32,
    torch.bool: np.bool_,
}


def host_full(
    shape: tuple[int, ...], value: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """A filled tensor; on the CPU filled by numpy. torch's fill of a large tensor enters an
    OpenMP region, which on a loaded machine waited a scheduler slice (~1-10 ms, measured);
    numpy's fill is a plain single-threaded loop."""
    if device.type != "cpu":
        return torch.full(shape, value, dtype=dtype, device=device)
    return torch.from_numpy(np.full(shape, value, dtype=NUMPY_DTYPES[dtype]))


def _check_root(root: RootInput) -> tuple[int, int]:
    logits = root.prior_logits
    if logits.dim() != 2:
        raise ValueError(f"prior_logits must be [B, A], got shape {tuple(logits.shape)}")
    batch, num_actions = logits.shape
    if num_actions < 1:
        raise ValueError(f"prior_logits needs at least one action, got shape {tuple(logits.shape)}")
    if tuple(root.value.shape) != (batch,):
        raise ValueError(f"root value must be [{batch}], got shape {tuple(root.value.shape)}")
    if tuple(root.embedding_id.shape) != (batch,):
        raise ValueError(
            f"root embedding_id must be [{batch}], got shape {tuple(root.embedding_id.shape)}"
        )
    for name in ("legal_mask", "interior_mask"):
        mask = getattr(root, name)
        if mask is not None and tuple(mask.shape) != (batch, num_actions):
            raise ValueError(f"{name} must be [{batch}, {num_actions}], got {tuple(mask.shape)}")
    return batch, num_actions


def _masks(root: RootInput, batch: int, num_actions: int) -> tuple[torch.Tensor, torch.Tensor]:
    legal = (
        torch.ones(batch, num_actions, dtype=torch.bool, device=root.prior_logits.device)
        if root.legal_mask is None
        else root.legal_mask.to(torch.bool)
    )
    interior = legal if root.interior_mask is None else root.interior_mask.to(torch.bool)
    # One device-to-host read for both checks (each read waits for a GPU to drain).
    if not bool((legal.any(dim=1) & interior.any(dim=1)).all()):
        for name, mask in (("legal_mask", legal), ("interior_mask", interior)):
            has_action = mask.any(dim=1)
            if not bool(has_action.all()):
                empty = (~has_action).nonzero().flatten().tolist()
                raise ValueError(f"{name} has no legal action in rows {empty}")
    return legal.contiguous(), interior.contiguous()


def _discount(root: RootInput, batch: int) -> torch.Tensor:
    if isinstance(root.discount, torch.Tensor):
        if tuple(root.discount.shape) != (batch,):
            raise ValueError(f"discount must be [{batch}], got {tuple(root.discount.shape)}")
        return root.discount.to(torch.float32).contiguous()
    return host_full((batch,), float(root.discount), torch.float32, root.prior_logits.device)


def _root_priors(
    logits: torch.Tensor, legal: torch.Tensor, config: SearchConfig, generator: torch.Generator
) -> torch.Tensor:
    prior = masked_softmax(logits, legal)  # on the roots' device
    if config.algorithm == "muzero" and config.dirichlet_fraction > 0.0:
        # The noise is drawn on the CPU from the search's generator (same noise on every
        # device), so this path moves the priors to the host and back.
        logits, legal, device = logits.cpu(), legal.cpu(), logits.device
        prior = prior.cpu()
        # Dirichlet noise over the legal actions only (MuZero, AlphaZero exploration noise).
        alpha = torch.full(logits.shape, config.dirichlet_alpha, dtype=torch.float64)
        gamma = torch._standard_gamma(alpha, generator=generator)
        gamma = torch.where(legal, gamma, 0.0)
        noise = (gamma / gamma.sum(dim=1, keepdim=True)).float()
        prior = (1.0 - config.dirichlet_fraction) * prior + config.dirichlet_fraction * noise
        return prior.to(device)
    return prior


def _gumbel_noise(
    shape: torch.Size, config: SearchConfig, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    if config.algorithm != "gumbel_muzero" or config.gumbel_scale == 0.0:
        return host_full(tuple(shape), 0.0, torch.float32, device)
    uniform = torch.rand(shape, generator=generator, dtype=torch.float64)
    uniform.clamp_(min=torch.finfo(torch.float64).tiny)  # log(0) would give a -inf Gumbel
    return (-torch.log(-torch.log(uniform)) * config.gumbel_scale).float().to(device)


def init_tree(root: RootInput, config: SearchConfig, generator: torch.Generator) -> Tree:
    """Preallocate the arrays on the roots' device and expand the root (visits 1, value = the
    network's value). Random draws use the CPU ``generator``, so every device sees the same."""
    batch, num_actions = _check_root(root)
    device = root.prior_logits.device
    legal, interior = _masks(root, batch, num_actions)
    sims = config.num_simulations
    nodes = sims + 1
    logits = root.prior_logits.to(torch.float32)
    if not torch.where(legal, logits, 0.0).isfinite().all():
        raise ValueError("prior_logits must be finite on legal actions")
    legal_max = torch.where(legal, logits, -torch.inf).amax(dim=1, keepdim=True)
    root_logits = torch.where(legal, logits - legal_max, -torch.inf)
    node_shape, edge_shape = (batch, nodes), (batch, nodes, num_actions)

    tree = Tree(
        visits=host_full(node_shape, 0, torch.int32, device),
        value_sum=host_full(node_shape, 0, torch.float32, device),
        raw_value=host_full(node_shape, 0, torch.float32, device),
        reward=host_full(node_shape, 0, torch.float32, device),
        parent=host_full(node_shape, -1, torch.int32, device),
        action=host_full(node_shape, -1, torch.int32, device),
        depth=host_full(node_shape, 0, torch.int32, device),
        terminal=host_full(node_shape, False, torch.bool, device),
        embedding_id=host_full(node_shape, 0, torch.int64, device),
        child_index=host_full(edge_shape, UNEXPANDED, torch.int32, device),
        # Each node's row is written whole when it is expanded, and every node is by the end.
        child_prior=torch.empty(edge_shape, dtype=torch.float32, device=device),
        root_logits=root_logits.contiguous(),
        gumbel=_gumbel_noise(logits.shape, config, generator, device),
        root_legal=legal,
        interior_legal=interior,
        discount=_discount(root, batch).to(device),
        min_q=host_full((batch,), torch.inf, torch.float32, device),
        max_q=host_full((batch,), -torch.inf, torch.float32, device),
        considered_visits=_considered_visits(legal, config),
        leaf_depths=host_full((sims, batch), 0, torch.int32, device),
    )
    value = root.value.to(torch.float32)
    if config.min_q_range > 0:  # every backend reads these bounds and only widens them
        tree.min_q.copy_(value - config.min_q_range / 2)
        tree.max_q.copy_(value + config.min_q_range / 2)
    tree.visits[:, 0] = 1
    tree.value_sum[:, 0] = value
    tree.raw_value[:, 0] = value
    tree.embedding_id[:, 0] = root.embedding_id.to(torch.int64)
    tree.child_prior[:, 0] = _root_priors(logits, legal, config, generator)
    return tree


def _considered_visits(legal: torch.Tensor, config: SearchConfig) -> torch.Tensor:
    """Per-tree sequential-halving schedule; m differs per tree with its legal action count."""
    sims = config.num_simulations
    if config.algorithm != "gumbel_muzero":
        return host_full((legal.shape[0], sims), 0, torch.int32, legal.device)
    table = considered_visit_table(config.max_num_considered_actions, sims)  # [M + 1, S]
    num_considered = legal.sum(dim=1).clamp(max=config.max_num_considered_actions)
    if legal.device.type != "cpu":  # gather on the device: no round trip through the host
        return table.to(legal.device)[num_considered]
    # Row gather in numpy: single-threaded, like host_full.
    return torch.from_numpy(table.numpy()[num_considered.numpy()])
