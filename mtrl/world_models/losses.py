"""Unrolled training losses, reduced per task (for per-task gradient aggregation).

Per step: value and policy at every observation token, reward and next latent at every action
token (teacher forcing, see ``model.py``); with the optional heads, also the episode's end and
Q (against the value target of the action's own observation) at every action token.
Value/reward/Q: cross-entropy against the two-hot target over the h(x) support. Policy:
cross-entropy against the search policy (discrete, text); for continuous tasks the weighted
negative log-likelihood of the K sampled actions under the Gaussian (Sampled MuZero, Hubert et
al. 2021), plus optionally a value-gradient term (``policy_value_coef``, TD-MPC2's policy
objective scored by a frozen critic). Next latent: MSE to the EMA target encoder's latent of
the next observation (stop-gradient), as TD-MPC2's consistency loss. The latent MSE is a mean
over SimNorm entries (each ~1/group), so it is small: weight it up (TD-MPC2 uses 20) through
``per_task(weights)``; the weights belong to the agent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from mtrl.world_models.heads import CONTINUOUS
from mtrl.world_models.support import scalar_to_support, support_to_scalar
from mtrl.world_models.types import Actions, Observations, TaskGroups, UnrolledBatch

if TYPE_CHECKING:
    from mtrl.world_models.model import WorldModel

COMPONENTS = ("value", "reward", "policy", "latent", "end", "q")


@dataclass(frozen=True)
class Losses:
    """Per-task means over each task's valid steps (0 for tasks absent from the batch)."""

    value: torch.Tensor  # [num_tasks]
    reward: torch.Tensor  # [num_tasks]
    policy: torch.Tensor  # [num_tasks]
    latent: torch.Tensor  # [num_tasks]
    end: torch.Tensor  # [num_tasks] end head's cross-entropy (0 without an end head)
    q: torch.Tensor  # [num_tasks] Q head's cross-entropy (0 without a Q head)
    moe_balance: torch.Tensor  # [] Switch balance loss over all tokens, mean over layers
    present: torch.Tensor  # [num_tasks] bool, task has at least one valid step
    # [B] |predicted - target| value at each sequence's first step (no gradient): the
    # replay priority of the sequence's start, as MuZero's prioritized replay uses.
    priority: torch.Tensor
    balance_coef: float = 0.01  # the config's weight of moe_balance in ``total``

    def per_task(self, weights: dict[str, float] | None = None) -> torch.Tensor:
        """[num_tasks] weighted sum of the components (weights default to 1)."""
        weights = weights or {}
        return sum(getattr(self, c) * weights.get(c, 1.0) for c in COMPONENTS)  # type: ignore[return-value]

    def total(self, weights: dict[str, float] | None = None) -> torch.Tensor:
        """Scalar for a plain optimizer step: sum over tasks plus the shared balance term."""
        return self.per_task(weights).sum() + self.balance_coef * self.moe_balance

    def as_dict(self) -> dict[str, torch.Tensor]:
        out = {c: getattr(self, c) for c in COMPONENTS}
        return {**out, "moe_balance": self.moe_balance, "present": self.present}


def compute_losses(
    model: WorldModel,
    batch: UnrolledBatch,
    critic: WorldModel | None = None,
    discounts: torch.Tensor | None = None,
) -> Losses:
    b, s = batch.mask.shape
    tasks = batch.task_ids
    obs = batch.obs.flatten(s)
    latent = model.encode(obs).view(b, s, -1)
    with torch.no_grad():
        target = model.target_encoder(obs).view(b, s, -1)[:, 1:]
    commands, command_mask = model.commands(obs)
    seq = TaskGroups.of(tasks)
    obs_groups, act_groups = expand(seq, s), expand(seq, s - 1)
    h_obs, h_act, balance = run_transformer(model, batch, latent, commands, obs_groups, act_groups)
    value_logits = model.value(h_obs, obs_groups)
    value_loss = cross_entropy(value_logits, batch.target_value, model)
    reward_loss = cross_entropy(model.reward(h_act, act_groups), batch.target_reward, model)
    predicted = model.next(h_act, act_groups).view(b, s - 1, -1)
    latent_loss = (predicted - target).square().mean(-1)
    logits, mean, log_std = model.pi(h_obs, obs_groups, commands, command_mask)
    policy_loss = policy_nll(model, batch, logits, mean, log_std, obs_groups)
    end_loss = end_cross_entropy(model, batch, h_act, act_groups)
    q_loss = q_cross_entropy(model, batch, h_act, act_groups)
    if model.cfg.policy_value_coef and critic is not None:
        if discounts is None:
            raise ValueError("policy_value_coef needs the tasks' discounts")
        # At each sequence's first observation only (a critic call of B rows, not B * S),
        # weighted by S so that its share of the per-task step mean is still the coefficient.
        first = torch.arange(b, device=tasks.device) * s
        climb = value_gradient(
            model, critic, obs, h_obs, (commands, command_mask), obs_groups, discounts, first
        )
        policy_loss = policy_loss + model.cfg.policy_value_coef * s * climb
    n, step_mask, next_mask = len(model.tasks), batch.mask, batch.mask[:, 1:]
    w = batch.weight
    return Losses(
        value=task_mean(value_loss.view(b, s), step_mask, tasks, n, w),
        reward=task_mean(reward_loss.view(b, s - 1), next_mask, tasks, n, w),
        policy=task_mean(policy_loss.view(b, s), step_mask, tasks, n, w),
        latent=task_mean(latent_loss, next_mask, tasks, n, w),
        end=task_mean(end_loss.view(b, s - 1), next_mask, tasks, n, w),
        q=task_mean(q_loss.view(b, s - 1), next_mask, tasks, n, w),
        moe_balance=balance,
        present=torch.zeros(n, dtype=torch.int64, device=tasks.device)
        .index_add_(0, tasks, step_mask.sum(1))
        .gt(0),
        balance_coef=model.cfg.balance_coef,
        priority=first_step_value_error(value_logits.view(b, s, -1), batch.target_value, model),
    )


