"""The WorldModel interface over mixed-task batches: inference, losses, checkpoints."""

import dataclasses
import io
import math

import pytest
import torch
from wm_helpers import random_actions, random_batch, random_obs, select_rows

from mtrl.envs.batch import ObsBatch, TaskSet
from mtrl.world_models import Actions, LatentState, Prediction, WorldModel, h, preset
from mtrl.world_models.heads import MASKED
from mtrl.world_models.losses import expand, run_transformer
from mtrl.world_models.types import TaskGroups, UnrolledBatch

MIXED = [0, 2, 4, 5, 1, 3, 4, 0]  # image, vector-continuous, text, vector-discrete, ...


def test_mixed_batch_in_one_forward(model: WorldModel, tasks: TaskSet) -> None:
    with torch.no_grad():
        pred = model.initial_inference(random_obs(tasks, MIXED))
    b, a = len(MIXED), tasks.max_choices
    assert pred.policy_logits.shape == (b, a) and pred.value.shape == (b,)
    assert pred.mean.shape == pred.log_std.shape == (b, tasks.max_action_dim)
    assert torch.isfinite(pred.value).all() and torch.isfinite(pred.policy_logits).all()
    valid = pred.policy_logits > MASKED / 2
    assert valid[0].sum() == 18 and valid[3].sum() == 2  # Atari, CartPole
    assert valid[1].sum() == 0  # continuous rows have no logits ...
    assert (pred.mean[1].abs() <= 1).all() and (pred.log_std[1] < 2).all()  # ... but a Gaussian
    assert 2 <= valid[2].sum() <= 5  # text: one logit per offered command
    assert pred.state.cache.count.tolist() == [1] * b


def test_rows_do_not_influence_each_other(model: WorldModel, tasks: TaskSet) -> None:
    with torch.no_grad():
        obs = random_obs(tasks, MIXED, seed=3)
        mixed = model.initial_inference(obs)
        for row in (0, 1, 2):
            alone = model.initial_inference(select_rows(obs, [row]))
            got = mixed.state.latent[row : row + 1], mixed.state.cache.keys[:, row : row + 1]
            want = alone.state.latent, alone.state.cache.keys
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def randomize(model: WorldModel) -> None:
    """Heads start at zero (uniform outputs); give them weights so comparisons mean something."""
    for head in (model.policy_head.mlp, model.value_head, model.reward_head):
        torch.nn.init.normal_(head.w2, std=0.3)


def unroll(model: WorldModel, tasks: TaskSet, ids: list[int], depth: int) -> list[Prediction]:
    """Initial inference then ``depth`` recurrent steps with fixed per-row actions."""
    preds = [model.initial_inference(random_obs(tasks, ids, seed=7))]
    for d in range(depth):
        actions = random_actions(tasks, ids, (), seed=d)
        preds.append(model.recurrent_inference(preds[-1].state, actions))
    return preds


@pytest.mark.parametrize("per_task_heads", [False, True])
def test_recurrent_over_mixed_tasks_matches_per_task_calls(
    tasks: TaskSet, per_task_heads: bool
) -> None:
    torch.manual_seed(0)
    model = WorldModel(tasks, preset("tiny", per_task_heads=per_task_heads)).eval()
    randomize(model)
    with torch.no_grad():
        mixed = unroll(model, tasks, MIXED, depth=3)
        for row, task in enumerate(MIXED):
            single = unroll_single(model, tasks, row)
            for m, s in zip(mixed, single, strict=True):
                for name in ("policy_logits", "mean", "log_std", "value", "reward"):
                    got = getattr(m, name)[row : row + 1]
                    torch.testing.assert_close(got, getattr(s, name), atol=1e-4, rtol=1e-4)
                got = m.state.latent[row : row + 1], m.state.cache.keys[:, row : row + 1]
                want = s.state.latent, s.state.cache.keys
                torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
            assert mixed[-1].state.task_ids[row] == task


def unroll_single(model: WorldModel, tasks: TaskSet, row: int) -> list[Prediction]:
    """The same observations and actions as ``unroll(MIXED)``, for one row only."""
    preds = [model.initial_inference(select_rows(random_obs(tasks, MIXED, seed=7), [row]))]
    pick = torch.tensor([row])
    for d in range(3):
        a = random_actions(tasks, MIXED, (), seed=d)
        actions = Actions(index=a.index[pick], vector=a.vector[pick])
        preds.append(model.recurrent_inference(preds[-1].state, actions))
    return preds


