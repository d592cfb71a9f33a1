"""The joint search over discrete, text and continuous roots in one batch."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mtrl.agents.acting import ActingConfig, BatchedActor, explore, select_actions
from mtrl.envs.base import Step
from mtrl.envs.batch import TaskSet, stack_observations
from mtrl.envs.registry import get_task
from mtrl.envs.spec import ActionSpace, Modality, TaskSpec
from mtrl.search import SearchConfig, SearchOutput
from mtrl.world_models import WorldModel, preset

TEXT = TaskSpec("text/fake", Modality.TEXT, (), ActionSpace("text", n=6), 20)
TASKS = TaskSet(
    (get_task("atari/Pong"), get_task("classic/CartPole"), get_task("dmc/cheetah-run"), TEXT)
)
ROWS = [0, 1, 2, 3, 1]


def mixed_obs(seed: int = 0):
    rng = np.random.default_rng(seed)
    pong_legal = np.zeros(18, bool)
    pong_legal[[0, 3]] = True  # pretend only NOOP and RIGHT are legal here
    steps = [
        Step(rng.integers(0, 255, (3, 64, 64), dtype=np.uint8), 0, False, False, pong_legal),
        Step(rng.normal(size=4).astype(np.float32), 0, False, False, np.ones(2, bool)),
        Step(rng.normal(size=17).astype(np.float32), 0, False, False, np.zeros(0, bool)),
        Step(
            "a dark room",
            0,
            False,
            False,
            np.array([1, 1, 0, 0, 0, 0], bool),
            ("take lamp", "go north"),
        ),
        Step(rng.normal(size=4).astype(np.float32), 0, False, False, np.ones(2, bool)),
    ]
    return stack_observations(TASKS, ROWS, steps)


@pytest.fixture(scope="module")
def model() -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(TASKS, preset("tiny")).eval()


@pytest.mark.parametrize("algorithm", ["muzero", "gumbel_muzero"])
def test_one_search_acts_legally_for_every_kind_of_task(model, algorithm: str) -> None:
    config = ActingConfig(SearchConfig(algorithm=algorithm, num_simulations=12), sampled_actions=5)
    result = BatchedActor(model, TASKS, config).act(mixed_obs(), seed=3)
    visits = result.search.visit_counts
    assert visits.shape == (5, 18) and torch.all(visits.sum(1) == 12)  # Pong's 18 is widest
    assert result.action_index[0] in (0, 3)  # Pong: only the legal actions
    assert result.action_index[1] in (0, 1) and result.action_index[4] in (0, 1)
    assert result.action_index[3] in (0, 1)  # text: one of the 2 offered commands
    assert visits[3, 2:].sum() == 0 and visits[1, 2:].sum() == 0
    assert set(visits[0].nonzero()[:, 0].tolist()) <= {0, 3}
    cheetah = result.action_vector[2]
    assert cheetah.shape == (6,) and np.all(np.abs(cheetah) <= 1.0)
    matches = np.isclose(result.sampled[2], cheetah).all(axis=1)
    assert matches.any()  # the continuous action is one of the K searched samples
    assert np.allclose(result.policy.sum(1), 1.0, atol=1e-5)
    assert result.policy[2, 5:].sum() == 0  # only K = 5 samples for the continuous root
    assert np.all(result.sampled[[0, 1, 3, 4]] == 0)


def test_acting_is_deterministic_under_a_seed(model) -> None:
    actor = BatchedActor(model, TASKS, ActingConfig(SearchConfig(num_simulations=8)))
    first, again = actor.act(mixed_obs(), seed=7), actor.act(mixed_obs(), seed=7)
    assert np.array_equal(first.action_index, again.action_index)
    assert np.allclose(first.action_vector, again.action_vector)
    assert np.allclose(first.policy, again.policy)


def test_mean_candidate_is_the_policy_mean(model) -> None:
    """Candidate 0 of a continuous root is the Gaussian's mean, the others are draws."""
    search = SearchConfig(num_simulations=4)
    with_mean = BatchedActor(model, TASKS, ActingConfig(search, 5, mean_candidate=True))
    drawn = BatchedActor(model, TASKS, ActingConfig(search, 5)).act(mixed_obs(), seed=2)
    result = with_mean.act(mixed_obs(), seed=2)
    with torch.inference_mode():
        mean = model.initial_inference(mixed_obs()).mean[2, :6].numpy()
    np.testing.assert_allclose(result.sampled[2, 0], mean, rtol=1e-5, atol=1e-6)
    assert not np.allclose(drawn.sampled[2, 0], mean)
    np.testing.assert_allclose(result.sampled[2, 1:], drawn.sampled[2, 1:])  # same draws


def test_per_task_discounts_reach_the_trees(model) -> None:
    actor = BatchedActor(model, TASKS, ActingConfig(SearchConfig(num_simulations=2)))
    discounts = torch.tensor([0.9, 0.8, 0.7, 0.6])
    result = actor.act(mixed_obs(), discounts=discounts)
    assert torch.allclose(result.search.tree.discount, discounts[torch.tensor(ROWS)])


