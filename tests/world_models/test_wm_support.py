import pytest
import torch

from mtrl.world_models import h, h_inverse, scalar_to_support, support_to_scalar


def test_h_transform_round_trips_over_many_scales() -> None:
    x = torch.cat([torch.linspace(-1e4, 1e4, 1001), torch.linspace(-3, 3, 601)]).double()
    torch.testing.assert_close(h_inverse(h(x)), x, rtol=1e-9, atol=1e-7)
    assert torch.all(h(x).abs() <= x.abs() + 1e-12)  # it squashes


@pytest.mark.parametrize("support", [10, 300])
def test_two_hot_support_round_trip(support: int) -> None:
    x = torch.tensor([-30.0, -1.5, -0.2, 0.0, 0.7, 3.0, 42.0, 99.0])
    probs = scalar_to_support(x, support)
    assert probs.shape == (8, 2 * support + 1)
    torch.testing.assert_close(probs.sum(-1), torch.ones(8))
    assert (probs > 0).sum(-1).max() <= 2  # two-hot
    logits = probs.clamp_min(1e-30).log()  # softmax(log p) == p
    torch.testing.assert_close(support_to_scalar(logits, support), x, rtol=1e-4, atol=1e-4)


def test_support_clamps_out_of_range_targets() -> None:
    probs = scalar_to_support(torch.tensor([1e9, -1e9]), 5)
    assert probs[0, -1] == 1 and probs[1, 0] == 1
