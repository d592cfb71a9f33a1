"""Collection into replay, batches for the model, and learning steps on mixed real tasks."""

import copy
import io

import numpy as np
import pytest
import torch

from mtrl.agents.acting import ActingConfig, BatchedActor
from mtrl.agents.batching import TaskSample
from mtrl.agents.collect import Collector
from mtrl.agents.gradients import GradientConfig, SamConfig
from mtrl.agents.learner import Learner, LearnerConfig
from mtrl.agents.reanalyse import reanalyse
from mtrl.agents.replay import ReplayConfig, TaskReplay
from mtrl.envs.vector import MultiTaskEnv
from mtrl.search import SearchConfig
from mtrl.world_models import WorldModel, preset

TASKS = ["classic/CartPole", "dmc/cartpole-balance", "text/tw-coin_collector-l1"]
K = 4


@pytest.fixture(scope="module")
def setup(mtrl_cache):
    torch.manual_seed(0)
    env = MultiTaskEnv(TASKS, envs_per_task=2, seed=0)
    model = WorldModel(env.tasks, preset("tiny"))
    acting = ActingConfig(
        SearchConfig(algorithm="gumbel_muzero", num_simulations=4), sampled_actions=K
    )
    actor = BatchedActor(model, env.tasks, acting)
    config = ReplayConfig(capacity=500, unroll_steps=3, n_step=3, sampled_actions=K)
    replays = {t: TaskReplay(env.tasks[t], config) for t in range(len(env.tasks))}
    collector = Collector(env, actor, replays, torch.full((3,), 0.99))
    episodes = collector.collect(60, temperature=1.0, seed=1)
    learner = Learner(model, env.tasks, LearnerConfig(batch_size=24, lr=3e-3), K)
    yield env, model, replays, learner, episodes
    env.close()


def test_collection_fills_every_task_replay(setup) -> None:
    _, _, replays, _, episodes = setup
    assert all(len(replays[t]) >= 120 for t in range(3))  # 60 steps x 2 envs (+ finals)
    assert any(e.task_id == 0 for e in episodes)  # random-ish CartPole ends within 60 steps
    text = replays[2]
    rows = np.arange(text.total_added)
    acted = rows[~text.is_last[rows]]
    assert all(len(c) > 0 for c in text.offered_commands(acted))
    assert np.allclose(text.policy[acted].sum(1), 1.0, atol=1e-5)
    dmc = replays[1]
    assert dmc.sampled.shape[1:] == (K, 1) and np.all(np.abs(dmc.sampled[:100]) <= 1.0)


def test_batch_layout_and_targets(setup) -> None:
    _, _, replays, learner, _ = setup
    batch = learner.sample(replays, np.random.default_rng(0))
    assert batch.mask.shape == (24, 4) and batch.task_ids.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    assert batch.obs.vector.shape == (16, 4, 5) and len(batch.obs.text) == 8
    assert batch.target_policy.shape == (24, 4, 20) and batch.sampled_policy.shape == (24, 4, K)
    assert torch.all(batch.target_policy[8:16] == 0)  # continuous rows use sampled_policy
    acted = batch.mask[:8, :-1] & batch.mask[:8, 1:]
    assert torch.allclose(batch.target_policy[:8, :-1][acted].sum(-1), torch.ones(1))
    assert torch.all(torch.isfinite(batch.target_value))


def test_learning_steps_reduce_the_loss_on_a_fixed_batch(setup) -> None:
    _, _, replays, learner, _ = setup
    batch = learner.sample(replays, np.random.default_rng(1))
    before = learner.losses(batch)[0].sum().item()
    for _ in range(25):
        metrics = learner.train_step(batch)
    after = learner.losses(batch)[0].sum().item()
    assert after < 0.8 * before
    assert np.isfinite(metrics["learner/grad_norm"]) and metrics["learner/updates"] == 25
    assert "loss/task/text/tw-coin_collector-l1" in metrics


def test_dps_stage_change_keeps_the_optimizer_exact(setup) -> None:
    _, model, replays, learner, _ = setup
    learner.set_stage(1)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    in_optimizer = {id(p) for g in learner.optimizer.param_groups for p in g["params"]}
    assert trainable == in_optimizer
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("encoder."))
    batch = learner.sample(replays, np.random.default_rng(2))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    learner.train_step(batch)
    changed = [
        n
        for n, p in model.named_parameters()
        if n in frozen
        and not n.startswith("target_encoder.")  # EMA of the (frozen) encoder
        and not torch.equal(p, frozen[n])
    ]
    assert changed == []
    learner.set_stage(0)


