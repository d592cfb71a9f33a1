"""Task-based SAM: on a loss with a sharp and a flat minimum of equal depth, gradient descent
started in the sharp one's basin ends there and task-based SAM ends in the flat one, under a
gradient-based (PCGrad) and a loss-based, stateful (FAMO) aggregator; the perturbation is
undone exactly."""

import math

import pytest
import torch
from torch import nn

from mtrl.agents.gradients import GradientConfig, MultiTaskUpdate, SamConfig
from mtrl.agents.gradients.jacobian import ParameterSplit
from mtrl.agents.gradients.sam import ascent_steps, perturbed

SHARP, FLAT = 1.0, -1.0  # y of the two minima (both at x = 0, both of loss 0)
START = (1.0, 0.8)


def landscape(w: torch.Tensor) -> torch.Tensor:
    """``w = (x, y)``: a double well in y (minima y = +-1, barrier 0.1 at y = 0) and a valley
    in x whose curvature ``exp(2y)`` is 7.4 at the minimum y = 1 and 0.14 at y = -1."""
    x, y = w[0], w[1]
    return 0.5 * torch.exp(2 * y) * x**2 + 0.1 * (y**2 - 1) ** 2


def train(aggregator: str, rho: float, steps: int = 1500, lr: float = 0.05) -> float:
    """Final y, from (x, y) = (1, 0.8): inside the sharp minimum's basin."""
    w = nn.Parameter(torch.tensor(START))
    head = nn.Parameter(torch.tensor([0.0]))  # task b's own parameter, its minimum at 1

    def losses() -> torch.Tensor:  # positive everywhere (FAMO takes their logarithms)
        base = landscape(w) + 0.5
        return torch.stack([base, base + (head - 1).pow(2).sum()])

    split = ParameterSplit((w,), (head,), ("w",), ("head",))
    update = MultiTaskUpdate.from_config(
        split, ["a", "b"], GradientConfig(aggregator=aggregator), sam=SamConfig(rho=rho)
    )
    optimizer = torch.optim.SGD([w, head], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        update.backward(losses(), closure=losses)
        optimizer.step()
        if aggregator == "famo":
            update.observe_losses_after_step(losses().detach())
    return float(w.detach()[1])


# PCGrad sums the two tasks' (here equal) shared gradients where FAMO takes a convex
# combination: half the learning rate gives PCGrad the same steps.
@pytest.mark.parametrize(("aggregator", "lr"), [("pcgrad", 0.05), ("famo", 0.1)])
def test_sam_ends_in_the_flat_minimum_where_descent_ends_in_the_sharp_one(aggregator, lr) -> None:
    assert abs(train(aggregator, rho=0.0, lr=lr) - SHARP) < 0.05
    for rho in (0.3, 0.5):
        assert abs(train(aggregator, rho=rho, lr=lr) - FLAT) < 0.1, rho


def test_sam_needs_a_closure() -> None:
    w = nn.Parameter(torch.ones(1))
    update = MultiTaskUpdate.from_config(
        ParameterSplit((w,), (), ("w",), ()), ["a"], GradientConfig(), sam=SamConfig(rho=0.1)
    )
    with pytest.raises(ValueError, match="closure"):
        update.backward(torch.stack([w.sum()]))


def test_ascent_steps_have_radius_rho_and_the_parameters_come_back() -> None:
    params = [nn.Parameter(torch.tensor([3.0, -4.0])), nn.Parameter(torch.tensor([0.5]))]
    grads = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, -2.0]])
    steps = ascent_steps(grads, params, SamConfig(rho=0.1))
    assert torch.allclose(steps.norm(dim=1), torch.full((2,), 0.1))
    assert torch.allclose(steps[0], torch.tensor([0.06, 0.08, 0.0]))
    adaptive = ascent_steps(grads, params, SamConfig(rho=0.1, adaptive=True))
    # ASAM: eps = rho |theta|^2 g / || |theta| g ||: row 0 -> |theta| g = (9, -16... abs) ...
    scaled = torch.tensor([3.0, 4.0, 0.5]) * grads[0]
    want = 0.1 * torch.tensor([3.0, 4.0, 0.5]) * scaled / scaled.norm()
    assert torch.allclose(adaptive[0], want)
    before = [p.detach().clone() for p in params]
    with perturbed(params, steps[0]):
        assert torch.allclose(params[0].detach(), before[0] + torch.tensor([0.06, 0.08]))
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before, strict=True))


def test_bad_sam_settings() -> None:
    with pytest.raises(ValueError, match="rho"):
        SamConfig(rho=-1.0)
    with pytest.raises(ValueError, match="params"):
        SamConfig(rho=0.1, params="heads")  # type: ignore[arg-type]
    assert not SamConfig().enabled and math.isclose(SamConfig(rho=0.05).rho, 0.05)