def test_recurrent_inference_leaves_the_parent_state_alone(model: WorldModel, tasks) -> None:
    with torch.no_grad():
        root = model.initial_inference(random_obs(tasks, MIXED))
        keys = root.state.cache.keys.clone()
        a = model.recurrent_inference(root.state, random_actions(tasks, MIXED, (), seed=1))
        b = model.recurrent_inference(root.state, random_actions(tasks, MIXED, (), seed=2))
    assert torch.equal(root.state.cache.keys, keys) and isinstance(a.state, LatentState)
    assert not torch.allclose(a.state.latent, b.state.latent)  # children differ by action


def test_losses_are_per_task_finite_and_backprop(model: WorldModel, tasks: TaskSet) -> None:
    losses = model.losses(random_batch(tasks, MIXED, steps=4))
    parts = losses.as_dict()
    for name in ("value", "reward", "policy", "latent"):
        assert parts[name].shape == (len(tasks),) and torch.isfinite(parts[name]).all()
    assert losses.present.all() and losses.moe_balance >= 1.0 - 1e-5
    losses.total().backward()
    assert model.transformer.blocks[0].ffn.router.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.target_encoder.parameters())
    load = model.expert_load()  # training tokens, per layer and task
    assert load.shape == (model.cfg.num_layers, len(tasks), model.cfg.num_experts)
    torch.testing.assert_close(load.sum(-1), torch.ones(model.cfg.num_layers, len(tasks)))
    model.reset_expert_load()
    assert model.expert_load().sum() == 0


def test_absent_tasks_and_masked_steps_do_not_count(model: WorldModel, tasks: TaskSet) -> None:
    batch = random_batch(tasks, [0, 2, 0], steps=3)
    losses = model.losses(batch)
    assert losses.present.tolist() == [True, False, True, False, False, False]
    assert losses.value[[1, 3, 4, 5]].abs().sum() == 0
    target = batch.target_value.clone()
    target[0, -1] = 1e4  # step masked out by random_batch
    changed = model.losses(type(batch)(**{**batch.__dict__, "target_value": target}))
    torch.testing.assert_close(changed.value, losses.value)


def test_importance_weights_scale_rows_and_priorities_are_value_errors(
    model: WorldModel, tasks: TaskSet
) -> None:
    batch = random_batch(tasks, [0, 0, 2], steps=3)
    plain = model.losses(batch)
    ones = model.losses(dataclasses.replace(batch, weight=torch.ones(3)))
    torch.testing.assert_close(ones.value, plain.value)
    # Rows 0 and 1 are task 0's: weights (2, 0) make its mean twice row 0's share alone.
    weighted = model.losses(dataclasses.replace(batch, weight=torch.tensor([2.0, 0.0, 1.0])))
    only_first = model.losses(dataclasses.replace(batch, weight=torch.tensor([1.0, 0.0, 1.0])))
    torch.testing.assert_close(weighted.value[0], 2 * only_first.value[0])
    torch.testing.assert_close(weighted.value[2], plain.value[2])
    with torch.no_grad():
        pred = model.initial_inference(select_obs_step(batch, 0))
    expected = (pred.value - batch.target_value[:, 0]).abs()
    torch.testing.assert_close(plain.priority, expected, rtol=1e-4, atol=1e-4)


def select_obs_step(batch, step: int):
    """The observations at step ``step`` of every sequence, as a batch of B roots."""
    obs = batch.obs
    first = dataclasses.replace(
        obs,
        image=obs.image[:, step : step + 1],
        vector=obs.vector[:, step : step + 1],
        text=tuple(seq[step : step + 1] for seq in obs.text),
        commands=tuple(seq[step : step + 1] for seq in obs.commands),
    )
    return first.flatten(1)


