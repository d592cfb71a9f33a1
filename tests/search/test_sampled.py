"""Sampled search over continuous actions."""

from __future__ import annotations

import torch

from mtrl.search import SampledRoot, SearchConfig, sampled_search
from mtrl.search.sampled import ContinuousModelOutput


class SteerToTarget:
    """Reward -|action - target|^2 on the first step, values 0: the best root sample is the
    one nearest the target. Ids count up."""

    def __init__(self, target: torch.Tensor) -> None:
        self.target = target  # [B, D]
        self.next_id = 1000

    def __call__(self, parent: torch.Tensor, action: torch.Tensor) -> ContinuousModelOutput:
        batch, dims = action.shape
        first_step = parent < 1000
        cost = ((action - self.target) ** 2).sum(dim=1)
        ids = torch.arange(self.next_id, self.next_id + batch)
        self.next_id += batch
        return ContinuousModelOutput(
            mean=torch.zeros(batch, dims),
            log_std=torch.zeros(batch, dims),
            value=torch.zeros(batch),
            reward=torch.where(first_step, -cost, 0.0),
            embedding_id=ids,
        )


def test_visits_go_to_the_best_sample(host_backend: str) -> None:
    batch, dims, samples = 3, 2, 6
    target = torch.tensor([[1.0, 1.0], [-1.0, 0.5], [0.0, 0.0]])
    root = SampledRoot(
        mean=torch.zeros(batch, dims),
        log_std=torch.zeros(batch, dims),
        value=torch.zeros(batch),
        embedding_id=torch.arange(batch),
    )
    out = sampled_search(
        root,
        SteerToTarget(target),
        SearchConfig(num_simulations=60),
        num_samples=samples,
        seed=4,
        backend=host_backend,
    )
    assert tuple(out.actions.shape) == (batch, samples, dims)
    assert out.visit_counts.sum(dim=1).tolist() == [60] * batch
    nearest = ((out.actions - target[:, None]) ** 2).sum(dim=2).argmin(dim=1)
    assert torch.equal(out.visit_counts.argmax(dim=1), nearest.to(torch.int64))
    assert torch.equal(out.action, out.actions[torch.arange(batch), nearest])
    # Deeper nodes sample their own K actions: the tree's expanded depth exceeds 1.
    assert int(out.search.tree.depth.amax()) >= 2


def test_samples_follow_the_root_policy() -> None:
    root = SampledRoot(
        mean=torch.tensor([[5.0, -5.0]]),
        log_std=torch.log(torch.tensor([[0.01, 0.01]])),
        value=torch.zeros(1),
        embedding_id=torch.zeros(1, dtype=torch.int64),
    )
    out = sampled_search(
        root,
        SteerToTarget(torch.zeros(1, 2)),
        SearchConfig(num_simulations=4),
        num_samples=8,
        backend="torch",
    )
    assert torch.allclose(out.actions[0], torch.tensor([5.0, -5.0]).expand(8, 2), atol=0.1)
