"""Stateful aggregators: rebalancing, equalised norms, and checkpoint round-trips."""

import io

import pytest
import torch

from mtrl.agents.gradients import (
    AdamConfig,
    GradientAggregator,
    GradientConfig,
    GradNormConfig,
    LossAggregator,
    UncertaintyConfig,
    available_aggregators,
    build_aggregator,
)

F64 = torch.float64


def two_scale_losses(x: torch.Tensor) -> torch.Tensor:
    """Opposing targets whose losses differ by 10^6 in scale.

    ``cosh(|x - a|)`` keeps every log-loss convex, so the log-balanced optimum (x = 0, both
    losses at 0.71 of their start) is unique and a rebalancing method has no excuse to miss it.
    """
    a = torch.tensor([1.0, 0.0])
    b = torch.tensor([-1.0, 0.0])

    def dist(c: torch.Tensor) -> torch.Tensor:
        return ((x - c).pow(2).sum() + 1e-12).sqrt()

    return torch.stack([1e3 * dist(a).cosh(), 1e-3 * dist(b).cosh()])


def train(config: GradientConfig, steps: int = 600) -> torch.Tensor:
    """Adam on a shared 2-d point; returns the final loss of each task over its initial loss."""
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.01, betas=(0.9, 0.9))
    agg = build_aggregator(config, 2)
    initial = two_scale_losses(x).detach()
    for _ in range(steps):
        losses = two_scale_losses(x)
        opt.zero_grad()
        if isinstance(agg, LossAggregator):
            agg.aggregate(losses).backward()
        else:
            jac = torch.stack(
                [torch.autograd.grad(loss, x, retain_graph=True)[0] for loss in losses]
            )
            x.grad = agg.aggregate(jac, losses.detach())
        opt.step()
    return (two_scale_losses(x) / initial).detach()


def test_plain_sum_sacrifices_the_small_scale_task() -> None:
    ratios = train(GradientConfig(aggregator="sum"))
    assert ratios[0] < 0.5
    assert ratios[1] > 1.5  # task 2 got worse: the toy really is unbalanced


REBALANCING = {
    "famo": GradientConfig(aggregator="famo"),
    # The log-variances must adapt before the point settles in task 1's basin: a faster Adam.
    "uncertainty": GradientConfig(
        aggregator="uncertainty", uncertainty=UncertaintyConfig(adam=AdamConfig(lr=0.1))
    ),
}


@pytest.mark.parametrize("name", sorted(REBALANCING))
def test_loss_scale_is_rebalanced(name: str) -> None:
    ratios = train(REBALANCING[name])
    assert ratios.max() < 1.0  # both tasks improved
    # ... and near the log-balanced optimum, where both end at the same fraction.
    assert abs(float(ratios[0].log() - ratios[1].log())) < 0.3


def test_uncertainty_weights_converge_to_inverse_losses() -> None:
    cfg = GradientConfig(
        aggregator="uncertainty", uncertainty=UncertaintyConfig(adam=AdamConfig(lr=0.1))
    )
    agg = build_aggregator(cfg, 3)
    losses = torch.tensor([1e4, 1.0, 1e-3])
    for _ in range(400):
        agg.aggregate(losses)
    contributions = agg.last_weights * losses
    torch.testing.assert_close(contributions, torch.full((3,), 0.5), rtol=0.05, atol=0.0)


@pytest.mark.parametrize("alpha", [0.0, 1.5])
def test_gradnorm_equalises_gradient_norms(alpha: float) -> None:
    cfg = GradientConfig(
        aggregator="gradnorm",
        gradnorm=GradNormConfig(alpha=alpha, adam=AdamConfig(lr=0.05)),
    )
    agg = build_aggregator(cfg, 3)
    jac = torch.tensor([[1.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 0.1]])
    losses = torch.tensor([2.0, 5.0, 1.0])  # constant: equal training rates, targets equal
    before = agg.aggregate(jac, losses)
    for _ in range(500):
        agg.aggregate(jac, losses)
    weighted_norms = agg.last_weights * jac.norm(dim=1)
    assert before.abs().max() / before.abs().min() > 50
    assert float(weighted_norms.max() / weighted_norms.min()) < 1.2
    assert float(agg.last_weights.sum()) == pytest.approx(3.0, rel=1e-5)