def test_a_few_steps_reduce_the_loss(model: WorldModel, tasks: TaskSet) -> None:
    batch = random_batch(tasks, MIXED, steps=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(12):
        loss = model.losses(batch).total()
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.update_target()
    assert model.losses(batch).total().item() < 0.8 * first


def test_target_encoder_follows_with_momentum(model: WorldModel) -> None:
    online = next(model.encoder.parameters())
    target = next(model.target_encoder.parameters())
    with torch.no_grad():
        online.add_(1.0)
    before = target.clone()
    model.update_target(momentum=0.75)
    torch.testing.assert_close(target, 0.75 * before + 0.25 * online)


def test_checkpoint_round_trips_with_weights_only(model: WorldModel, tasks: TaskSet) -> None:
    obs = random_obs(tasks, MIXED)
    model.set_active_adapters(1)
    with torch.no_grad():  # a trained adapter, so that restoring it matters
        model.transformer.blocks[0].attn.q.lora.B[0].normal_()
    buffer = io.BytesIO()
    torch.save(model.checkpoint(), buffer)
    buffer.seek(0)
    ckpt = torch.load(buffer, weights_only=True)
    torch.manual_seed(123)
    fresh = WorldModel.from_checkpoint(tasks, ckpt)
    assert fresh.cfg == model.cfg
    assert fresh.active_adapters == 1  # restored with the weights
    assert ckpt["config"]["embed_dim"] == model.cfg.embed_dim
    with torch.no_grad():
        a, b = model.initial_inference(obs), fresh.initial_inference(obs)
    torch.testing.assert_close(a.value_logits, b.value_logits)
    torch.testing.assert_close(a.policy_logits, b.policy_logits)


def test_text_policy_scores_the_offered_commands(model: WorldModel, tasks: TaskSet) -> None:
    randomize(model)
    obs = random_obs(tasks, [4, 4], seed=5)
    first = obs.commands[0]
    second = (first[0], "take the lamp", *first[2:], "open door")  # slot 1 differs, one more
    same_state = dataclasses.replace(obs, text=(obs.text[0],) * 2, commands=(first, second))
    with torch.no_grad():
        logits = model.initial_inference(same_state).policy_logits
    valid = (logits > MASKED / 2).sum(-1)
    assert valid.tolist() == [len(first), len(second)]
    torch.testing.assert_close(logits[1, 0], logits[0, 0])  # same state, same command
    assert not torch.isclose(logits[1, 1], logits[0, 1])  # another command, another score


def test_sampled_continuous_actions_respect_bounds(model: WorldModel, tasks: TaskSet) -> None:
    randomize(model)
    with torch.no_grad():
        pred = model.initial_inference(random_obs(tasks, MIXED))
        actions = model.sample_actions(pred, k=16, generator=torch.Generator().manual_seed(0))
    assert actions.shape == (len(MIXED), 16, tasks.max_action_dim)
    assert actions.abs().max() <= 1.0 and actions[1].std() > 0  # dmc: bounds [-1, 1]
    assert actions[0].abs().sum() == 0  # an Atari row has no continuous action


def test_selected_rows_continue_like_the_full_batch(model: WorldModel, tasks: TaskSet) -> None:
    randomize(model)
    actions = random_actions(tasks, MIXED, (), seed=3)
    rows = torch.tensor([5, 2, 3])
    with torch.no_grad():
        root = model.initial_inference(random_obs(tasks, MIXED))
        full = model.recurrent_inference(root.state, actions)
        picked = Actions(index=actions.index[rows], vector=actions.vector[rows])
        part = model.recurrent_inference(root.state.select(rows), picked)
    torch.testing.assert_close(part.value, full.value[rows], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(part.policy_logits, full.policy_logits[rows], atol=1e-4, rtol=1e-4)


def test_runs_under_bf16_autocast(model: WorldModel, tasks: TaskSet) -> None:
    """Learners and search servers use autocast; scatters into fp32 buffers must cope."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        root = model.initial_inference(random_obs(tasks, MIXED))
        step = model.recurrent_inference(root.state, random_actions(tasks, MIXED, ()))
        loss = model.losses(random_batch(tasks, MIXED, steps=3)).total()
    loss.backward()
    assert torch.isfinite(step.value).all() and torch.isfinite(loss)


def train_policy(tasks: TaskSet, batch, steps: int, **config) -> tuple[WorldModel, torch.Tensor]:
    """A tiny model (seed 0, ``config`` changed) trained ``steps`` Adam steps on the policy
    loss of ``batch`` alone; also its per-task policy losses before training."""
    torch.manual_seed(0)
    model = WorldModel(tasks, preset("tiny", **config))
    before = model.losses(batch).policy.detach()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        model.losses(batch).policy.sum().backward()
        optimizer.step()
    return model, before


def test_policy_entropy_bonus_keeps_the_gaussian_wide(tasks: TaskSet) -> None:
    """Without the bonus the sampled-action NLL narrows the policy towards its K samples;
    with it the same updates leave a wider Gaussian. Discrete rows are not affected."""
    batch = random_batch(tasks, [2, 3, 5, 2], steps=3)
    obs = random_obs(tasks, [2, 3], seed=5)
    stds, discrete_losses = [], []
    for coef in (0.0, 1.0):
        model, before = train_policy(tasks, batch, 15, policy_entropy_coef=coef)
        discrete_losses.append(before[5].item())
        with torch.no_grad():
            stds.append(model.initial_inference(obs).log_std[:, :1].mean().item())
    assert discrete_losses[0] == discrete_losses[1]
    assert stds[1] > stds[0] + 0.5


def test_discrete_entropy_bonus_keeps_low_prior_actions_alive(tasks: TaskSet) -> None:
    """Trained towards a one-hot search policy, the discrete prior of the other legal actions
    collapses; the bonus keeps their smallest probability higher (12x here). Gaussian rows are not
    affected, and masked actions stay at probability 0."""
    batch = random_batch(tasks, [5, 5, 2], steps=3)
    one_hot = torch.zeros_like(batch.target_policy)
    one_hot[..., 0] = 1.0
    batch = dataclasses.replace(batch, target_policy=one_hot)
    obs = random_obs(tasks, [5, 5], seed=0)  # the batch's first observations (its seed 0, t 0)
    smallest, gaussian_losses = [], []
    for coef in (0.0, 0.5):
        model, before = train_policy(tasks, batch, 80, discrete_entropy_coef=coef)
        gaussian_losses.append(before[2].item())
        with torch.no_grad():
            probs = model.initial_inference(obs).policy_logits.softmax(-1)
        legal = probs > 0
        assert legal.sum(-1).eq(tasks[5].action.n).all()  # masked actions: exactly 0
        smallest.append(probs[legal].min().item())
    assert gaussian_losses[0] == gaussian_losses[1]
    assert smallest[1] > 2 * smallest[0], smallest


def test_policy_init_std_sets_the_untrained_gaussian_only(tasks: TaskSet) -> None:
    """The untrained policy's std is exp(-2) by default, ``policy_init_std`` otherwise; the
    discrete logits and everything else of the same-seed model are unchanged."""
    obs = random_obs(tasks, [2, 3, 5], seed=7)  # continuous, discrete, discrete rows
    preds = []
    for std in (None, 1.0, 0.5):
        torch.manual_seed(0)
        model = WorldModel(tasks, preset("tiny", policy_init_std=std))
        with torch.no_grad():
            preds.append(model.initial_inference(obs))
    dims = tasks[2].action.dim
    for pred, std in zip(preds, (math.exp(-2.0), 1.0, 0.5), strict=True):
        torch.testing.assert_close(pred.log_std[0, :dims].exp(), torch.full((dims,), std))
        torch.testing.assert_close(pred.policy_logits, preds[0].policy_logits)
        torch.testing.assert_close(pred.mean, preds[0].mean)
    with pytest.raises(ValueError, match="policy_init_std"):
        preset("tiny", policy_init_std=3.0)  # above exp(log_std_max) = e


def test_support_step_rescales_predicted_values_and_rewards(tasks: TaskSet) -> None:
    """Same weights, bins 0.2 apart in h(x) instead of 1: every predicted value and reward is
    h^-1 of a fifth of the step-1 model's expected bin."""
    obs = random_obs(tasks, MIXED, seed=3)
    actions = random_actions(tasks, MIXED, (), seed=3)
    torch.manual_seed(0)
    weights = WorldModel(tasks, preset("tiny")).state_dict()
    for tensor in weights.values():  # untrained heads predict 0 everywhere: move them
        tensor.add_(0.1 * torch.randn_like(tensor.float()).to(tensor.dtype))
    outputs = []
    for step in (1.0, 0.2):
        model = WorldModel(tasks, preset("tiny", support_step=step))
        model.load_state_dict(weights)
        with torch.no_grad():
            root = model.initial_inference(obs)
            outputs.append((root.value, model.recurrent_inference(root.state, actions).reward))
    for coarse, fine in zip(*outputs, strict=True):
        assert coarse.abs().max() > 1e-3  # the moved heads predict away from 0
        torch.testing.assert_close(h(fine), 0.2 * h(coarse), rtol=1e-3, atol=1e-4)  # float32 h^-1


def test_end_head_learns_which_transitions_ended(tasks: TaskSet) -> None:
    """Without an end head nothing predicts an end and the component is 0; with one, the first
    step's prediction starts at p = 0.5 (not terminal to the search, which needs p > 0.5) and
    training on a batch teaches it which of the batch's transitions ended."""
    batch = random_batch(tasks, [5, 5, 0, 3], steps=3)
    obs = random_obs(tasks, [5, 5, 0, 3], seed=0)  # the batch's first observations
    first_actions = Actions(batch.actions.index[:, 0], batch.actions.vector[:, 0])
    ended = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    batch = dataclasses.replace(batch, target_end=ended, mask=torch.ones(4, 3, dtype=torch.bool))
    torch.manual_seed(0)
    plain = WorldModel(tasks, preset("tiny"))
    step = first_step(plain, obs, first_actions)
    assert plain.end_head is None and not step.end_prob.any()
    assert not plain.losses(batch).end.any()
    torch.manual_seed(0)
    model = WorldModel(tasks, preset("tiny", end_head=True))
    torch.testing.assert_close(
        first_step(model, obs, first_actions).end_prob, torch.full((4,), 0.5)
    )
    with pytest.raises(ValueError, match="needs target_end"):
        model.losses(dataclasses.replace(batch, target_end=None))
    fit(model, batch, {"end": 10.0}, updates=40)
    step = first_step(model, obs, first_actions)
    assert (step.end_prob > 0.5).tolist() == [True, False, True, False], step.end_prob


def test_q_head_learns_the_return_after_each_first_action(tasks: TaskSet) -> None:
    """Without a Q head the search gets no Q and the component is 0; with one, training on a
    batch teaches the first imagined step's Q the value target of the batch's first
    observation (the return after the action taken there)."""
    batch = random_batch(tasks, [5, 5, 0, 3], steps=3)
    obs = random_obs(tasks, [5, 5, 0, 3], seed=0)  # the batch's first observations
    first_actions = Actions(batch.actions.index[:, 0], batch.actions.vector[:, 0])
    returns = torch.tensor([[4.0, 2.0, 1.0], [-3.0, 0.0, 0.0], [10.0, 1.0, 0.0], [0.5, 0.0, 0.0]])
    mask = torch.ones(4, 3, dtype=torch.bool)
    batch = dataclasses.replace(batch, target_value=returns, mask=mask)
    torch.manual_seed(0)
    plain = WorldModel(tasks, preset("tiny"))
    assert plain.q_head is None and first_step(plain, obs, first_actions).q is None
    assert not plain.losses(batch).q.any()
    torch.manual_seed(0)
    model = WorldModel(tasks, preset("tiny", q_head=True))
    fit(model, batch, {"q": 10.0}, updates=200)
    step = first_step(model, obs, first_actions)
    torch.testing.assert_close(step.q, returns[:, 0], atol=0.6, rtol=0.05)


def first_step(model: WorldModel, obs: ObsBatch, actions: Actions) -> Prediction:
    """The search's first imagined step from ``obs`` with ``actions``, without autograd."""
    with torch.no_grad():
        return model.recurrent_inference(model.initial_inference(obs).state, actions)


def fit(model: WorldModel, batch: UnrolledBatch, weights: dict[str, float], updates: int) -> None:
    """``updates`` Adam steps (lr 3e-3) on one batch's weighted losses."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(updates):
        loss = model.losses(batch).total(weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_training_and_search_see_the_same_first_step(tasks: TaskSet) -> None:
    """Training's teacher-forced forward and the search's first imagined step build the same
    tokens: the reward predicted for (o_0, a_0) agrees between them."""
    rows = [5, 5, 0, 3]
    batch = dataclasses.replace(
        random_batch(tasks, rows, steps=2), mask=torch.ones(4, 2, dtype=torch.bool)
    )
    obs = random_obs(tasks, rows, seed=0)  # the batch's first observations
    first = Actions(batch.actions.index[:, 0], batch.actions.vector[:, 0])
    torch.manual_seed(0)
    model = WorldModel(tasks, preset("tiny")).eval()
    randomize(model)
    with torch.no_grad():
        searched = model.recurrent_inference(model.initial_inference(obs).state, first)
        flat = batch.obs.flatten(2)
        latent, commands = model.encode(flat).view(4, 2, -1), model.commands(flat)[0]
        seq = TaskGroups.of(batch.task_ids)
        _, h_act, _ = run_transformer(
            model, batch, latent, commands, expand(seq, 2), expand(seq, 1)
        )
        trained = model.reward(h_act, expand(seq, 1))
    assert searched.reward_logits.abs().max() > 1e-3
    torch.testing.assert_close(trained, searched.reward_logits, atol=1e-4, rtol=1e-4)
