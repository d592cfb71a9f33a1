"""Loss-based aggregators: the update is the gradient of a scalar built from the task losses.

None of them needs per-task gradients, so an update costs one ordinary backward.

FAMO and uncertainty weighting exist in ``torchjd.scalarization`` too. We keep our own short
versions because torchjd's FAMO holds its Adam moments and the previous losses outside its
``state_dict`` (a resume would silently restart them), and its ``UW`` expects its log-variances
in the model's optimizer, which the DPS stage changes rebuild; here every piece of state is a
tensor in ``Aggregator.state`` and the weights take their own Adam step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtrl.agents.gradients.base import LossAggregator, adam_init, adam_step
from mtrl.agents.gradients.config import FAMOConfig, UncertaintyConfig


class SumLosses(LossAggregator):
    """Plain sum of task losses: the baseline."""

    name = "sum"

    def aggregate(self, losses: Tensor, mask: Tensor | None = None) -> Tensor:
        self.check_losses(losses)
        mask = self.resolve_mask(mask, losses.device)
        self.last_weights = mask.to(losses.dtype)
        return losses[mask].sum()


class MeanLosses(LossAggregator):
    """Plain mean of the present tasks' losses: the sum scaled by ``1 / T``."""

    name = "mean"

    def aggregate(self, losses: Tensor, mask: Tensor | None = None) -> Tensor:
        self.check_losses(losses)
        mask = self.resolve_mask(mask, losses.device)
        self.last_weights = mask.to(losses.dtype) / mask.sum()
        return losses[mask].mean()


class FAMO(LossAggregator):
    """Fast Adaptive Multitask Optimization (Liu, Feng, Stone & Liu, NeurIPS 2023).

    The model gets ``c * sum_i z_i log(L_i - b)``, ``z = softmax(logits)``, with ``c`` making the
    update a convex combination of ``grad L_i / (L_i - b)``: every task's log-loss, so losses of
    very different scales pull equally. The logits then take an Adam step on
    ``z . delta``, ``delta_i = log L_i(before) - log L_i(after)``, shifting weight to the tasks
    that improved least.

    "After" losses: pass the same batch's losses recomputed after the optimizer step to
    :meth:`observe_losses_after_step` (the paper's way, one extra forward). Without that call, the
    next :meth:`aggregate` uses its own losses as the "after" values of the previous step (no
    extra forward, noisier because the batch differs). Absent tasks take no part in either.
    """

    name = "famo"

    def __init__(self, num_tasks: int, config: FAMOConfig) -> None:
        super().__init__(num_tasks)
        self.config = config
        self.state["logits"] = torch.zeros(num_tasks)
        adam_init(self.state, "logits", self.state["logits"])
        self.state["prev_log_losses"] = torch.zeros(num_tasks)
        # Per task: 1 while a "before" loss waits for its "after" loss.
        self.state["has_prev"] = torch.zeros(num_tasks)

    def aggregate(self, losses: Tensor, mask: Tensor | None = None) -> Tensor:
        self.check_losses(losses)
        mask = self.resolve_mask(mask, losses.device)
        self.to_device(losses.device)
        self._update_logits(losses.detach(), mask)
        shifted = losses[mask] - self.config.min_loss + self.config.eps
        z = torch.softmax(self.state["logits"][mask], dim=0).to(losses.dtype)
        # c is a constant of the backward: it only rescales the combined gradient.
        c = 1.0 / (z / shifted.detach()).sum()
        self.last_weights = self.spread((c * z / shifted.detach()).detach(), mask)
        logs = self.state["prev_log_losses"].clone()
        logs[mask] = shifted.detach().log().to(logs.dtype)
        self.state["prev_log_losses"] = logs
        self.state["has_prev"] = mask.to(logs.dtype)
        return c * (z * shifted.log()).sum()

    def observe_losses_after_step(self, losses: Tensor, mask: Tensor | None = None) -> None:
        self.check_losses(losses)
        if not bool(self.state["has_prev"].any()):
            raise RuntimeError("FAMO.observe_losses_after_step called before aggregate")
        self._update_logits(losses.detach(), self.resolve_mask(mask, losses.device))

    def _update_logits(self, losses_after: Tensor, mask: Tensor) -> None:
        """Adam step on the logits of the tasks with both a "before" and an "after" loss."""
        both = mask & self.state["has_prev"].bool()
        if not bool(both.any()):
            return
        logits = self.state["logits"]
        after = (losses_after - self.config.min_loss + self.config.eps).clamp_min(1e-30).log()
        delta = torch.where(both, self.state["prev_log_losses"] - after.to(logits.dtype), 0.0)
        z = torch.where(both, torch.softmax(logits.masked_fill(~both, -torch.inf), dim=0), 0.0)
        # Gradient of z . delta through the softmax over the tasks involved.
        grad = z * (delta - (z * delta).sum())
        adam_step(self.state, "logits", grad, self.config.adam, mask=both)
        self.state["has_prev"] = torch.zeros_like(self.state["has_prev"])


class UncertaintyWeighting(LossAggregator):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

    Loss ``sum_i 0.5 exp(-s_i) L_i + 0.5 s_i`` with learnt log-variances ``s``. Its minimiser in
    ``s`` is ``s_i = log L_i``, so at equilibrium every task contributes ``0.5`` whatever the
    scale of its loss. ``s`` takes an Adam step on that objective after each call, using the
    current losses (our choice: with a clipped gradient, see below); absent tasks keep theirs.
    """

    name = "uncertainty"

    def __init__(self, num_tasks: int, config: UncertaintyConfig) -> None:
        super().__init__(num_tasks)
        self.config = config
        self.state["log_var"] = torch.zeros(num_tasks)
        adam_init(self.state, "log_var", self.state["log_var"])

    def aggregate(self, losses: Tensor, mask: Tensor | None = None) -> Tensor:
        self.check_losses(losses)
        mask = self.resolve_mask(mask, losses.device)
        self.to_device(losses.device)
        log_var = self.state["log_var"].to(losses.dtype)
        weights = torch.where(mask, 0.5 * torch.exp(-log_var), 0.0)
        self.last_weights = weights
        combined = (weights[mask] * losses[mask]).sum() + 0.5 * log_var[mask].sum()
        # Clipped to [-0.5, 0.5] (the lower side is bounded anyway) so that a loss far above
        # its weight cannot inflate Adam's second moment and stall the approach to s = log L.
        grad = (0.5 - weights * losses.detach()).clamp(-0.5, 0.5)
        grad = torch.where(mask, grad, 0.0).to(self.state["log_var"].dtype)
        adam_step(self.state, "log_var", grad, self.config.adam, mask=mask)
        return combined
