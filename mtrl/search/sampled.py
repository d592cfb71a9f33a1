"""Sampled search for continuous actions (Hubert et al. 2021, "Learning and Planning in Complex
Action Spaces", Sampled MuZero).

Every expanded node draws K actions from its Gaussian policy; the discrete search then runs
over those K samples with the prior beta_hat / beta * pi, which for samples drawn from pi itself
(beta = pi) is the empirical distribution beta_hat: uniform over the K samples. This module is
an adapter around the discrete search, so every backend supports it unchanged: the discrete
tree's embedding id of a node is its node index, which keys the stored samples and the model's
own ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mtrl.search.loop import search
from mtrl.search.types import ModelOutput, RootInput, SearchConfig, SearchOutput


@dataclass(frozen=True)
class SampledRoot:
    mean: torch.Tensor  # [B, D] float32, Gaussian policy mean
    log_std: torch.Tensor  # [B, D] float32
    value: torch.Tensor  # [B] float32
    embedding_id: torch.Tensor  # [B] int64
    discount: torch.Tensor | float = 0.997  # [B] float32


@dataclass(frozen=True)
class ContinuousModelOutput:
    mean: torch.Tensor  # [B, D] float32
    log_std: torch.Tensor  # [B, D] float32
    value: torch.Tensor  # [B] float32
    reward: torch.Tensor  # [B] float32
    embedding_id: torch.Tensor  # [B] int64
    terminal: torch.Tensor | None = None  # [B] bool


# recurrent_fn(parent_embedding_id [B] int64, action [B, D] float32) -> ContinuousModelOutput
ContinuousRecurrentFn = Callable[[torch.Tensor, torch.Tensor], ContinuousModelOutput]


@dataclass(frozen=True)
class SampledOutput:
    actions: torch.Tensor  # [B, K, D] float32, the root's K sampled actions
    visit_counts: torch.Tensor  # [B, K] int32, rows sum to S
    action_weights: torch.Tensor  # [B, K] float32, the policy target over the samples
    action: torch.Tensor  # [B, D] float32, the sample to play
    root_value: torch.Tensor  # [B] float32
    search: SearchOutput  # the underlying discrete search (tree included)


def sample_gaussian(
    mean: torch.Tensor, log_std: torch.Tensor, num_samples: int, generator: torch.Generator
) -> torch.Tensor:
    """K independent samples per row: [B, D] -> [B, K, D]."""
    noise = torch.randn(
        mean.shape[0], num_samples, mean.shape[1], generator=generator, dtype=mean.dtype
    )
    return mean[:, None] + log_std.exp()[:, None] * noise


def sampled_search(
    root: SampledRoot,
    recurrent_fn: ContinuousRecurrentFn,
    config: SearchConfig,
    *,
    num_samples: int = 16,
    seed: int = 0,
    backend: str | None = None,
) -> SampledOutput:
    if root.mean.dim() != 2 or root.log_std.shape != root.mean.shape:
        raise ValueError(
            f"mean and log_std must both be [B, D], got {tuple(root.mean.shape)} and "
            f"{tuple(root.log_std.shape)}"
        )
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    batch, dims = root.mean.shape
    nodes = config.num_simulations + 1
    generator = torch.Generator().manual_seed(seed)
    # Written for every node as it is expanded (all N are by the end).
    samples = torch.empty(batch, nodes, num_samples, dims, dtype=torch.float32)  # [B, N, K, D]
    model_ids = torch.empty(batch, nodes, dtype=torch.int64)  # [B, N] the caller's ids
    samples[:, 0] = sample_gaussian(root.mean.float(), root.log_std.float(), num_samples, generator)
    model_ids[:, 0] = root.embedding_id
    rows = torch.arange(batch)
    uniform_logits = torch.zeros(batch, num_samples, dtype=torch.float32)
    next_node = [1]

    def discrete_fn(parent_node: torch.Tensor, sample_index: torch.Tensor) -> ModelOutput:
        out = recurrent_fn(model_ids[rows, parent_node], samples[rows, parent_node, sample_index])
        node = next_node[0]
        next_node[0] += 1
        model_ids[:, node] = out.embedding_id
        samples[:, node] = sample_gaussian(
            out.mean.float(), out.log_std.float(), num_samples, generator
        )
        return ModelOutput(
            prior_logits=uniform_logits,
            value=out.value,
            reward=out.reward,
            embedding_id=torch.full((batch,), node, dtype=torch.int64),
            terminal=out.terminal,
        )

    discrete_root = RootInput(
        prior_logits=uniform_logits,
        value=root.value,
        embedding_id=torch.zeros(batch, dtype=torch.int64),
        discount=root.discount,
    )
    result = search(discrete_root, discrete_fn, config, seed=seed, backend=backend)
    return SampledOutput(
        actions=samples[:, 0],
        visit_counts=result.visit_counts,
        action_weights=result.action_weights,
        action=samples[rows, 0, result.action],
        root_value=result.root_value,
        search=result,
    )
