"""Golden trees: small searches whose every decision is worked out by hand in the comments.

pUCT constant: c(N) = 1.25 + log((N + 19653) / 19652), about 1.25 for these tiny N.
"""

from __future__ import annotations

import math

import pytest
import torch
from search_fakes import ActionValueModel, search

from mtrl.search import RootInput, SearchConfig


def one_root(logits: list[float], value: float = 0.0, **kwargs: object) -> RootInput:
    return RootInput(
        prior_logits=torch.tensor([logits], dtype=torch.float32),
        value=torch.tensor([value]),
        embedding_id=torch.tensor([7]),
        **kwargs,  # type: ignore[arg-type]
    )


def test_muzero_three_actions(backend: str) -> None:
    # Root priors [.5, .3, .2]; the value of a child depends on its action: [1, 0, .5]; gamma 1.
    # sim0: root N=1, no visits -> highest prior: a0 (node 1, value 1); min=max=1.
    # sim1: N=2. a0: Q_norm 0 (min=max) + c*.5*1.41/2=.35c; a1: c*.3*1.41=.42c -> a1 (node 2,
    #       value 0); bounds [0, 1].
    # sim2: N=3. a0: Q_norm 1 + .43c; a1: 0 + .26c; a2: .35c -> a0, into node 1 whose
    #       children are all new with equal priors -> a0 (node 3, depth 2, value 1).
    # sim3: N=4. a0: 1 + .33c wins again; at node 1 the visited a0 has Q_norm 1 -> a0; node 3
    #       has no children -> a0 (node 4, depth 3, value 1).
    root = one_root([math.log(0.5), math.log(0.3), math.log(0.2)], discount=1.0)
    model = ActionValueModel(values=[1.0, 0.0, 0.5])
    out = search(root, model, SearchConfig(num_simulations=4), backend=backend)
    assert out.visit_counts.tolist() == [[3, 1, 0]]
    assert out.leaf_depths.flatten().tolist() == [1, 1, 2, 3]
    assert out.tree.parent[0].tolist() == [-1, 0, 0, 1, 3]
    assert out.tree.action[0].tolist() == [-1, 0, 1, 0, 0]
    # Root: its own value 0, then returns 1, 0, 1, 1 -> 3 / 5.
    assert out.root_value.item() == pytest.approx(0.6)
    assert (out.tree.min_q.item(), out.tree.max_q.item()) == (0.0, 1.0)
    assert out.action.item() == 0
    assert out.action_weights.tolist()[0] == pytest.approx([0.75, 0.25, 0.0])
    # The model saw the root id first, then the id it gave node 1, twice.
    assert [parents[0] for parents, _ in model.calls] == [7, 7, 100, 102]


@pytest.mark.parametrize("algorithm", ["muzero", "gumbel_muzero"])
def test_single_legal_action_chain_discounts(backend: str, algorithm: str) -> None:
    # One legal action of three: every simulation extends the same chain by one node.
    # Rewards 1, values 0, gamma .5: returns seen at the root are 1, 1 + .5, 1 + .5 + .25.
    root = one_root([0.0, 5.0, 0.0], legal_mask=torch.tensor([[False, True, False]]), discount=0.5)
    model = ActionValueModel(values=[0.0, 0.0, 0.0], rewards=[1.0, 1.0, 1.0])
    config = SearchConfig(algorithm=algorithm, num_simulations=3)
    out = search(root, model, config, backend=backend)
    assert out.visit_counts.tolist() == [[0, 3, 0]]
    assert out.leaf_depths.flatten().tolist() == [1, 2, 3]
    assert out.root_value.item() == (0.0 + 1.0 + 1.5 + 1.75) / 4
    assert out.action.item() == 1
    assert out.action_weights[0].tolist() == [0.0, 1.0, 0.0]


def test_terminal_nodes_are_absorbing(backend: str) -> None:
    # Every transition ends the episode: node 1 gets reward 1 and value 0 (not the model's 5);
    # nodes below it are worth nothing, so each simulation returns exactly 1 to the root.
    root = one_root([0.0], discount=0.5)
    model = ActionValueModel(values=[5.0], rewards=[1.0], terminal_actions=(0,))
    out = search(root, model, SearchConfig(num_simulations=3), backend=backend)
    tree = out.tree
    assert tree.terminal[0].tolist() == [False, True, True, True]
    assert tree.raw_value[0].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert tree.reward[0].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert out.root_value.item() == (0.0 + 1.0 + 1.0 + 1.0) / 4


def test_gumbel_two_actions(backend: str) -> None:
    # m = 2, S = 2: sequential halving visits each action once ([0, 0] schedule).
    # No Gumbel noise; equal logits. sim0: nothing visited, sigma 0 for both -> a0 (value 0).
    # sim1: only a1 still has 0 visits -> a1 (value 1). Bounds [0, 1].
    # Final: sigma = (50 + 1) * .1 * Q_norm = [0, 5.1]; pi' = softmax([0, 5.1]); action 1.
    root = one_root([0.0, 0.0], discount=1.0)
    model = ActionValueModel(values=[0.0, 1.0])
    config = SearchConfig(algorithm="gumbel_muzero", num_simulations=2, gumbel_scale=0.0)
    out = search(root, model, config, backend=backend)
    assert out.visit_counts.tolist() == [[1, 1]]
    assert out.action.item() == 1
    high = math.exp(5.1) / (1.0 + math.exp(5.1))
    assert out.action_weights[0].tolist() == pytest.approx([1.0 - high, high], rel=1e-6)
    assert out.root_value.item() == pytest.approx(1.0 / 3.0)


