"""The MoE router learns, the vectorised dispatch is exact, capacity and load stats work."""

import pytest
import torch

from mtrl.world_models.lora import grouped_matmul, grouped_matmul_loop, lora_kwargs
from mtrl.world_models.moe import MoE

BANK = lora_kwargs(count=2, rank=2, alpha=4.0, bound=0.2)


def make(top_k: int = 1, experts: int = 8, capacity: float | None = None, tasks: int = 3) -> MoE:
    torch.manual_seed(0)
    return MoE(16, 24, experts, top_k, tasks, BANK, capacity_factor=capacity)


def reference(moe: MoE, x: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, combined with the gates: slow but obviously right."""
    probs = torch.softmax(moe.router(x), -1)
    gates, experts = moe.route(probs)
    offsets = torch.full((1,), x.shape[0], dtype=torch.int32)
    out = moe.shared(x)
    for e in range(moe.num_experts):
        single = type(moe.experts)(1, 16, 24, BANK)
        single.load_state_dict(
            {k: v[e : e + 1] if v.dim() else v for k, v in moe.experts.state_dict().items()}
        )
        single.up_lora.active = single.down_lora.active = moe.experts.up_lora.active
        y = single(x, offsets)
        out = out + y * (gates * (experts == e)).sum(-1, keepdim=True)
    return out


@pytest.mark.parametrize("top_k", [1, 2])
def test_vectorised_dispatch_matches_dense_reference(top_k: int) -> None:
    moe = make(top_k)
    for b in [*moe.experts.up_lora.B, *moe.experts.down_lora.B]:
        torch.nn.init.normal_(b, std=0.1)  # exercise the adapters' grouped path too
    moe.experts.up_lora.active = moe.experts.down_lora.active = 2
    x = torch.randn(50, 16)
    out, _ = moe(x)
    torch.testing.assert_close(out, reference(moe, x), rtol=1e-5, atol=1e-5)


def test_grouped_matmul_handles_empty_groups() -> None:
    x, w = torch.randn(7, 4), torch.randn(3, 4, 5)
    offsets = torch.tensor([3, 3, 7], dtype=torch.int32)  # group 1 is empty
    torch.testing.assert_close(grouped_matmul(x, w, offsets), grouped_matmul_loop(x, w, offsets))


@pytest.mark.parametrize("top_k", [1, 2])
def test_router_gets_gradient_from_the_task_loss_alone(top_k: int) -> None:
    moe = make(top_k)
    out, _ = moe(torch.randn(64, 16))
    out.square().mean().backward()  # no balance loss: only through the gates
    grad = moe.router.weight.grad
    assert grad is not None and grad.abs().sum() > 1e-6


def test_balance_loss_moves_load_toward_uniform() -> None:
    moe = make(top_k=1)
    x = torch.randn(512, 16) + 1.0  # shifted inputs ...
    with torch.no_grad():
        moe.router.weight.mul_(0.1)
        moe.router.weight[0] = 0.2  # ... all routed to expert 0 at first
    optimizer = torch.optim.Adam(moe.router.parameters(), lr=0.01)
    _, start = moe(x)
    for _ in range(30):
        _, aux = moe(x)
        optimizer.zero_grad()
        aux.balance.backward()
        optimizer.step()
    _, end = moe(x)
    assert start.load.max() == 1.0
    assert end.load.max() < 0.5 and (end.load > 0.02).sum() >= 4
    assert end.balance < start.balance


def test_capacity_drops_overflow_tokens() -> None:
    moe = make(top_k=1, experts=4, capacity=1.0)
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0] = 1.0
    x = torch.randn(40, 16).abs()  # everyone prefers expert 0; capacity is 40 / 4 = 10
    out, _ = moe(x)
    routed = out - moe.shared(x)
    assert (routed.abs().sum(-1) > 0).sum() == 10
    assert torch.all(routed[:10].abs().sum(-1) > 0)  # earlier tokens win (Switch)


def test_per_task_load_counts_every_assignment() -> None:
    moe = make(top_k=2, tasks=3)
    task = torch.tensor([0] * 10 + [2] * 5)
    moe(torch.randn(15, 16), task)
    load = moe.task_load
    assert load.sum(-1).tolist() == [20.0, 0.0, 10.0]
    moe.reset_load()
    assert moe.task_load.sum() == 0