def end_cross_entropy(
    model: WorldModel, batch: UnrolledBatch, h_act: torch.Tensor, groups: TaskGroups
) -> torch.Tensor:
    """[B * T] binary cross-entropy of the end head against ``target_end`` (zeros without an
    end head, so the component adds nothing)."""
    if model.end_head is None:
        return h_act.new_zeros(h_act.shape[0]).float()
    if batch.target_end is None:
        raise ValueError("the model has an end head: the batch needs target_end")
    logits = model.end(h_act, groups).float()
    return F.binary_cross_entropy_with_logits(
        logits, batch.target_end.flatten().float(), reduction="none"
    )


def q_cross_entropy(
    model: WorldModel, batch: UnrolledBatch, h_act: torch.Tensor, groups: TaskGroups
) -> torch.Tensor:
    """[B * T] cross-entropy of the Q head at action token t against the value target of
    observation t: z_t is the return that followed the action taken there (zeros without a
    Q head, so the component adds nothing)."""
    if model.q_head is None:
        return h_act.new_zeros(h_act.shape[0]).float()
    return cross_entropy(model.q(h_act, groups), batch.target_value[:, :-1], model)


@torch.no_grad()
def first_step_value_error(
    value_logits: torch.Tensor, target: torch.Tensor, model: WorldModel
) -> torch.Tensor:
    """[B] |V(o_0) - z_0| from value logits [B, S, 2S+1] and scalar targets [B, S]."""
    predicted = support_to_scalar(value_logits[:, 0].float(), *model.cfg.support)
    return (predicted - target[:, 0].float()).abs()


def expand(groups: TaskGroups, steps: int) -> TaskGroups:
    """Groups of B sequences -> groups of their B * steps flattened steps (no host sync)."""
    offsets = torch.arange(steps, device=groups.task_ids.device)
    return TaskGroups(
        groups.task_ids.repeat_interleave(steps),
        tuple((t, (rows[:, None] * steps + offsets).flatten()) for t, rows in groups.groups),
    )


