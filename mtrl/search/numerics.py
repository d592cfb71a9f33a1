"""Shared numerics. Selection maths runs in float64 on float32 tree fields, in the operation
order the C++ backend uses, so both backends take the same decisions."""

from __future__ import annotations

import torch


def ordered_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over the last dim strictly left to right (cumsum is a sequential scan), the order
    the C++ loops use; ``Tensor.sum`` may reassociate and change the last bits."""
    return x.cumsum(dim=-1)[..., -1]


def masked_softmax(logits: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """Softmax over legal entries, computed in float64 and stored as float32.

    Written out (max, exp, ordered sum, divide) in the order the C++ backend uses, so both
    round to the same float32 priors.
    """
    masked = torch.where(legal, logits.double(), -torch.inf)
    top = masked.amax(dim=-1, keepdim=True)
    exps = torch.exp(masked - top)
    return (exps / ordered_sum(exps)[..., None]).float()


def normalize_q(q: torch.Tensor, min_q: torch.Tensor, max_q: torch.Tensor) -> torch.Tensor:
    """Per-tree min-max normalisation to [0, 1] in float64; 0 until two distinct values exist.

    q: [B, A] or [B]; min_q, max_q: [B]. Clamping keeps Gumbel's mixed value (which may lie
    outside the values seen so far) from blowing up the sigma transform.
    """
    lo = min_q.double()
    hi = max_q.double()
    if q.dim() == 2:
        lo, hi = lo[:, None], hi[:, None]
    scaled = ((q.double() - lo) / (hi - lo)).clamp(0.0, 1.0)
    return torch.where(hi > lo, scaled, 0.0)
