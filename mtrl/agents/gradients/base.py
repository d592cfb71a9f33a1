"""The aggregator interface: per-task losses or per-task shared gradients in, one update out.

Two kinds share one base so the update loop and checkpoints treat them alike:

* :class:`LossAggregator` — ``aggregate(losses[T]) -> scalar``; the update is the gradient of
  that scalar, so no per-task backward is needed (sum, mean, FAMO, uncertainty weighting).
* :class:`GradientAggregator` — ``aggregate(jacobian[T, n], losses[T]) -> update[n]`` on the
  flattened shared parameters (PCGrad, CAGrad, Nash-MTL, Aligned-MTL, UPGrad, MoCo, GradNorm).

Tasks absent from a batch: ``mask`` (bool ``[T]``, ``None`` = all present) leaves them out of
the update and leaves their state untouched; ``losses`` stays ``[T]`` (absent entries are
ignored) while ``jacobian`` holds the present tasks' rows only.

State lives in ``self.state``, a flat ``dict[str, Tensor]``, so ``state_dict`` is loadable with
``torch.load(weights_only=True)`` and a resume continues exactly where it stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import torch
from torch import Tensor

from mtrl.agents.gradients.config import AdamConfig


class Aggregator:
    """Task-count checks, tensor-only state, last weights; subclass a kind below."""

    name: str = "aggregator"

    def __init__(self, num_tasks: int) -> None:
        if num_tasks < 1:
            raise ValueError(f"{type(self).__name__} needs num_tasks >= 1, got {num_tasks}")
        self.num_tasks = num_tasks
        self.state: dict[str, Tensor] = {}
        # Effective per-task weights of the last update, for logging only.
        self.last_weights: Tensor | None = None

    def check_losses(self, losses: Tensor) -> None:
        if losses.shape != (self.num_tasks,):
            raise ValueError(
                f"{self.name} expects losses of shape ({self.num_tasks},), "
                f"got {tuple(losses.shape)}"
            )

    def resolve_mask(self, mask: Tensor | None, device: torch.device) -> Tensor:
        """The present-task mask as bool ``[T]`` on ``device``; at least one task present."""
        if mask is None:
            return torch.ones(self.num_tasks, dtype=torch.bool, device=device)
        if mask.shape != (self.num_tasks,):
            raise ValueError(
                f"{self.name} expects a task mask of shape ({self.num_tasks},), "
                f"got {tuple(mask.shape)}"
            )
        mask = mask.to(device=device, dtype=torch.bool)
        if not bool(mask.any()):
            raise ValueError(f"{self.name} got a task mask with no task present")
        return mask

    def spread(self, values: Tensor, mask: Tensor) -> Tensor:
        """Per-present-task values back to ``[T]`` with zeros for absent tasks (for logging)."""
        full = values.new_zeros(self.num_tasks)
        full[mask] = values
        return full

    def observe_losses_after_step(self, losses: Tensor, mask: Tensor | None = None) -> None:
        """Losses recomputed on the same batch after the optimizer step (FAMO uses them)."""

    def state_dict(self) -> dict[str, Tensor]:
        return {key: value.detach().clone() for key, value in self.state.items()}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        missing = sorted(set(self.state) - set(state))
        unexpected = sorted(set(state) - set(self.state))
        if missing or unexpected:
            raise KeyError(
                f"{self.name} state mismatch: missing {missing}, unexpected {unexpected}"
            )
        for key, value in state.items():
            if value.shape != self.state[key].shape:
                raise ValueError(
                    f"{self.name} state {key!r} has shape {tuple(value.shape)}, "
                    f"expected {tuple(self.state[key].shape)} (num_tasks={self.num_tasks})"
                )
            self.state[key] = value.detach().clone().to(self.state[key].device)

    def to_device(self, device: torch.device) -> None:
        """Moves the state next to the gradients; done lazily on first use."""
        for key, value in self.state.items():
            if value.device != device:
                self.state[key] = value.to(device)


class LossAggregator(Aggregator, ABC):
    """Combines per-task losses into one scalar whose gradient is the update."""

    @abstractmethod
    def aggregate(self, losses: Tensor, mask: Tensor | None = None) -> Tensor:
        """``losses`` is ``[T]`` and attached to the graph; returns a scalar to differentiate."""


class GradientAggregator(Aggregator, ABC):
    """Combines per-task gradients on the shared parameters into one update vector."""

    @abstractmethod
    def aggregate(self, jacobian: Tensor, losses: Tensor, mask: Tensor | None = None) -> Tensor:
        """``jacobian`` is ``[P, n]`` (present tasks), ``losses`` detached ``[T]``; returns the
        update ``[n]``."""

    def check_jacobian(self, jacobian: Tensor, mask: Tensor) -> None:
        rows = int(mask.sum())
        if jacobian.ndim != 2 or jacobian.shape[0] != rows:
            raise ValueError(
                f"{self.name} expects a jacobian of shape ({rows}, n) for {rows} present of "
                f"{self.num_tasks} tasks, got {tuple(jacobian.shape)}"
            )


def adam_init(state: dict[str, Tensor], name: str, like: Tensor) -> None:
    """Adds zeroed Adam moments (and per-entry step counts) for ``state[name]`` to ``state``."""
    state[f"{name}.exp_avg"] = torch.zeros_like(like)
    state[f"{name}.exp_avg_sq"] = torch.zeros_like(like)
    state[f"{name}.step"] = torch.zeros_like(like)


def adam_step(
    state: dict[str, Tensor],
    name: str,
    grad: Tensor,
    config: AdamConfig,
    mask: Tensor | None = None,
) -> None:
    """One Adam step on the entries of ``state[name]`` selected by ``mask`` (all if ``None``).

    Moments and step counts live in ``state`` so they checkpoint; counts are per entry so a
    task absent from some updates gets the right bias correction when it returns.
    """
    param = state[name]
    if mask is None:
        mask = torch.ones_like(param, dtype=torch.bool)
    if config.weight_decay:
        grad = grad + config.weight_decay * param
    step = state[f"{name}.step"] + mask.to(param.dtype)
    exp_avg = state[f"{name}.exp_avg"].lerp(grad, 1 - config.beta1)
    exp_avg_sq = state[f"{name}.exp_avg_sq"] * config.beta2 + (1 - config.beta2) * grad * grad
    # Tensor powers keep this free of host syncs on GPU; clamp avoids 0/0 on unused entries.
    bias1 = (1 - config.beta1**step).clamp_min(1e-12)
    bias2 = (1 - config.beta2**step).clamp_min(1e-12)
    denom = (exp_avg_sq / bias2).sqrt() + config.eps
    updated = param - config.lr * (exp_avg / bias1) / denom
    state[name] = torch.where(mask, updated, param)
    state[f"{name}.exp_avg"] = torch.where(mask, exp_avg, state[f"{name}.exp_avg"])
    state[f"{name}.exp_avg_sq"] = torch.where(mask, exp_avg_sq, state[f"{name}.exp_avg_sq"])
    state[f"{name}.step"] = step
