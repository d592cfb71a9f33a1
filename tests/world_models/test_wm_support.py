import pytest
import torch

from mtrl.world_models import h, h_inverse, scalar_to_support, support_to_scalar


def test_h_transform_round_trips_over_many_scales() -> None:
    x = torch.cat([torch.linspace(-1e4, 1e4, 1001), torch.linspace(-3, 3, 601)]).double()
    torch.testing.assert_close(h_inverse(h(x)), x, rtol=1e-9, atol=1e-7)
    assert torch.all(h(x).abs() <= x.abs() + 1e-12)  # it squashes


@pytest.mark.parametrize(("support", "step"), [(10, 1.0), (300, 1.0), (50, 0.2)])
def test_two_hot_support_round_trip(support: int, step: float) -> None:
    x = torch.tensor([-30.0, -1.5, -0.2, 0.0, 0.7, 3.0, 42.0, 99.0])
    probs = scalar_to_support(x, support, step)
    assert probs.shape == (8, 2 * support + 1)
    torch.testing.assert_close(probs.sum(-1), torch.ones(8))
    assert (probs > 0).sum(-1).max() <= 2  # two-hot
    logits = probs.clamp_min(1e-30).log()  # softmax(log p) == p
    torch.testing.assert_close(support_to_scalar(logits, support, step), x, rtol=1e-4, atol=1e-4)


def test_a_finer_step_spreads_small_values_over_more_bins() -> None:
    """0.5 and 0 (a death's cost in random Asterix) share a bin at step 1 and not at 0.2."""
    coarse, fine = (scalar_to_support(torch.tensor([0.0, 0.5]), 50, s) for s in (1.0, 0.2))
    centre = 50
    assert coarse[1, centre] > 0.75  # h(0.5) = 0.22: most of 0.5's mass stays on 0's bin
    assert fine[1, centre] == 0 and fine[1, centre + 1] > 0  # h(0.5) / 0.2 = 1.12 bins up


def test_support_clamps_out_of_range_targets() -> None:
    probs = scalar_to_support(torch.tensor([1e9, -1e9]), 5)
    assert probs[0, -1] == 1 and probs[1, 0] == 1