def run_transformer(
    model: WorldModel,
    batch: UnrolledBatch,
    latent: torch.Tensor,
    commands: torch.Tensor,
    obs_groups: TaskGroups,
    act_groups: TaskGroups,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Interleave o_0 a_0 ... o_T, run the causal transformer; outputs flattened per kind."""
    b, s, d = latent.shape
    t = s - 1
    act_commands = commands.view(b, s, *commands.shape[1:])[:, :t].flatten(0, 1)
    actions = Actions(
        index=batch.actions.index.flatten(),
        vector=None if batch.actions.vector is None else batch.actions.vector.flatten(0, 1),
    )
    act = model.token(model.action_embed(actions, act_groups, act_commands), act_groups)
    obs = model.token(latent.flatten(0, 1), obs_groups).view(b, s, d)
    pairs = torch.stack([obs[:, :t], act.view(b, t, d)], dim=2).view(b, 2 * t, d)
    tokens = torch.cat([pairs, obs[:, t:]], dim=1)  # [B, 2T + 1, D]
    token_task = batch.task_ids[:, None].expand(b, 2 * t + 1)
    window = model.table.kv_window[batch.task_ids] if model.cfg.train_with_kv_window else None
    h, balance = model.transformer(tokens, token_task, window)
    return h[:, 0::2].flatten(0, 1), h[:, 1::2].flatten(0, 1), balance


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, model: WorldModel) -> torch.Tensor:
    """Per-row CE between logits [N, 2S+1] and two-hot scalar targets (any shape, N rows)."""
    probs = scalar_to_support(target.flatten(), *model.cfg.support)
    return -(probs * F.log_softmax(logits.float(), dim=-1)).sum(-1)


def policy_nll(
    model: WorldModel,
    batch: UnrolledBatch,
    logits: torch.Tensor,
    mean: torch.Tensor,
    log_std: torch.Tensor,
    groups: TaskGroups,
) -> torch.Tensor:
    """[B * S] policy loss: CE for discrete/text rows, sampled-action NLL for continuous rows."""
    target = batch.target_policy.flatten(0, 1)
    log_p = F.log_softmax(logits.float(), dim=-1)
    loss = -(target * log_p).sum(-1)
    if model.cfg.discrete_entropy_coef:  # masked logits are finite: p = 0 there, no NaN
        loss = loss + model.cfg.discrete_entropy_coef * (log_p.exp() * log_p).sum(-1)
    if batch.sampled_actions is None or batch.sampled_policy is None:
        return loss
    actions = batch.sampled_actions.flatten(0, 1)[..., : mean.shape[-1]]  # [N, K, Da]
    dims = model.table.dim_mask[groups.task_ids][:, None, : mean.shape[-1]]
    z = (actions - mean[:, None]) / log_std.exp()[:, None]
    log_prob = ((-0.5 * z.square() - log_std[:, None] - 0.5 * math.log(2 * math.pi)) * dims).sum(-1)
    nll = -(batch.sampled_policy.flatten(0, 1) * log_prob).sum(-1)
    if model.cfg.policy_entropy_coef:
        entropy = ((log_std + 0.5 * math.log(2 * math.pi * math.e)) * dims[:, 0]).sum(-1)
        nll = nll - model.cfg.policy_entropy_coef * entropy
    continuous = model.table.kind[groups.task_ids] == CONTINUOUS
    return torch.where(continuous, nll, loss)


def value_gradient(
    model: WorldModel,
    critic: WorldModel,
    obs: Observations,
    h_obs: torch.Tensor,
    offered: tuple[torch.Tensor, torch.Tensor],
    groups: TaskGroups,
    discounts: torch.Tensor,
    among: torch.Tensor | None = None,
) -> torch.Tensor:
    """[N] -score / scale on the continuous rows (those in ``among`` [M], if given; 0 on the
    others): score = r(s, a) + γ V(s') of an action a = mean + std * noise drawn from the
    policy, by the frozen ``critic`` from the observation alone (as search scores a root's
    candidates), divided by ``score_scale``. Only the policy head learns from it: its input
    is detached, and the critic's weights take no gradient."""
    continuous = model.table.kind[groups.task_ids] == CONTINUOUS
    if among is not None:
        continuous = continuous & torch.zeros_like(continuous).index_fill(0, among, True)
    rows = continuous.nonzero().squeeze(1)
    out = h_obs.new_zeros(h_obs.shape[0], dtype=torch.float32)
    if not rows.numel():
        return out
    picked = obs.select(rows)
    task = picked.task_ids
    sub = TaskGroups.of(task)
    commands, command_mask = offered[0][rows], offered[1][rows]
    _, mean, log_std = model.pi(h_obs[rows].detach(), sub, commands, command_mask)
    action = model.clip_actions(mean + log_std.exp() * torch.randn_like(mean), task)
    with torch.no_grad():
        root = critic.initial_inference(picked)
    step = critic.recurrent_inference(root.state, action.float())
    score = step.reward.float() + discounts.to(task.device)[task] * step.value.float()
    return out.index_copy(0, rows, -score / score_scale(score.detach(), sub))


def score_scale(score: torch.Tensor, groups: TaskGroups) -> torch.Tensor:
    """[M] each row's task's 5-95 percentile range of ``score`` [M] in the batch, at least 1
    (TD-MPC2 divides its Q by the same range, kept as a running average): the policy's step
    is then the same for any reward scale, and the offset of Q, which every action shares,
    does not shrink it."""
    scale = torch.ones_like(score)
    for _, rows in groups.groups:
        low, high = torch.quantile(score[rows], score.new_tensor([0.05, 0.95]))
        scale[rows] = (high - low).clamp_min(1.0)
    return scale


def task_mean(
    loss: torch.Tensor,
    mask: torch.Tensor,
    tasks: torch.Tensor,
    num_tasks: int,
    row_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B, X] losses, [B, X] mask, [B] task ids -> [num_tasks] masked means (0 if no steps);
    ``row_weight`` [B] scales each row's terms, not the step count (importance sampling)."""
    weights = mask.to(loss.dtype)
    count = loss.new_zeros(num_tasks).index_add(0, tasks, weights.sum(1))
    if row_weight is not None:
        weights = weights * row_weight.to(loss.dtype)[:, None]
    total = loss.new_zeros(num_tasks).index_add(0, tasks, (loss * weights).sum(1))
    return total / count.clamp_min(1.0)
