"""Value targets: n-step returns that tell terminations from truncations.

A stored episode piece has observations ``s_0 .. s_L`` (``s_L`` is the last one seen), rewards
``r_0 .. r_{L-1}`` (``r_t`` follows action ``a_t`` in ``s_t``) and an end flag: ``terminated``
means ``s_L`` is terminal (its value is 0, nothing to bootstrap); a truncated or still running
episode bootstraps from the target network's value of ``s_L``. The n-step target of step t is

    z_t = sum_{k < m} discount^k r_{t+k} + discount^m V(s_{t+m}),   m = min(n, L - t),

with ``V(s_L) = 0`` when terminated. ``n_step_parts`` splits z_t into what needs no network
(reward sums, where and how much to bootstrap) so that replay can compute it and the learner
only evaluates the target network at the bootstrap states.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NStepParts:
    reward_sum: torch.Tensor  # [B, L+1] sum_{k<m} discount^k r_{t+k}
    bootstrap_index: torch.Tensor  # [B, L+1] int64, t + m
    bootstrap_weight: torch.Tensor  # [B, L+1] discount^m, 0 where s_{t+m} is terminal
    valid: torch.Tensor  # [B, L+1] bool, t <= L_b


def n_step_parts(
    rewards: torch.Tensor,  # [B, L] float, zero beyond each sequence's length
    lengths: torch.Tensor,  # [B] int64, L_b <= L: number of real transitions
    terminated: torch.Tensor,  # [B] bool, s_{L_b} is terminal
    discount: torch.Tensor | float,  # [B] or scalar (per task)
    n: int,
) -> NStepParts:
    if n < 1:
        raise ValueError(f"n-step horizon must be >= 1, got {n}")
    batch, horizon = rewards.shape
    gamma = torch.as_tensor(discount, dtype=rewards.dtype).expand(batch).unsqueeze(1)  # [B, 1]
    positions = torch.arange(horizon + 1).unsqueeze(0)  # [1, L+1]
    lengths_col = lengths.unsqueeze(1)
    steps = (lengths_col - positions).clamp(min=0, max=n)  # m_t
    padded = torch.cat([rewards, rewards.new_zeros(batch, n)], dim=1)
    reward_sum = torch.zeros(batch, horizon + 1, dtype=rewards.dtype)
    for k in range(n):  # n is small (5-10); each iteration is one batched op
        reward_sum = (
            reward_sum + (k < steps).to(rewards.dtype) * gamma**k * padded[:, k:][:, : horizon + 1]
        )
    bootstrap_index = positions + steps
    at_terminal = terminated.unsqueeze(1) & (bootstrap_index == lengths_col)
    weight = torch.where(at_terminal, torch.zeros_like(reward_sum), gamma**steps)
    valid = positions <= lengths_col
    zero = torch.zeros_like(reward_sum)
    return NStepParts(
        reward_sum=torch.where(valid, reward_sum, zero),
        bootstrap_index=bootstrap_index.clamp(max=horizon),
        bootstrap_weight=torch.where(valid, weight, zero),
        valid=valid,
    )


def n_step_returns(
    rewards: torch.Tensor,  # [B, L]
    values: torch.Tensor,  # [B, L + 1] target-network values of s_0 .. s_L
    lengths: torch.Tensor,  # [B]
    terminated: torch.Tensor,  # [B]
    discount: torch.Tensor | float,
    n: int,
) -> torch.Tensor:  # [B, L + 1] n-step targets for s_0 .. s_L (0 past each end)
    batch, horizon = rewards.shape
    if values.shape != (batch, horizon + 1):
        raise ValueError(f"values must be [B, L+1] = {(batch, horizon + 1)}, got {values.shape}")
    parts = n_step_parts(rewards, lengths, terminated, discount, n)
    return parts.reward_sum + parts.bootstrap_weight * values.gather(1, parts.bootstrap_index)
