"""Gradient aggregators built on torchjd's ``Aggregator``/``Weighting`` classes.

torchjd (pinned 0.18.0) provides the Jacobian -> update plumbing and, dependency-free, Sum,
Mean, PCGrad, Aligned-MTL and UPGrad's weighting. Its UPGrad projector (quadprog), CAGrad
(cvxpy + clarabel) and Nash-MTL (cvxpy + ecos) need optional extras that are not in our
dependencies, so we plug our own small solvers (``solvers.py``) into torchjd's public
``DualConeProjector`` and ``Weighting`` interfaces instead of re-writing the methods around them.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchjd.aggregation import Aggregator as TorchJDAggregator
from torchjd.aggregation import GramianWeightedAggregator, WeightedAggregator, Weighting
from torchjd.linalg import DualConeProjector, PSDMatrix

from mtrl.agents.gradients.base import GradientAggregator
from mtrl.agents.gradients.solvers import (
    cagrad_weights,
    nash_bargaining_weights,
    normalized_gramian,
    solve_lower_bounded_qp,
)


class TorchDualConeProjector(DualConeProjector):
    """UPGrad's dual-cone projection ``min_v v^T G v s.t. v >= u`` by projected Newton."""

    def __init__(self, reg_eps: float = 1e-7) -> None:
        self.reg_eps = reg_eps

    def __call__(self, U: Tensor, G: PSDMatrix) -> Tensor:
        g = normalized_gramian(G, self.reg_eps)
        rows = U.detach().to(device="cpu", dtype=torch.float64).reshape(-1, g.shape[0])
        solution = solve_lower_bounded_qp(g, rows)
        return solution.reshape(U.shape).to(device=G.device, dtype=G.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reg_eps={self.reg_eps})"


class CAGradWeighting(Weighting[PSDMatrix]):
    """CAGrad's per-task weights from the Gramian (Liu et al., NeurIPS 2021)."""

    def __init__(self, c: float, max_iter: int = 100) -> None:
        super().__init__()
        self.c = c
        self.max_iter = max_iter

    def forward(self, gramian: PSDMatrix, /) -> Tensor:
        g = normalized_gramian(gramian, 0.0)
        weights = cagrad_weights(g, self.c, max_iter=self.max_iter)
        return weights.to(device=gramian.device, dtype=gramian.dtype)


class NashMTLWeighting(Weighting[PSDMatrix]):
    """Nash-MTL's bargaining weights: ``G a = 1 / a``, ``a > 0`` (Navon et al., ICML 2022).

    Solved on ``G / |G|_F`` for conditioning and rescaled by ``|G|_F ** -0.5`` back to the raw
    Gramian, as in the paper's reference code. So ``<g_i, d> = 1 / a_i > 0`` for every task
    (each task improves) and ``|d|^2 = a^T G a = T``: the update's norm is ``sqrt(T)`` whatever
    the scale of the gradients.
    """

    def __init__(self, reg_eps: float = 1e-6, max_iter: int = 100) -> None:
        super().__init__()
        self.reg_eps = reg_eps
        self.max_iter = max_iter

    def forward(self, gramian: PSDMatrix, /) -> Tensor:
        scale = float(torch.linalg.matrix_norm(gramian.detach().to(torch.float64)))
        if scale == 0.0:
            return torch.zeros(gramian.shape[0], device=gramian.device, dtype=gramian.dtype)
        g = normalized_gramian(gramian, self.reg_eps, by="frobenius")
        weights = nash_bargaining_weights(g, max_iter=self.max_iter) / scale**0.5
        return weights.to(device=gramian.device, dtype=gramian.dtype)


class TorchJDGradientAggregator(GradientAggregator):
    """Adapts a stateless torchjd ``Aggregator`` to our interface and records its weights."""

    def __init__(self, name: str, num_tasks: int, aggregator: TorchJDAggregator) -> None:
        super().__init__(num_tasks)
        self.name = name
        self.inner = aggregator

    def aggregate(self, jacobian: Tensor, losses: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = self.resolve_mask(mask, jacobian.device)
        self.check_jacobian(jacobian, mask)
        if not isinstance(self.inner, WeightedAggregator):
            return self.inner(jacobian)
        captured: list[Tensor] = []
        handle = self.inner.weighting.register_forward_hook(
            lambda _module, _inputs, output: captured.append(output.detach())
        )
        try:
            update = self.inner(jacobian)
        finally:
            handle.remove()
        self.last_weights = self.spread(captured[-1], mask) if captured else None
        return update


def quadprog_projector() -> DualConeProjector:
    """torchjd's default UPGrad projector; raises ImportError naming the missing extras."""
    from torchjd.linalg import QuadprogProjector

    return QuadprogProjector()


def gramian_weighted(weighting: Weighting[PSDMatrix]) -> GramianWeightedAggregator:
    return GramianWeightedAggregator(weighting)
