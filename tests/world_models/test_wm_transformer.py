"""KV-cache inference equals the full forward; attention is causal."""

import pytest
import torch

from mtrl.world_models import preset
from mtrl.world_models.transformer import Transformer


def make(window_steps: int = 4, max_steps: int = 8) -> Transformer:
    torch.manual_seed(0)
    cfg = preset("tiny", kv_window_steps=window_steps, max_steps=max_steps, top_k=2)
    model = Transformer(cfg, num_tasks=3).eval()
    for bank in (m for m in model.modules() if hasattr(m, "active")):
        for b in bank.B:  # non-zero adapters, so the LoRA path is exercised too
            torch.nn.init.normal_(b, std=0.1)
        bank.active = bank.count
    return model


def incremental(
    model: Transformer, x: torch.Tensor, window: torch.Tensor | None = None
) -> torch.Tensor:
    cache = model.empty_cache(x.shape[0], x.device, x.dtype)
    outs = []
    for i in range(x.shape[1]):
        h, cache, _ = model.step(x[:, i], cache, window=window)
        outs.append(h)
    return torch.stack(outs, 1)


@torch.no_grad()
def test_cache_equals_full_forward_within_the_window() -> None:
    model = make(window_steps=4)
    x = torch.randn(3, 8, 32)  # 8 tokens = the 4-step window
    full, _ = model(x)
    torch.testing.assert_close(incremental(model, x), full, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_ring_cache_equals_sliding_window_forward_past_the_window() -> None:
    model = make(window_steps=2, max_steps=8)  # 4-token ring, 14 tokens (past the positions)
    x = torch.randn(2, 14, 32)
    full, _ = model(x, window=torch.tensor([4, 4]))
    torch.testing.assert_close(incremental(model, x), full, rtol=1e-5, atol=1e-5)
    unwindowed, _ = model(x)
    assert not torch.allclose(full[:, 5:], unwindowed[:, 5:], atol=1e-4)  # the window matters


@torch.no_grad()
def test_per_row_windows_match_the_full_forward() -> None:
    model = make(window_steps=2, max_steps=8)  # 4-token ring; rows attend to 4, 2, 1 tokens
    x, window = torch.randn(3, 11, 32), torch.tensor([4, 2, 1])
    full, _ = model(x, window=window)
    torch.testing.assert_close(incremental(model, x, window), full, rtol=1e-5, atol=1e-5)
    widest, _ = model(x, window=torch.tensor([4, 4, 4]))
    torch.testing.assert_close(full[0], widest[0], rtol=1e-5, atol=1e-5)  # MoE float noise
    assert not torch.allclose(full[1, 3:], widest[1, 3:], atol=1e-4)


@torch.no_grad()
def test_rows_at_different_depths_step_together() -> None:
    model = make(window_steps=2)
    a, b = torch.randn(1, 5, 32), torch.randn(1, 2, 32)
    cache_a = model.empty_cache(1, a.device, a.dtype)
    for i in range(4):
        _, cache_a, _ = model.step(a[:, i], cache_a)
    cache_b = model.empty_cache(1, a.device, a.dtype)
    _, cache_b, _ = model.step(b[:, 0], cache_b)
    joint = type(cache_a)(*(torch.cat([p, q], dim=d) for p, q, d in zip(
        (cache_a.keys, cache_a.values, cache_a.count),
        (cache_b.keys, cache_b.values, cache_b.count), (1, 1, 0), strict=True)))  # fmt: skip
    h, after, _ = model.step(torch.cat([a[:, 4], b[:, 1]]), joint)
    torch.testing.assert_close(h[0], incremental(model, a)[0, 4], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h[1], incremental(model, b)[0, 1], rtol=1e-5, atol=1e-5)
    assert after.count.tolist() == [5, 2] and joint.count.tolist() == [4, 1]  # input untouched


@pytest.mark.parametrize("changed", [0, 3, 6])
@torch.no_grad()
def test_changing_a_later_token_leaves_earlier_outputs_alone(changed: int) -> None:
    model = make()
    x = torch.randn(2, 8, 32)
    y = x.clone()
    y[:, changed] += torch.randn(2, 32)  # (a constant shift would vanish in LayerNorm)
    hx, _ = model(x)
    hy, _ = model(y)
    # Earlier outputs agree up to float noise (MoE groups of a different size round
    # differently); a leak through the mask would show up orders of magnitude above it.
    torch.testing.assert_close(hx[:, :changed], hy[:, :changed], rtol=0, atol=1e-5)
    assert (hx[:, changed:] - hy[:, changed:]).abs().amax(-1).min() > 1e-3