def test_the_end_head_weighs_children_and_ends_them_past_one_half() -> None:
    """A child is worth (1 - P(end)) V; past P = 0.5 it is terminal, worth 0 with nothing
    below it. Every state is worth the top of the support here, so V alone would be ~h^-1(S)."""
    trees = {}
    for p_end in (0.0, 0.25, 1.0):
        torch.manual_seed(0)
        model = WorldModel(TASKS, preset("tiny", end_head=True)).eval()
        with torch.no_grad():
            model.end_head.b2.fill_(torch.logit(torch.tensor(p_end), eps=1e-9).item())
            model.value_head.b2[..., -1] = 30.0
        actor = BatchedActor(model, TASKS, ActingConfig(SearchConfig(num_simulations=6)))
        trees[p_end] = actor.act(mixed_obs(), seed=1).search.tree
    expanded = trees[0.0].visits[:, 1:] > 0
    assert expanded.any()
    for p_end, tree in trees.items():
        assert torch.equal(tree.visits[:, 1:] > 0, expanded) or p_end == 1.0
        assert not tree.terminal[:, 0].any()  # a root never ends
    alive = trees[0.0].raw_value[:, 1:][expanded]
    assert (alive > 100).all() and not trees[0.0].terminal.any()
    torch.testing.assert_close(trees[0.25].raw_value[:, 1:][expanded], 0.75 * alive)
    assert not trees[0.25].terminal.any()
    ended = trees[1.0].visits[:, 1:] > 0
    assert trees[1.0].terminal[:, 1:][ended].all() and not trees[1.0].raw_value[:, 1:][ended].any()


def test_the_q_head_sets_each_new_edge_to_its_q() -> None:
    """With a Q head, a new child's value is (Q - r) / discount, so the edge the search backs
    up (r + discount * v) is worth the Q head's Q(s, a), whatever V of the imagined latent."""
    torch.manual_seed(0)
    model = WorldModel(TASKS, preset("tiny", q_head=True)).eval()
    with torch.no_grad():
        model.q_head.b2[..., -3] = 30.0  # every (s, a): Q near h^-1(S - 2)
        model.value_head.b2[..., 0] = 30.0  # every V near -h^-1(S): ignored below the root
    actor = BatchedActor(model, TASKS, ActingConfig(SearchConfig(num_simulations=6)))
    discounts = torch.tensor([0.9, 0.8, 0.7, 0.6])
    tree = actor.act(mixed_obs(), discounts=discounts, seed=1).search.tree
    expanded = tree.visits[:, 1:] > 0
    assert expanded.any()
    edge = tree.reward[:, 1:] + tree.discount[:, None] * tree.raw_value[:, 1:]
    q = edge[expanded]
    assert (q > 50).all(), q  # Q's, not the value head's large negative V
    torch.testing.assert_close(q, torch.full_like(q, q[0].item()), rtol=1e-4, atol=1e-3)


def fake_output(visits: list[list[int]]) -> SearchOutput:
    counts = torch.tensor(visits, dtype=torch.int32)
    return SearchOutput(
        action=torch.zeros(len(visits), dtype=torch.int64),
        action_weights=counts.float(),
        visit_counts=counts,
        root_value=torch.zeros(len(visits)),
        leaf_depths=torch.zeros(0, 2),
    )


def test_temperature_selection() -> None:
    out = fake_output([[1, 5, 5], [0, 0, 9]])
    gen = torch.Generator().manual_seed(0)
    assert select_actions(out, 0.0, "muzero", gen).tolist() == [1, 2]  # ties: lowest index
    picks = torch.stack([select_actions(out, 1.0, "muzero", gen) for _ in range(2000)])
    share = (picks[:, 0] == 0).float().mean().item()
    assert 0.05 < share < 0.14  # 1/11
    assert torch.all(picks[:, 1] == 2)
    assert select_actions(out, 1.0, "gumbel_muzero", gen).tolist() == [0, 0]  # noisy winner
    # Temperature 0: the improved policy's argmax, not the (noisy) winner.
    assert select_actions(out, 0.0, "gumbel_muzero", gen).tolist() == [1, 2]


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="sampled_actions must be >= 1"):
        ActingConfig(sampled_actions=0)


def test_int8_inference_acts_legally_and_close_to_fp32() -> None:
    torch.manual_seed(4)
    model = WorldModel(TASKS, preset("tiny")).eval()
    with torch.no_grad():  # zero-initialised heads would make every value 0 in both
        for head in (model.value_head, model.reward_head):
            for p in head.parameters():
                p.normal_(0.0, 0.3)
    search = SearchConfig(algorithm="muzero", num_simulations=12)
    fp32 = BatchedActor(model, TASKS, ActingConfig(search, sampled_actions=5)).act(mixed_obs())
    int8_actor = BatchedActor(model, TASKS, ActingConfig(search, 5, int8_inference=True))
    result = int8_actor.act(mixed_obs())
    assert result.action_index[0] in (0, 3) and result.action_index[3] in (0, 1)
    assert torch.all(result.search.visit_counts.sum(1) == 12)
    spread = float(abs(fp32.root_value).max())
    assert spread > 0.05  # the comparison below is not between zeros
    assert abs(result.root_value - fp32.root_value).max() < 0.1 * spread
    assert int8_actor.model is model  # callers still see (and train) the fp32 model


