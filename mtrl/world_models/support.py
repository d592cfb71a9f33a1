"""Categorical scalars: the MuZero value transform and two-hot supports.

``h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x`` with ``eps = 0.001`` squashes returns of very
different scales (Pohlen et al. 2018; used by MuZero, Schrittwieser et al. 2020, Appendix F).
Its inverse has a closed form. Values and rewards are predicted as a distribution over the
support ``step * [-S, ..., S]`` of ``h(x)``; targets are the two-hot encoding of ``h(target)``.
MuZero's step is 1. A finer step suits small returns: MinAtar's stay under h(x) ~ 4, where
a step of 1 puts a whole episode's value in the lowest bins, and a value gap of 0.5 (what a
death costs in random Asterix) moves a fifth of one bin's mass (TD-MPC2's bins are 0.2 wide
in symlog space, Hansen et al. 2024).
"""

from __future__ import annotations

import torch

EPS = 0.001


def h(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    return torch.sign(x) * (torch.sqrt(x.abs() + 1.0) - 1.0) + eps * x


def h_inverse(y: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    root = (torch.sqrt(1.0 + 4.0 * eps * (y.abs() + 1.0 + eps)) - 1.0) / (2.0 * eps)
    return torch.sign(y) * (root.square() - 1.0)


def scalar_to_support(x: torch.Tensor, support_size: int, step: float = 1.0) -> torch.Tensor:
    """[...] scalars -> [..., 2S+1] two-hot probabilities over the support of h(x)."""
    y = (h(x.float()) / step).clamp(-support_size, support_size)
    low = y.floor()
    upper_weight = y - low
    index = (low + support_size).long()
    probs = torch.zeros(*y.shape, 2 * support_size + 1, device=x.device)
    probs.scatter_(-1, index[..., None], (1.0 - upper_weight)[..., None])
    upper = (index + 1).clamp_max(2 * support_size)[..., None]
    return probs.scatter_add_(-1, upper, upper_weight[..., None])


def support_to_scalar(logits: torch.Tensor, support_size: int, step: float = 1.0) -> torch.Tensor:
    """[..., 2S+1] logits -> [...] scalars: h^-1 of the expected support value."""
    support = torch.arange(-support_size, support_size + 1, device=logits.device) * step
    expected = (torch.softmax(logits.float(), dim=-1) * support).sum(-1)
    return h_inverse(expected)