def test_gradnorm_favours_the_slower_task() -> None:
    cfg = GradientConfig(aggregator="gradnorm", gradnorm=GradNormConfig(alpha=1.5))
    agg = build_aggregator(cfg, 2)
    jac = torch.eye(2)
    agg.aggregate(jac, torch.tensor([1.0, 1.0]))
    for _ in range(200):
        agg.aggregate(jac, torch.tensor([0.1, 1.0]))  # task 0 trains 10x faster
    assert agg.last_weights[1] > 2 * agg.last_weights[0]


def run_steps(agg, steps: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    outs = []
    for _ in range(steps):
        losses = torch.rand(agg.num_tasks, generator=gen) + 0.5
        if isinstance(agg, GradientAggregator):
            jac = torch.randn(agg.num_tasks, 7, generator=gen)
            outs.append(agg.aggregate(jac, losses))
        else:
            outs.append(agg.aggregate(losses.requires_grad_()).detach())
            agg.observe_losses_after_step(losses * 0.9)
    return outs


@pytest.mark.parametrize("name", available_aggregators())
def test_state_round_trips_through_safe_torch_load(name: str) -> None:
    config = GradientConfig(aggregator=name)
    original = build_aggregator(config, 4)
    run_steps(original, 5, seed=0)
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    loaded_state = torch.load(buffer, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in loaded_state.values())
    restored = build_aggregator(config, 4)
    restored.load_state_dict(loaded_state)
    torch.manual_seed(3)  # PCGrad draws random projection orders
    expected = run_steps(original, 3, seed=1)
    torch.manual_seed(3)
    got = run_steps(restored, 3, seed=1)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e)
    for key, value in original.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value)


@pytest.mark.parametrize("name", ["famo", "gradnorm", "uncertainty", "moco"])
def test_state_actually_changes(name: str) -> None:
    agg = build_aggregator(GradientConfig(aggregator=name), 3)
    fresh = agg.state_dict()
    run_steps(agg, 3, seed=0)
    changed = [k for k, v in agg.state_dict().items() if k not in fresh or not v.equal(fresh[k])]
    assert changed


def test_state_of_another_task_count_is_rejected() -> None:
    two = build_aggregator(GradientConfig(aggregator="famo"), 2)
    three = build_aggregator(GradientConfig(aggregator="famo"), 3)
    with pytest.raises(ValueError, match=r"'logits' has shape \(2,\), expected \(3,\)"):
        three.load_state_dict(two.state_dict())
    with pytest.raises(KeyError, match="missing"):
        three.load_state_dict({})


def test_unknown_aggregator_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown aggregator 'pcgard'.*pcgrad.*upgrad"):
        GradientConfig(aggregator="pcgard")


def test_wrong_number_of_tasks_is_named() -> None:
    agg = build_aggregator(GradientConfig(aggregator="upgrad"), 3)
    with pytest.raises(ValueError, match=r"upgrad expects a jacobian of shape \(3, n\)"):
        agg.aggregate(torch.ones(2, 5), torch.ones(2))
    famo = build_aggregator(GradientConfig(aggregator="famo"), 3)
    with pytest.raises(ValueError, match=r"famo expects losses of shape \(3,\), got \(4,\)"):
        famo.aggregate(torch.ones(4))


def test_bad_config_values_are_named() -> None:
    with pytest.raises(ValueError, match="metrics_every must be >= 0, got -1"):
        GradientConfig(metrics_every=-1)
    with pytest.raises(ValueError, match="num_tasks >= 1, got 0"):
        build_aggregator(GradientConfig(aggregator="sum"), 0)
