import pytest
import torch

from mtrl.agents.targets import n_step_returns


def brute_force(rewards, values, length, terminated, gamma, n):
    out = []
    for t in range(length + 1):
        m = min(n, length - t)
        z = sum(gamma**k * rewards[t + k] for k in range(m))
        bootstrap = 0.0 if (t + m == length and terminated) else values[t + m]
        out.append(z + gamma**m * bootstrap)
    return out


@pytest.mark.parametrize("terminated", [True, False])
@pytest.mark.parametrize("n", [1, 3, 10])
def test_matches_a_direct_loop(terminated: bool, n: int) -> None:
    gen = torch.Generator().manual_seed(n)
    rewards = torch.randn(2, 6, generator=gen, dtype=torch.float64)
    values = torch.randn(2, 7, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([6, 4])
    rewards[1, 4:] = 0.0
    got = n_step_returns(rewards, values, lengths, torch.tensor([terminated] * 2), 0.9, n)
    for b in range(2):
        length = int(lengths[b])
        want = brute_force(rewards[b].tolist(), values[b].tolist(), length, terminated, 0.9, n)
        assert got[b, : length + 1].tolist() == pytest.approx(want)
        assert torch.all(got[b, length + 1 :] == 0)


def test_terminal_state_has_zero_value_but_truncated_bootstraps() -> None:
    rewards = torch.tensor([[1.0, 1.0]])
    values = torch.tensor([[5.0, 5.0, 100.0]])  # V(s_2) = 100 is ignored only if terminal
    kwargs = dict(lengths=torch.tensor([2]), discount=0.5, n=5)
    ended = n_step_returns(rewards, values, terminated=torch.tensor([True]), **kwargs)
    cut = n_step_returns(rewards, values, terminated=torch.tensor([False]), **kwargs)
    assert ended[0].tolist() == pytest.approx([1.5, 1.0, 0.0])
    assert cut[0].tolist() == pytest.approx([1.5 + 25.0, 1.0 + 50.0, 100.0])


def test_per_sequence_discounts_and_bad_inputs() -> None:
    rewards = torch.ones(2, 1)
    values = torch.zeros(2, 2)
    lengths, running = torch.tensor([1, 1]), torch.tensor([False, False])
    got = n_step_returns(rewards, values, lengths, running, torch.tensor([0.5, 1.0]), 2)
    assert got[:, 0].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        n_step_returns(rewards, values, lengths, running, 0.9, 0)
    with pytest.raises(ValueError, match="values must be"):
        n_step_returns(rewards, values[:, :1], lengths, running, 0.9, 1)