def test_learner_state_round_trips_safely(setup) -> None:
    _, _, _, learner, _ = setup
    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    learner.load_state_dict(state)
    assert learner.updates == state["updates"]


def test_bad_learner_config() -> None:
    with pytest.raises(ValueError, match="unknown batch_policy 'greedy'"):
        LearnerConfig(batch_policy="greedy")
    with pytest.raises(ValueError, match=r"unknown loss_weights \['laten'\]; valid: value, "):
        LearnerConfig(loss_weights=(("value", 0.5), ("laten", 1.0)))


def test_by_need_follows_each_tasks_loss_within_bounds(setup) -> None:
    env, model, replays, _, _ = setup
    learner = Learner(model, env.tasks, LearnerConfig(batch_size=30, batch_policy="by_need"), K)
    assert learner.need_weights([0, 1, 2]) == {0: 1.0, 1: 1.0, 2: 1.0}  # nothing seen: equal
    metrics = learner.train_step(learner.sample(replays, np.random.default_rng(0)))
    losses = [metrics[f"loss/task/{name}"] for name in env.tasks.names]
    weights = learner.need_weights([0, 1, 2])
    for t in range(3):  # the first update sets the EMA: weight = loss / mean loss, bounded
        assert weights[t] == pytest.approx(min(max(losses[t] / np.mean(losses), 0.5), 2.0))
    assert len(set(weights.values())) == 3  # the three tasks' losses differ
    sizes = [s.batch.rows.shape[0] for s in learner.draw(replays, np.random.default_rng(1))]
    order = np.argsort([weights[t] for t in range(3)])
    assert sizes[order[0]] < sizes[order[2]] and sum(sizes) == 30
    # An explicit need overrides the learner's own; a task never trained counts as average.
    picked = learner.draw(replays, np.random.default_rng(1), need={0: 1.0, 1: 1.0, 2: 4.0})
    assert [s.batch.rows.shape[0] for s in picked] == [5, 5, 20]
    learner.loss_ema[2] = float("nan")
    assert learner.need_weights([0, 1, 2])[2] == pytest.approx(1.0)
    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    buffer.seek(0)
    fresh = Learner(model, env.tasks, LearnerConfig(batch_size=30, batch_policy="by_need"), K)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert fresh.need_weights([0, 1, 2]) == learner.need_weights([0, 1, 2])


@pytest.mark.parametrize("aggregator", ["famo", "pcgrad"])
def test_other_aggregators_with_a_task_absent_from_the_batch(setup, aggregator: str) -> None:
    env, model, replays, _, _ = setup
    config = LearnerConfig(batch_size=12, gradients=GradientConfig(aggregator=aggregator))
    learner = Learner(model, env.tasks, config, K)
    without_text = {t: replays[t] for t in (0, 1)}  # e.g. the text game was solved
    for seed in range(3):
        metrics = learner.train_step(learner.sample(without_text, np.random.default_rng(seed)))
    assert np.isfinite(metrics["learner/grad_norm"])
    assert metrics["loss/task/text/tw-coin_collector-l1"] == 0.0
    assert all(torch.isfinite(v).all() for v in learner.update.aggregator.state_dict().values())


def test_reanalyse_refreshes_policies_of_the_chosen_fraction(setup) -> None:
    env, model, replays, _, _ = setup
    config = ActingConfig(
        SearchConfig(algorithm="gumbel_muzero", num_simulations=4), sampled_actions=K
    )
    actor = BatchedActor(model, env.tasks, config)
    rng = np.random.default_rng(5)
    samples = [TaskSample(t, replays[t], replays[t].sample(4, rng)) for t in range(3)]
    fresh = reanalyse(actor, samples, fraction=0.5, seed=1)
    for old, new in zip(samples, fresh, strict=True):
        assert new.batch.policy.shape == old.batch.policy.shape
        assert np.array_equal(new.batch.policy[2:], old.batch.policy[2:])  # not chosen
        chosen = old.batch.policy_mask[:2]
        assert np.allclose(new.batch.policy[:2][chosen].sum(-1), 1.0, atol=1e-5)
        assert np.array_equal(new.batch.policy[:2][~chosen], old.batch.policy[:2][~chosen])
    assert not np.allclose(fresh[1].batch.sampled[:2], samples[1].batch.sampled[:2])
    assert reanalyse(actor, samples, fraction=0.0) is samples


