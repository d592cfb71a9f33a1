"""MultiTaskUpdate: per-task Jacobian, where each gradient goes, checks and checkpoints."""

import io

import pytest
import torch
from torch import nn
from torchjd.aggregation import UPGrad

from mtrl.agents.gradients import (
    GradientConfig,
    MultiTaskUpdate,
    build_aggregator,
    by_module,
    by_prefix,
    split_parameters,
    task_jacobian,
)
from mtrl.agents.gradients.torchjd_methods import TorchDualConeProjector

TASKS = ("pong", "cheetah", "zork")


class ToyModel(nn.Module):
    """Shared trunk, one head per task: the shape of the world model's split."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 6), nn.Tanh())
        self.heads = nn.ModuleList(nn.Linear(6, 1) for _ in TASKS)

    def losses(self, x: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.trunk(x)
        return {
            name: (head(features).squeeze(-1) - targets[:, i]).pow(2).mean()
            for i, (name, head) in enumerate(zip(TASKS, self.heads, strict=True))
        }


@pytest.fixture
def setup() -> tuple[ToyModel, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = ToyModel()
    x = torch.randn(16, 5)
    targets = torch.randn(16, len(TASKS)) * torch.tensor([1.0, -10.0, 0.1])
    return model, x, targets


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def make_update(model: ToyModel, name: str, **kwargs) -> MultiTaskUpdate:
    split = split_parameters(model, by_prefix("trunk."))
    return MultiTaskUpdate.from_config(split, TASKS, GradientConfig(aggregator=name, **kwargs))


def manual_jacobian(model: ToyModel, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    rows = []
    for name in TASKS:
        loss = model.losses(x, targets)[name]
        g = torch.autograd.grad(loss, list(model.trunk.parameters()))
        rows.append(torch.cat([t.flatten() for t in g]))
    return torch.stack(rows)


@pytest.mark.parametrize("chunk", [None, 1, 2])
def test_task_jacobian_matches_one_backward_per_task(setup, chunk: int | None) -> None:
    model, x, targets = setup
    losses = torch.stack(list(model.losses(x, targets).values()))
    jac = task_jacobian(losses, list(model.trunk.parameters()), chunk_size=chunk)
    torch.testing.assert_close(jac, manual_jacobian(model, x, targets))
    assert all(p.grad is None for p in model.parameters())  # nothing leaked into .grad


def test_sum_equals_plain_backward(setup) -> None:
    model, x, targets = setup
    sum(model.losses(x, targets).values()).backward()
    expected = grads(model)
    model.zero_grad(set_to_none=True)
    make_update(model, "sum").backward(model.losses(x, targets))
    got = grads(model)
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])


def test_gradient_aggregator_fills_shared_and_specific_grads(setup) -> None:
    model, x, targets = setup
    jac = manual_jacobian(model, x, targets)
    sum(model.losses(x, targets).values()).backward()
    head_grads = {k: v for k, v in grads(model).items() if k.startswith("heads.")}
    model.zero_grad(set_to_none=True)
    metrics = make_update(model, "upgrad").backward(model.losses(x, targets))
    shared = torch.cat([p.grad.flatten() for p in model.trunk.parameters()])
    torch.testing.assert_close(shared, UPGrad(projector=TorchDualConeProjector())(jac))
    for key, value in head_grads.items():  # heads: the ordinary gradient of the summed loss
        torch.testing.assert_close(grads(model)[key], value)
    assert metrics["grad/cosine"].shape == (3, 3)
    assert set(metrics) >= {f"grad/norm/{t}" for t in TASKS}
    torch.testing.assert_close(
        torch.tensor([metrics[f"grad/norm/{t}"] for t in TASKS]), jac.norm(dim=1)
    )


def test_backward_accumulates_like_autograd(setup) -> None:
    model, x, targets = setup
    update = make_update(model, "pcgrad")
    torch.manual_seed(1)
    update.backward(model.losses(x, targets))
    once = grads(model)
    model.zero_grad(set_to_none=True)
    for _ in range(2):
        torch.manual_seed(1)
        update.backward(model.losses(x, targets))
    for key, value in grads(model).items():
        torch.testing.assert_close(value, 2 * once[key])


def test_loss_based_aggregator_metrics_only_every_n(setup) -> None:
    model, x, targets = setup
    update = make_update(model, "famo", metrics_every=2)
    first = update.backward(model.losses(x, targets))
    second = update.backward(model.losses(x, targets))
    third = update.backward(model.losses(x, targets))
    assert "grad/mean_cosine" in first and second == {} and "grad/mean_cosine" in third
    assert set(first) >= {f"grad/weight/{t}" for t in TASKS}


def test_tensor_losses_follow_task_order(setup) -> None:
    model, x, targets = setup
    update = make_update(model, "mean")
    losses = model.losses(x, targets)
    stacked = update.stack_losses(losses)
    assert stacked.tolist() == [losses[t].item() for t in TASKS]


def test_state_dict_round_trips_through_safe_load(setup) -> None:
    model, x, targets = setup
    update = make_update(model, "gradnorm")
    for _ in range(3):
        update.backward(model.losses(x, targets))
    buffer = io.BytesIO()
    torch.save(update.state_dict(), buffer)
    buffer.seek(0)
    restored = make_update(model, "gradnorm")
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.num_updates == 3
    for key, value in update.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value)


def test_famo_observes_losses_after_the_step(setup) -> None:
    model, x, targets = setup
    update = make_update(model, "famo")
    before = update.state_dict()["aggregator.logits"].clone()
    update.backward(model.losses(x, targets))
    with torch.no_grad():
        after = model.losses(x, targets)
        after["zork"] = after["zork"] * 0.5  # one task improved a lot
    update.observe_losses_after_step(after)
    logits = update.state_dict()["aggregator.logits"]
    assert not torch.equal(logits, before)
    assert logits.argmin() == TASKS.index("zork")  # weight moves away from the fast task


def test_bad_inputs_are_named(setup) -> None:
    model, x, targets = setup
    update = make_update(model, "upgrad")
    losses = model.losses(x, targets)
    with pytest.raises(ValueError, match=r"missing \['zork'\], unknown \['nethack'\]"):
        update.backward({"pong": losses["pong"], "cheetah": losses["cheetah"], "nethack": 0})
    with pytest.raises(ValueError, match=r"expected 3 task losses .* shape \(2,\)"):
        update.backward(torch.ones(2, requires_grad=True))
    with pytest.raises(ValueError, match="loss of task 'pong' must be a scalar"):
        update.backward({**losses, "pong": torch.ones(2)})


def test_bad_setups_are_named(setup) -> None:
    model, _, _ = setup
    with pytest.raises(ValueError, match=r"no shared parameters selected.*trunk\.0\.weight"):
        split_parameters(model, by_prefix("encoder."))
    split = split_parameters(model, by_module(model, model.trunk))
    assert split.shared_names[0] == "trunk.0.weight" and split.specific_names[0] == "heads.0.weight"
    agg = build_aggregator(GradientConfig(aggregator="sum"), 3)
    with pytest.raises(ValueError, match="at least one shared parameter"):
        MultiTaskUpdate([], split.specific, agg, TASKS)
    with pytest.raises(ValueError, match="both shared and task-specific"):
        MultiTaskUpdate(split.shared, split.shared, agg, TASKS)
    with pytest.raises(ValueError, match="built for 3 tasks, got 2 task names"):
        MultiTaskUpdate(split.shared, split.specific, agg, TASKS[:2])
    with pytest.raises(ValueError, match="unique"):
        MultiTaskUpdate(split.shared, split.specific, agg, ("a", "a", "b"))


def test_reduce_fn_sees_losses_mask_jacobian_and_head_grads(setup) -> None:
    model, x, targets = setup
    seen: list[tuple[int, ...]] = []

    def record(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape))
        return t

    split = split_parameters(model, by_prefix("trunk."))
    update = MultiTaskUpdate.from_config(
        split, TASKS, GradientConfig(aggregator="upgrad"), reduce_fn=record
    )
    update.backward(model.losses(x, targets))
    n_shared = sum(p.numel() for p in split.shared)
    n_specific = sum(p.numel() for p in split.specific)
    assert seen == [(3,), (3,), (3, n_shared), (n_specific,)]
