"""LoRA banks for Dynamic Parameter Scaling (ScaleZero, 2025; LoRA: Hu et al. 2021).

Every wrapped linear owns ``count`` low-rank adapters. Adapter ``i`` adds
``s_i * (alpha / r) * B_i A_i x`` with a learnable scale ``s_i = 1 + bound * tanh(theta_i)``,
so the scale stays inside ``1 ± bound``. ``B_i`` starts at zero: a fresh adapter changes
nothing until it trains. Only the first ``active`` adapters take part in the forward pass; the
DPS stage object (``dps.py``) sets ``active`` and decides what trains.

Each adapter's tensors are separate ``Parameter`` objects because ``requires_grad`` is per
tensor: stage ``s`` must be able to train adapter ``s - 1`` and nothing else of the bank.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LoRABank(nn.Module):
    """``count`` adapters for a batch of ``groups`` linears ``[in] -> [out]`` (groups = experts).

    Shapes: ``A[i]`` is ``[groups, in, rank]``, ``B[i]`` is ``[groups, rank, out]``; a plain
    linear uses ``groups == 1``.
    """

    def __init__(
        self, d_in: int, d_out: int, count: int, rank: int, alpha: float, bound: float, groups: int
    ) -> None:
        super().__init__()
        self.count, self.rank, self.bound = count, rank, bound
        self.factor = alpha / rank
        self.active = 0  # adapters in the forward pass, set by DPS (a Python int: no host sync)
        # A ~ N(0, 1/in) so that A x has unit scale; B = 0 so a new adapter is a no-op.
        self.A = nn.ParameterList(
            nn.Parameter(torch.randn(groups, d_in, rank) / math.sqrt(d_in)) for _ in range(count)
        )
        self.B = nn.ParameterList(
            nn.Parameter(torch.zeros(groups, rank, d_out)) for _ in range(count)
        )
        self.theta = nn.ParameterList(nn.Parameter(torch.zeros(())) for _ in range(count))

    def scale(self, i: int) -> torch.Tensor:
        """Bounded scale of adapter ``i`` (1 ± bound)."""
        return 1.0 + self.bound * torch.tanh(self.theta[i])

    def adapter_parameters(self, i: int) -> list[nn.Parameter]:
        return [self.A[i], self.B[i], self.theta[i]]

    def delta(self, x: torch.Tensor) -> torch.Tensor | None:
        """Sum of the active adapters' outputs for a single linear (``groups == 1``)."""
        out = None
        for i in range(self.active):
            y = (x @ self.A[i][0]) @ self.B[i][0] * (self.scale(i) * self.factor)
            out = y if out is None else out + y
        return out

    def grouped_delta(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor | None:
        """Active adapters for rows sorted by group (experts); ``offsets`` as in grouped_mm."""
        out = None
        for i in range(self.active):
            u = grouped_matmul(x, self.A[i], offsets)
            y = grouped_matmul(u, self.B[i], offsets) * (self.scale(i) * self.factor)
            out = y if out is None else out + y
        return out


class LoRALinear(nn.Module):
    """``nn.Linear`` with a LoRA bank; the base weight is the backbone part."""

    def __init__(self, d_in: int, d_out: int, bank: dict[str, float], bias: bool = True) -> None:
        super().__init__()
        self.base = nn.Linear(d_in, d_out, bias=bias)
        self.lora = LoRABank(d_in, d_out, groups=1, **bank)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        delta = self.lora.delta(x)
        return y if delta is None else y + delta


def grouped_matmul(x: torch.Tensor, w: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` [M, in] sorted by group times that group's ``w`` [G, in, out].

    ``offsets`` [G] int32 holds the cumulative row counts (end of each group). Uses
    ``torch.nn.functional.grouped_mm`` (one kernel, CPU and CUDA) and falls back to a loop over
    the groups where it is unavailable or rejects the dtype/alignment.
    """
    if torch.compiler.is_compiling():
        # Traced code cannot take the eager fallbacks below (they branch on the data), and
        # grouped_mm's traced form takes bfloat16 only.
        if x.dtype == w.dtype == torch.bfloat16 and _GROUPED_MM_OK:
            return F.grouped_mm(x, w, offs=offsets)
        return grouped_matmul_dense(x, w, offsets)
    key = (x.device.type, x.dtype, w.dtype)
    if _GROUPED_MM_OK and x.shape[0] > 0 and key not in _GROUPED_MM_REJECTED:
        try:
            return F.grouped_mm(x, w, offs=offsets)
        except (RuntimeError, NotImplementedError):
            _GROUPED_MM_REJECTED.add(key)  # don't pay for the exception on every call
    return grouped_matmul_loop(x, w, offsets)


def grouped_matmul_loop(x: torch.Tensor, w: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Reference for ``grouped_matmul``: one matmul per group (a loop over experts, not tokens)."""
    ends = offsets.tolist()
    starts = [0, *ends[:-1]]
    parts = [x[s:e] @ w[g] for g, (s, e) in enumerate(zip(starts, ends, strict=True))]
    return torch.cat(parts) if parts else x.new_zeros(0, w.shape[-1])


def grouped_matmul_dense(x: torch.Tensor, w: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``grouped_matmul`` in fixed shapes: every row times every group's weights, then each
    row keeps its own group's product (G times the FLOPs; for traced code on non-bf16)."""
    rows = torch.arange(x.shape[0], device=x.device)
    group = torch.searchsorted(offsets.to(torch.int64), rows, right=True).clamp_max(w.shape[0] - 1)
    return torch.einsum("mi,gio->mgo", x, w)[rows, group]


_GROUPED_MM_OK = hasattr(F, "grouped_mm")
_GROUPED_MM_REJECTED: set[tuple[str, torch.dtype, torch.dtype]] = set()


def lora_kwargs(count: int, rank: int, alpha: float, bound: float) -> dict[str, float]:
    """The bank arguments shared by every wrapped linear of a model."""
    return {"count": count, "rank": rank, "alpha": alpha, "bound": bound}


def set_active_adapters(module: nn.Module, active: int) -> None:
    """Make the first ``active`` adapters of every bank in ``module`` take part in forward."""
    for bank in module.modules():
        if isinstance(bank, LoRABank):
            if not 0 <= active <= bank.count:
                raise ValueError(f"active adapters must be in [0, {bank.count}], got {active}")
            bank.active = active