def test_explore_replaces_a_share_of_rows_with_random_legal_actions() -> None:
    gen = torch.Generator().manual_seed(0)
    legal = torch.zeros(4000, 5, dtype=torch.bool)
    legal[:, [1, 3]] = True
    choice = torch.full((4000,), 1)
    picked = explore(choice, legal, 0.2, gen)
    assert set(picked.tolist()) == {1, 3}  # only legal actions
    assert 0.08 < (picked == 3).float().mean().item() < 0.12  # 0.2 * 1/2
    assert torch.equal(explore(choice, legal, 0.0, gen), choice)


def test_explore_applies_while_collecting_only(model) -> None:
    search = SearchConfig(algorithm="gumbel_muzero", num_simulations=4)
    greedy = BatchedActor(model, TASKS, ActingConfig(search, 5)).act(mixed_obs(), temperature=0.0)
    always = BatchedActor(model, TASKS, ActingConfig(search, 5, explore_epsilon=1.0))
    evaluation = always.act(mixed_obs(), temperature=0.0)
    assert (evaluation.action_index == greedy.action_index).all()
    picks = {
        int(always.act(mixed_obs(), temperature=1.0, seed=s).action_index[0]) for s in range(40)
    }
    assert picks == {0, 3}  # Pong's two legal actions, both played
    with pytest.raises(ValueError, match="explore_epsilon"):
        ActingConfig(explore_epsilon=1.5)


def test_with_holds_on_the_actor_leaves_exploring_to_the_collector(model) -> None:
    search = SearchConfig(algorithm="gumbel_muzero", num_simulations=4)
    plain = BatchedActor(model, TASKS, ActingConfig(search, 5))
    holding = BatchedActor(
        model, TASKS, ActingConfig(search, 5, explore_epsilon=1.0, explore_hold=2.0)
    )
    for seed in range(5):
        a = plain.act(mixed_obs(), temperature=1.0, seed=seed)
        b = holding.act(mixed_obs(), temperature=1.0, seed=seed)
        assert np.array_equal(a.action_index, b.action_index)


GOLDEN = Path(__file__).with_name("data") / "acting_golden.npz"


@pytest.mark.parametrize("algorithm", ["muzero", "gumbel_muzero"])
@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_device_resident_acting_on_cpu_matches_the_host_path(
    model, algorithm: str, temperature: float
) -> None:
    """The device-resident search, run with the device set to the CPU, picks the same actions
    and visit counts at fixed seeds as the host-side path it replaced. The golden arrays were
    recorded from that path (commit b06b2ba) on this mixed Atari + classic + DMC + text batch,
    with exploration on, so every random draw of acting is covered."""
    config = ActingConfig(
        SearchConfig(algorithm=algorithm, num_simulations=12),
        sampled_actions=5,
        explore_epsilon=0.25,
    )
    result = BatchedActor(model, TASKS, config).act(mixed_obs(), seed=3, temperature=temperature)
    golden, key = np.load(GOLDEN), f"{algorithm}-{temperature:g}"
    assert np.array_equal(result.action_index, golden[f"{key}/action_index"])
    assert np.array_equal(result.search.visit_counts.numpy(), golden[f"{key}/visit_counts"])
    for name in ("action_vector", "policy", "sampled", "root_value"):
        assert np.allclose(getattr(result, name), golden[f"{key}/{name}"], atol=1e-6), name


def test_compile_step_runs_the_search_through_one_compiled_step(model, monkeypatch) -> None:
    """``compile_step`` compiles the recurrent step once (fullgraph) and every simulation goes
    through it. Traced with aot_eager here (the same aten ops as eager, so the same search;
    inductor's fused arithmetic differs in the last bits, which flips near-tied choices of an
    untrained model); tests/world_models/test_wm_compile.py checks inductor's step itself."""
    compiled: list[dict] = []
    real_compile = torch.compile

    def spy(fn, **options):
        compiled.append(options)
        return real_compile(fn, **{**options, "backend": "aot_eager"})

    monkeypatch.setattr(torch, "compile", spy)
    config = ActingConfig(SearchConfig(num_simulations=6), sampled_actions=5)
    eager = BatchedActor(model, TASKS, config).act(mixed_obs(), seed=5)
    actor = BatchedActor(model, TASKS, replace(config, compile_step=True))
    for _ in range(2):
        result = actor.act(mixed_obs(), seed=5)
        assert np.array_equal(result.action_index, eager.action_index)
        assert torch.equal(result.search.visit_counts, eager.search.visit_counts)
        assert np.allclose(result.policy, eager.policy, atol=1e-6)
    assert compiled == [{"fullgraph": True}]  # once, reused by the second search
