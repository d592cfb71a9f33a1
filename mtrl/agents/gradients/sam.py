"""Task-based sharpness-aware minimisation: each task's gradient at its own worst nearby point.

SAM (Foret et al. 2021) takes the gradient at ``theta + eps``, with ``eps = rho * g / ||g||``
the steepest ascent within radius ``rho``, so training prefers minima whose neighbourhood is
low too (flat ones). In multi-task learning one perturbation for the summed loss is a
compromise between the tasks; "Improving Multi-task Learning via Seeking Task-based Flat
Regions" (Phan et al.) perturbs per task instead: task ``t``'s gradient is taken at
``theta + eps_t`` from its own gradient ``g_t``, and the per-task gradients are then combined by
the configured aggregator (PCGrad, UPGrad, ...; loss-based aggregators weight them by
``d combined / d loss_t`` at ``theta``, which is how FAMO's or uncertainty weighting's
objective weighs each task's gradient). Adaptive SAM (ASAM, Kwon et al. 2021) scales the
radius by ``|theta|`` per parameter, so it does not depend on the parameters' scale.

Cost per update: the usual forward and per-task Jacobian at ``theta``, then one forward and
one backward per present task at its ascent point (``bench/README.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

PARAMS = ("shared", "all")


@dataclass(frozen=True)
class SamConfig:
    rho: float = 0.0  # ascent radius; 0 turns SAM off
    params: Literal["shared", "all"] = "shared"  # which parameters are perturbed
    adaptive: bool = False  # ASAM: the radius per parameter scales with |theta|

    def __post_init__(self) -> None:
        if self.rho < 0:
            raise ValueError(f"sam.rho must be >= 0, got {self.rho}")
        if self.params not in PARAMS:
            raise ValueError(f"sam.params must be one of {PARAMS}, got {self.params!r}")

    @property
    def enabled(self) -> bool:
        return self.rho > 0


def flat_values(params: Sequence[nn.Parameter]) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def ascent_steps(gradients: Tensor, params: Sequence[nn.Parameter], config: SamConfig) -> Tensor:
    """``[T, n]`` perturbations, one per task gradient row of ``gradients`` ``[T, n]``."""
    if not config.adaptive:
        norms = gradients.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return config.rho * gradients / norms
    scale = flat_values(params).abs()[None]
    scaled = scale * gradients
    norms = scaled.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return config.rho * scale * scaled / norms


@contextmanager
def perturbed(params: Sequence[nn.Parameter], step: Tensor) -> Iterator[None]:
    """``params`` moved by the flat ``step`` inside the block, restored exactly after it."""
    saved = [p.detach().clone() for p in params]
    offset = 0
    with torch.no_grad():
        for param in params:
            size = param.numel()
            param.add_(step[offset : offset + size].view_as(param).to(param.dtype))
            offset += size
    try:
        yield
    finally:
        with torch.no_grad():
            for param, value in zip(params, saved, strict=True):
                param.copy_(value)