def test_reanalyse_searches_with_each_tasks_replay_discount(setup) -> None:
    env, model, replays, _, _ = setup
    text = ReplayConfig(task_discounts=(("text", 0.9),))
    own = {t: copy.copy(replays[t]) for t in range(3)}
    own[2].discount = text.discount_for(env.tasks[2])  # as a TaskReplay built with ``text``
    seen: list[torch.Tensor] = []

    class Spy(BatchedActor):
        def act(self, obs, discounts=None, temperature=1.0, seed=0):  # type: ignore[override]
            seen.append(discounts)
            return super().act(obs, discounts, temperature, seed)

    actor = Spy(model, env.tasks, ActingConfig(SearchConfig("gumbel_muzero", 4), sampled_actions=K))
    rng = np.random.default_rng(6)
    samples = [TaskSample(t, own[t], replays[t].sample(4, rng)) for t in range(3)]
    reanalyse(actor, samples, fraction=0.5, seed=2)
    assert seen[0].tolist() == pytest.approx([0.997, 0.997, 0.9])


def test_bf16_autocast_step_is_finite(setup) -> None:
    env, model, replays, _, _ = setup
    learner = Learner(model, env.tasks, LearnerConfig(batch_size=6, bf16=True), K)
    metrics = learner.train_step(learner.sample(replays, np.random.default_rng(9)))
    assert np.isfinite(metrics["learner/grad_norm"])
    assert all(np.isfinite(v) for k, v in metrics.items() if k.startswith("loss/"))


# bf16 keeps 8 bits of mantissa (~0.4 % per rounding); summed over a batch the loss parts
# stay within 5 % (+0.02 absolute for parts near zero) of the fp32 ones.
BF16_RTOL, BF16_ATOL = 0.05, 0.02


def test_bf16_follows_the_learners_device(setup) -> None:
    env, model, _, _, _ = setup
    assert Learner(model, env.tasks, LearnerConfig(batch_size=6), K).bf16 is False  # CPU
    assert Learner(model, env.tasks, LearnerConfig(batch_size=6, bf16=True), K).bf16 is True


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_bf16_losses_match_fp32(setup, device: str, request) -> None:
    if device == "cuda":
        request.getfixturevalue("cuda_device")  # skips without a GPU
    env, model, replays, _, _ = setup
    model = copy.deepcopy(model).to(device)
    learners = [
        Learner(model, env.tasks, LearnerConfig(batch_size=12, bf16=b), K) for b in (False, True)
    ]
    batch = learners[0].sample(replays, np.random.default_rng(4))
    (fp32, present, logs32), (bf16, _, logs16) = (learner.losses(batch) for learner in learners)
    assert bool(present.all())
    assert torch.allclose(bf16.detach(), fp32.detach(), rtol=BF16_RTOL, atol=BF16_ATOL)
    for name in ("loss/value", "loss/reward", "loss/policy", "loss/latent"):
        assert logs16[name] == pytest.approx(logs32[name], rel=BF16_RTOL, abs=BF16_ATOL), name


def test_task_based_sam_update(setup) -> None:
    """A SAM update runs on the real model (one forward and backward more per task), leaves
    the weights where the optimizer put them, and differs from the plain update."""
    env, model, replays, _, _ = setup
    batch_rng = np.random.default_rng(11)
    plain_model, sam_model = copy.deepcopy(model), copy.deepcopy(model)
    plain = Learner(plain_model, env.tasks, LearnerConfig(batch_size=6, lr=1e-2), K)
    sam = Learner(
        sam_model, env.tasks, LearnerConfig(batch_size=6, lr=1e-2, sam=SamConfig(rho=0.05)), K
    )
    batch = plain.sample(replays, batch_rng)
    calls = []
    real = sam._losses
    sam._losses = lambda b: calls.append(1) or real(b)  # type: ignore[method-assign]
    metrics = sam.train_step(batch)
    plain.train_step(batch)
    assert len(calls) == 1 + 3  # at theta, then at each present task's ascent point
    assert np.isfinite(metrics["learner/grad_norm"])
    moved = [
        not torch.allclose(a, b)
        for a, b in zip(plain_model.parameters(), sam_model.parameters(), strict=True)
    ]
    assert any(moved)