def test_gumbel_sequential_halving_and_interior_rule(backend: str) -> None:
    # m = 4, S = 8: schedule [0, 0, 0, 0, 1, 1, 2, 2]; logits [3, 2, 1, 0], no noise;
    # value by action [0, 1, 0, 0]; gamma 1; child logits uniform.
    # sims 0-3 visit a0, a1, a2, a3 (by logits; sigma is equal across unvisited actions).
    # sim4 (visit-1 actions): scores 3 + 0, 2 + 5.1, 1, 0 -> a1; at node 2 nothing is visited:
    #   pi' is uniform -> a0 (value 0). Node 2's Q becomes (1 + 0) / 2 = .5.
    # sim5: a1 has 2 visits now; among the rest a0 (logit 3) -> a0; node 1 -> a0 (value 0).
    # sim6 (visit-2 actions a0, a1): 3 + 0 vs 2 + 5.2 * .5 -> a1; at node 2 the visited a0 has
    #   Q 0 < v_mix .5, so its pi' is tiny and pi' - N/(1 + 1) < 0 -> a1 (value 1).
    # sim7: only a0 has 2 visits -> a0; at node 1 v_mix = 0 = Q(a0): pi' uniform, and the
    #   visited a0 pays N / 2 -> a1 (value 1).
    root = one_root([3.0, 2.0, 1.0, 0.0], discount=1.0)
    model = ActionValueModel(values=[0.0, 1.0, 0.0, 0.0])
    config = SearchConfig(algorithm="gumbel_muzero", num_simulations=8, gumbel_scale=0.0)
    out = search(root, model, config, backend=backend)
    assert out.visit_counts.tolist() == [[3, 3, 1, 1]]
    assert out.leaf_depths.flatten().tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    assert out.tree.parent[0].tolist() == [-1, 0, 0, 0, 0, 2, 1, 2, 1]
    assert out.tree.action[0].tolist() == [-1, 0, 1, 2, 3, 0, 0, 1, 1]
    # Root returns: its value 0, then 0, 1, 0, 0, 0, 0, 1, 1 -> 3 / 9.
    assert out.root_value.item() == pytest.approx(1.0 / 3.0)
    # Final choice among the two 3-visit actions: Q = [1/3, 2/3] -> 3 + 5.3/3 < 2 + 5.3*2/3.
    assert out.action.item() == 1


def test_gumbel_zero_simulations_gives_the_prior(backend: str) -> None:
    logits = [1.0, -2.0, 0.5, 3.0]
    root = one_root(logits, legal_mask=torch.tensor([[True, True, True, False]]))
    config = SearchConfig(algorithm="gumbel_muzero", num_simulations=0)
    out = search(root, lambda *_: pytest.fail("model called"), config, backend=backend)
    assert out.visit_counts.tolist() == [[0, 0, 0, 0]]
    assert tuple(out.leaf_depths.shape) == (0, 1)
    # No visits: every completed Q is the root value, sigma is constant, pi' = prior.
    expected = [*torch.softmax(torch.tensor(logits[:3]), dim=0).tolist(), 0.0]
    assert out.action_weights[0].tolist() == pytest.approx(expected, abs=1e-6)
    # The action is argmax of g + logits over the legal actions (Gumbel-max sampling).
    noisy = out.tree.gumbel[0, :3] + torch.tensor(logits[:3])
    assert out.action.item() == int(noisy.argmax())


@pytest.mark.parametrize(
    ("values", "min_q_range", "p_best"),
    [
        # Q = [.40, .41, .40, .40], one visit each (m = 4, 4 simulations, no Gumbel noise), so
        # sigma = (50 + 1) * 0.1 * Q_norm. MuZero's bounds [.40, .41] make Q_norm [0, 1, 0, 0]:
        # pi' = softmax([0, 5.1, 0, 0]), a1 gets e^5.1 / (e^5.1 + 3) = .982 for 0.01 of value.
        ([0.40, 0.41, 0.40, 0.40], 0.0, math.exp(5.1) / (math.exp(5.1) + 3)),
        # Bounds start at .40 -/+ .5: Q_norm [.50, .51, .50, .50], pi'(a1) = e^.051/(e^.051+3).
        ([0.40, 0.41, 0.40, 0.40], 1.0, math.exp(0.051) / (math.exp(0.051) + 3)),
        # A real gap of 1 widens the bounds to [-.1, 1.4]: Q_norm [1/3, 1, 1/3, 1/3], so
        # pi'(a1) = e^3.4 / (e^3.4 + 3) = .909, as sharp as the evidence.
        ([0.40, 1.40, 0.40, 0.40], 1.0, math.exp(3.4) / (math.exp(3.4) + 3)),
    ],
)
def test_gumbel_target_with_a_least_q_range(
    backend: str, values: list[float], min_q_range: float, p_best: float
) -> None:
    root = one_root([0.0] * 4, value=0.40, discount=1.0)
    config = SearchConfig(
        algorithm="gumbel_muzero", num_simulations=4, gumbel_scale=0.0, min_q_range=min_q_range
    )
    out = search(root, ActionValueModel(values=values), config, backend=backend)
    assert out.visit_counts.tolist() == [[1, 1, 1, 1]]
    others = (1 - p_best) / 3
    expected = torch.tensor([[others, p_best, others, others]])
    torch.testing.assert_close(out.action_weights, expected, rtol=0, atol=1e-5)
