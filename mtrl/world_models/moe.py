"""Mixture-of-Experts feed-forward whose router learns.

Routing (per token): ``p = softmax(router(x))`` over *all* experts, the top-k experts are
chosen, and their gates are ``p`` restricted to the top-k and renormalised (Mixtral, Jiang et
al. 2024). With ``top_k == 1`` renormalising would make every gate exactly 1 — the router would
get no gradient from the task loss, the bug of the reference implementation — so top-1 keeps the
raw probability as its gate (Switch Transformer, Fedus et al. 2021). Either way the router also
learns from the Switch load-balancing loss ``E * sum_e f_e * P_e`` (f: fraction of assignments,
P: mean probability), whose minimum 1 is reached at uniform load.

Dispatch is vectorised: assignments are sorted by expert and each expert's rows go through one
grouped matmul (``F.grouped_mm``; no Python loop over tokens). Optional capacity drops the
assignments beyond ``capacity_factor * N * k / E`` per expert (Switch), in token order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mtrl.world_models.lora import LoRABank, LoRALinear, grouped_matmul


@dataclass(frozen=True)
class MoEAux:
    """What one MoE call reports besides its output."""

    balance: torch.Tensor  # [] Switch load-balancing loss (1.0 at uniform load)
    load: torch.Tensor  # [E] fraction of assignments per expert (before capacity drops)


class SwiGLU(nn.Module):
    """Dense SwiGLU feed-forward (Shazeer 2020) with LoRA banks: the shared expert."""

    def __init__(self, dim: int, hidden: int, bank: dict[str, float]) -> None:
        super().__init__()
        self.up = LoRALinear(dim, 2 * hidden, bank, bias=False)
        self.down = LoRALinear(hidden, dim, bank, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * value)


class Experts(nn.Module):
    """``E`` SwiGLU experts stored as stacked weights, applied to rows sorted by expert."""

    def __init__(self, num: int, dim: int, hidden: int, bank: dict[str, float]) -> None:
        super().__init__()
        self.up = nn.Parameter(torch.randn(num, dim, 2 * hidden) / math.sqrt(dim))
        self.down = nn.Parameter(torch.randn(num, hidden, dim) / math.sqrt(hidden))
        self.up_lora = LoRABank(dim, 2 * hidden, groups=num, **bank)  # type: ignore[arg-type]
        self.down_lora = LoRABank(hidden, dim, groups=num, **bank)  # type: ignore[arg-type]

    def forward(self, xs: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        h = _plus(grouped_matmul(xs, self.up, offsets), self.up_lora.grouped_delta(xs, offsets))
        gate, value = h.chunk(2, dim=-1)
        h = F.silu(gate) * value
        return _plus(
            grouped_matmul(h, self.down, offsets), self.down_lora.grouped_delta(h, offsets)
        )


def _count(index: torch.Tensor, size: int) -> torch.Tensor:
    """``bincount`` with a fixed length: its shape does not depend on the data, so it stays
    inside a compiled or captured graph."""
    return torch.zeros(size, dtype=torch.int64, device=index.device).index_add_(
        0, index, torch.ones_like(index)
    )


def _plus(y: torch.Tensor, delta: torch.Tensor | None) -> torch.Tensor:
    return y if delta is None else y + delta


class MoE(nn.Module):
    """Routed experts plus an always-on shared expert; keeps per-task load counts for logging."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        num_experts: int,
        top_k: int,
        num_tasks: int,
        bank: dict[str, float],
        shared: bool = True,
        capacity_factor: float | None = None,
    ) -> None:
        super().__init__()
        self.num_experts, self.top_k, self.capacity_factor = num_experts, top_k, capacity_factor
        self.router = nn.Linear(dim, num_experts, bias=False)
        self.experts = Experts(num_experts, dim, hidden, bank)
        self.shared = SwiGLU(dim, hidden, bank) if shared else None
        # Assignments per (task, expert) since the last reset; not part of checkpoints.
        self.register_buffer("task_load", torch.zeros(num_tasks, num_experts), persistent=False)

    def forward(
        self, x: torch.Tensor, token_task: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, MoEAux]:
        """``x`` [N, D], ``token_task`` [N] task id of each token -> ([N, D], aux)."""
        probs = torch.softmax(self.router(x).float(), dim=-1)  # [N, E]
        gates, experts = self.route(probs)  # [N, k] each
        aux = self.balance(probs, experts)
        self.count_load(experts, token_task)
        out = self.dispatch(x, gates.to(x.dtype), experts)
        if self.shared is not None:
            out = out + self.shared(x)
        return out, aux

    def route(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        top_p, top_i = probs.topk(self.top_k, dim=-1)
        if self.top_k > 1:  # renormalise over the top-k (the gradient flows through the ratios)
            top_p = top_p / top_p.sum(dim=-1, keepdim=True)
        return top_p, top_i

    def balance(self, probs: torch.Tensor, experts: torch.Tensor) -> MoEAux:
        counts = _count(experts.flatten(), self.num_experts).to(probs.dtype)
        load = counts / counts.sum().clamp_min(1.0)
        balance = self.num_experts * (load * probs.mean(dim=0)).sum()
        return MoEAux(balance=balance, load=load)

    @torch.no_grad()
    def count_load(self, experts: torch.Tensor, token_task: torch.Tensor | None) -> None:
        if token_task is None:
            return
        index = token_task[:, None] * self.num_experts + experts  # [N, k]
        counts = _count(index.flatten(), self.task_load.numel())
        self.task_load += counts.view_as(self.task_load).to(self.task_load.dtype)

    def dispatch(self, x: torch.Tensor, gates: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        """Sort the N*k assignments by expert, run the experts grouped, scatter-add back."""
        flat_expert = experts.flatten()
        order = torch.argsort(flat_expert, stable=True)
        token = order // self.top_k  # assignment j belongs to token j // k
        expert = flat_expert[order]
        gate = gates.flatten()[order]
        counts = _count(expert, self.num_experts)
        if self.capacity_factor is not None:
            token, gate, counts = self.drop_over_capacity(token, expert, gate, counts)
        offsets = counts.cumsum(0).to(torch.int32)
        y = self.experts(x[token], offsets) * gate[:, None]
        return torch.zeros_like(x, dtype=y.dtype).index_add_(0, token, y)

    def drop_over_capacity(
        self, token: torch.Tensor, expert: torch.Tensor, gate: torch.Tensor, counts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        assert self.capacity_factor is not None
        capacity = math.ceil(self.capacity_factor * token.numel() / self.num_experts)
        starts = counts.cumsum(0) - counts
        rank = torch.arange(token.numel(), device=token.device) - starts[expert]
        keep = rank < capacity  # sorting is stable, so earlier tokens win
        return token[keep], gate[keep], counts.clamp_max(capacity)

    def reset_load(self) -> None:
        self.task_load.zero_()
