"""Stateful gradient aggregators that torchjd 0.18.0 does not provide: GradNorm and MoCo."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from mtrl.agents.gradients.base import GradientAggregator, adam_init, adam_step
from mtrl.agents.gradients.config import GradNormConfig, MoCoConfig
from mtrl.agents.gradients.solvers import project_to_simplex


class GradNorm(GradientAggregator):
    """GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018).

    Weights ``w`` (summing to ``T``) are moved so that the weighted gradient norms
    ``w_i |g_i|`` approach ``mean_j(w_j |g_j|) * r_i ** alpha``, ``r_i`` being task i's relative
    inverse training rate ``(L_i / L_i(0)) / mean_j(L_j / L_j(0))``; the update is
    ``sum_i w_i g_i`` with the weights before their step.

    Two choices of ours: the norms are taken on all shared parameters (the paper uses the last
    shared layer to save the backward; we have the per-task Jacobian anyway), and ``w`` is
    parametrised as ``T * softmax(log_w)`` so the sum-to-T renormalisation is built in and
    tasks whose gradients differ by orders of magnitude are balanced by multiplicative steps.
    With absent tasks, the P present ones share ``P * softmax`` of their log-weights.
    """

    name = "gradnorm"

    def __init__(self, num_tasks: int, config: GradNormConfig) -> None:
        super().__init__(num_tasks)
        self.config = config
        self.state["log_weights"] = torch.zeros(num_tasks)
        adam_init(self.state, "log_weights", self.state["log_weights"])
        self.state["initial_losses"] = torch.ones(num_tasks)
        self.state["has_initial"] = torch.zeros(num_tasks)

    def aggregate(self, jacobian: Tensor, losses: Tensor, mask: Tensor | None = None) -> Tensor:
        self.check_losses(losses)
        mask = self.resolve_mask(mask, jacobian.device)
        self.check_jacobian(jacobian, mask)
        self.to_device(jacobian.device)
        losses = losses.detach().to(self.state["log_weights"].dtype)
        self._record_initial_losses(losses, mask)
        count = int(mask.sum())
        w = count * torch.softmax(self.state["log_weights"][mask], dim=0)
        update = w.to(jacobian.dtype) @ jacobian
        self.last_weights = self.spread(w.detach(), mask)
        self._step_weights(w, jacobian.norm(dim=1).to(w.dtype), losses[mask], mask)
        return update

    def _record_initial_losses(self, losses: Tensor, mask: Tensor) -> None:
        """``L_i(0)``: each task's loss the first time it is present."""
        new = mask & ~self.state["has_initial"].bool()
        self.state["initial_losses"] = torch.where(new, losses, self.state["initial_losses"])
        self.state["has_initial"] = (self.state["has_initial"].bool() | mask).to(losses.dtype)

    def _step_weights(self, w: Tensor, norms: Tensor, losses: Tensor, mask: Tensor) -> None:
        weighted = w * norms
        ratio = losses / self.state["initial_losses"][mask].clamp_min(1e-12)
        inverse_rate = ratio / ratio.mean().clamp_min(1e-12)
        target = weighted.mean() * inverse_rate**self.config.alpha
        grad_w = torch.sign(weighted - target) * norms
        # Chain rule through w = P * softmax(log_w) over the P present tasks.
        grad_log_w = w * (grad_w - (w * grad_w).sum() / w.shape[0])
        adam_step(
            self.state, "log_weights", self.spread(grad_log_w, mask), self.config.adam, mask=mask
        )


class MoCo(GradientAggregator):
    """MoCo (Fernando, Shen, Liu, Chaudhury, Murugesan & Chen, ICLR 2023).

    Tracks each task's gradient with ``y_i <- y_i - beta (y_i - g_i)`` to remove the bias of
    stochastic MGDA-like weights, then takes one projected step on the simplex weights
    ``lambda <- P(lambda - gamma (Y Y^T + rho I) lambda)``; the update is ``Y^T lambda``.
    Our choice: ``Y Y^T`` is normalised by its trace so ``gamma`` does not depend on the scale
    of the gradients. The tracked gradients are ``[T, n]`` state: memory ``T`` times the shared
    parameters; they restart when the shared parameter count changes (a DPS stage).
    """

    name = "moco"

    def __init__(self, num_tasks: int, config: MoCoConfig) -> None:
        super().__init__(num_tasks)
        self.config = config
        self.state["lambda"] = torch.full((num_tasks,), 1.0 / num_tasks)
        self.state["has_tracked"] = torch.zeros(num_tasks)

    def aggregate(self, jacobian: Tensor, losses: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = self.resolve_mask(mask, jacobian.device)
        self.check_jacobian(jacobian, mask)
        self.to_device(jacobian.device)
        tracked = self._track(jacobian.detach(), mask)[mask]
        gramian = tracked @ tracked.T
        gramian = gramian / gramian.diagonal().sum().clamp_min(1e-30)
        lam = self.state["lambda"][mask].to(tracked.dtype)
        lam = lam / lam.sum().clamp_min(1e-30)  # renormalised over the present tasks
        step = gramian @ lam + self.config.rho * lam
        lam = project_to_simplex(lam - self.config.gamma * step)
        full = self.state["lambda"].clone()
        full[mask] = lam.to(full.dtype)
        self.state["lambda"] = full
        self.last_weights = self.spread(lam.detach(), mask)
        return lam @ tracked

    def _track(self, jacobian: Tensor, mask: Tensor) -> Tensor:
        """Updates the present tasks' tracked gradients (first sight: the gradient itself)."""
        shape = (self.num_tasks, jacobian.shape[1])
        if "tracked" not in self.state or self.state["tracked"].shape != shape:
            # First use, or the shared parameters changed (e.g. a DPS stage): start afresh.
            self.state["tracked"] = jacobian.new_zeros(shape)
            self.state["has_tracked"] = torch.zeros(self.num_tasks, device=jacobian.device)
        seen = self.state["has_tracked"].bool()
        old = self.state["tracked"][mask]
        new = torch.where(seen[mask, None], old.lerp(jacobian, self.config.beta), jacobian)
        tracked = self.state["tracked"].clone()
        tracked[mask] = new
        self.state["tracked"] = tracked
        self.state["has_tracked"] = (seen | mask).to(self.state["has_tracked"].dtype)
        return tracked

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        # The tracked gradients' shape follows the shared parameters, known on first use, so
        # take whatever was saved; a later shape change restarts the tracking.
        if "tracked" in state:
            self.state["tracked"] = state["tracked"].detach().clone()
        else:
            self.state.pop("tracked", None)
        super().load_state_dict(state)
