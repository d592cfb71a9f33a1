"""Tasks absent from a batch: left out of the update, the metrics and the aggregator state."""

import pytest
import torch
from torch import nn

from mtrl.agents.gradients import (
    GradientConfig,
    MultiTaskUpdate,
    available_aggregators,
    build_aggregator,
    by_prefix,
    split_parameters,
)

TASKS = ("a", "b", "c")
PRESENT = torch.tensor([True, False, True])
STATEFUL = ("famo", "gradnorm", "uncertainty", "moco")


def make_model() -> nn.ModuleDict:
    torch.manual_seed(0)
    return nn.ModuleDict(
        {"trunk": nn.Sequential(nn.Linear(4, 6), nn.Tanh()), "heads": nn.Linear(6, 3)}
    )


def task_losses(model: nn.ModuleDict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    per_task = (model["heads"](model["trunk"](x)) - y).pow(2).mean(dim=0)
    return per_task * PRESENT  # what a learner hands over: absent tasks contribute 0


def run(name: str, present: torch.Tensor | None, steps: int = 3):
    model = make_model()
    split = split_parameters(model, by_prefix("trunk."))
    update = MultiTaskUpdate.from_config(
        split, TASKS, GradientConfig(aggregator=name, metrics_every=1)
    )
    gen = torch.Generator().manual_seed(1)
    metrics = {}
    for _ in range(steps):
        x = torch.randn(8, 4, generator=gen)
        y = torch.randn(8, 3, generator=gen) * torch.tensor([1.0, 3.0, 0.3])
        model.zero_grad(set_to_none=True)
        metrics = update.backward(task_losses(model, x, y), present=present)
    return model, update, metrics


@pytest.mark.parametrize("name", available_aggregators())
def test_absent_task_leaves_grads_finite_and_its_state_untouched(name: str) -> None:
    model, update, metrics = run(name, PRESENT)
    for param in model.parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all()
    fresh = build_aggregator(GradientConfig(aggregator=name), 3).state_dict()
    for key, value in update.aggregator.state_dict().items():
        if key in fresh and value.shape == fresh[key].shape and value.shape[:1] == (3,):
            if key.startswith("lambda"):  # MoCo's simplex weights: only the present renormalise
                continue
            torch.testing.assert_close(value[1], fresh[key][1], msg=f"{name} {key} changed")
    assert "grad/norm/b" not in metrics and "grad/norm/a" in metrics
    assert metrics["grad/cosine"].shape == (2, 2)


@pytest.mark.parametrize("name", ["upgrad", "pcgrad", "cagrad", "nash_mtl", "aligned_mtl"])
def test_stateless_update_with_an_absent_task_equals_the_two_task_problem(name: str) -> None:
    model, _, _ = run(name, PRESENT, steps=1)
    with_mask = torch.cat([p.grad.flatten() for p in model["trunk"].parameters()])
    two = make_model()
    split = split_parameters(two, by_prefix("trunk."))
    agg = build_aggregator(GradientConfig(aggregator=name), 2)
    update = MultiTaskUpdate(split.shared, split.specific, agg, ("a", "c"))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 4, generator=gen)
    y = torch.randn(8, 3, generator=gen) * torch.tensor([1.0, 3.0, 0.3])
    torch.manual_seed(0)
    update.backward(task_losses(two, x, y)[PRESENT])
    expected = torch.cat([p.grad.flatten() for p in two["trunk"].parameters()])
    torch.testing.assert_close(with_mask, expected)


@pytest.mark.parametrize("name", STATEFUL)
def test_a_task_that_returns_picks_up_its_state(name: str) -> None:
    agg = build_aggregator(GradientConfig(aggregator=name), 3)
    gen = torch.Generator().manual_seed(0)
    masks = [PRESENT, PRESENT, torch.ones(3, dtype=torch.bool), PRESENT]
    for mask in masks:
        losses = torch.rand(3, generator=gen) + 0.5
        if name in ("gradnorm", "moco"):
            out = agg.aggregate(torch.randn(int(mask.sum()), 5, generator=gen), losses, mask)
        else:
            out = agg.aggregate(losses.requires_grad_(), mask)
        assert torch.isfinite(out).all()
        assert agg.last_weights is not None and float(agg.last_weights[~mask].abs().sum()) == 0


def test_bad_masks_are_named() -> None:
    _, update, _ = run("upgrad", None, steps=1)
    losses = torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match=r"task mask of shape \(3,\), got \(2,\)"):
        update.backward(losses, present=torch.tensor([True, False]))
    with pytest.raises(ValueError, match="no task present"):
        update.backward(losses, present=torch.zeros(3, dtype=torch.bool))
