"""Inputs, settings and outputs of a batched search (frozen, typed, shapes in comments).

B is the number of trees (roots of all tasks in one batch), A the padded action count,
S the number of simulations and N = S + 1 the number of nodes per tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from mtrl.search.tree import Tree

ALGORITHMS = ("muzero", "gumbel_muzero")
BACKENDS = ("auto", "torch", "cpp", "cuda")


@dataclass(frozen=True)
class RootInput:
    """What the representation network says about the B roots."""

    prior_logits: torch.Tensor  # [B, A] float32
    value: torch.Tensor  # [B] float32
    embedding_id: torch.Tensor  # [B] int64, opaque id handed back to the model
    # Legal actions at the root state; None means all A actions are legal.
    legal_mask: torch.Tensor | None = None  # [B, A] bool
    # Actions of each task's action space, used below the root (the model cannot know the
    # legal set of imagined states). None means "same as legal_mask".
    interior_mask: torch.Tensor | None = None  # [B, A] bool
    # Discount of each tree's task; a float applies to every tree.
    discount: torch.Tensor | float = 0.997  # [B] float32


@dataclass(frozen=True)
class ModelOutput:
    """One batched step of the dynamics/prediction model for the B trees."""

    prior_logits: torch.Tensor  # [B, A] float32
    value: torch.Tensor  # [B] float32
    reward: torch.Tensor  # [B] float32
    embedding_id: torch.Tensor  # [B] int64
    # True where the transition ended the episode: the new node is absorbing (value 0,
    # everything below it is worth 0). None means no terminals.
    terminal: torch.Tensor | None = None  # [B] bool


# recurrent_fn(parent_embedding_id [B] int64, action [B] int64) -> ModelOutput (or a tuple of
# its fields). Called exactly once per simulation for all B trees. The argument tensors are
# reused buffers: valid during the call only.
RecurrentFn = Callable[[torch.Tensor, torch.Tensor], "ModelOutput | tuple[torch.Tensor, ...]"]


@dataclass(frozen=True)
class SearchConfig:
    algorithm: str = "muzero"
    num_simulations: int = 50
    # pUCT constants of MuZero (Schrittwieser et al. 2020, Eq. 2).
    pb_c_init: float = 1.25
    pb_c_base: float = 19652.0
    # Root Dirichlet noise (MuZero); fraction 0 disables it.
    dirichlet_alpha: float = 0.3
    dirichlet_fraction: float = 0.0
    # Gumbel MuZero (Danihelka et al. 2022): m of Gumbel-top-m, the sigma transform
    # sigma(q) = (c_visit + max_b N(b)) * c_scale * q, and the Gumbel noise scale (0 = none).
    max_num_considered_actions: int = 16
    c_visit: float = 50.0
    c_scale: float = 0.1
    gumbel_scale: float = 1.0
    # The least range, in value units, that the tree's min-max normalisation of Q divides by:
    # the bounds start at the root's value -/+ half of it. With 0 (MuZero's rule) Q values
    # that differ by noise (0.01 where the task's rewards are 1) still span [0, 1], and Gumbel's
    # sigma turns them into a near one-hot policy target (bench/search_policy.py). Like
    # TD-MPC2's Q scale (Hansen et al. 2024), kept at least 1.
    min_q_range: float = 0.0
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; expected one of {ALGORITHMS}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; expected one of {BACKENDS}")
        if self.num_simulations < 0:
            raise ValueError(f"num_simulations must be >= 0, got {self.num_simulations}")
        if self.max_num_considered_actions < 1:
            raise ValueError(
                f"max_num_considered_actions must be >= 1, got {self.max_num_considered_actions}"
            )
        if not 0.0 <= self.dirichlet_fraction <= 1.0:
            raise ValueError(f"dirichlet_fraction must be in [0, 1], got {self.dirichlet_fraction}")
        if not self.min_q_range >= 0.0:
            raise ValueError(f"min_q_range must be >= 0, got {self.min_q_range}")
        if self.dirichlet_fraction > 0.0 and self.dirichlet_alpha <= 0.0:
            raise ValueError(f"dirichlet_alpha must be > 0, got {self.dirichlet_alpha}")


@dataclass(frozen=True)
class SearchOutput:
    action: torch.Tensor  # [B] int64, the action to play
    # Policy target: visit distribution (MuZero) or completed-Q improved policy (Gumbel).
    action_weights: torch.Tensor  # [B, A] float32
    visit_counts: torch.Tensor  # [B, A] int32, rows sum to S
    # [B] float32, mean of the root's network value and the S returns backed up through it
    root_value: torch.Tensor
    leaf_depths: torch.Tensor  # [S, B] int32, depth of the node expanded by each simulation
    tree: Tree | None = field(default=None, repr=False)  # the searched tree, for inspection
