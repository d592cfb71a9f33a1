"""The multi-task world model and the interface that search and learning use.

Tokens: each environment step contributes an observation token (its SimNorm latent) and an
action token, both plus a task embedding; the causal transformer reads
``o_0 a_0 o_1 a_1 ... o_T``. The output at an observation token predicts the policy and value
of that state; the output at an action token predicts the reward of the transition and the
next latent (UniZero, Pu et al. 2024). Training is teacher-forced on encoded observations; the
next-latent target comes from a momentum (EMA) copy of the encoder.

Search: ``initial_inference`` encodes the roots and writes their observation token into a
fresh KV cache; each ``recurrent_inference`` appends the action token (-> reward, next latent)
and then the predicted latent (-> policy, value), two one-token steps over the cached context.
Text games: the commands offered at the root are encoded once and kept in the state; imagined
states below the root score the same command list (the model cannot know later lists). The
model never applies an environment's legal mask; search does (``RootInput.legal_mask``).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, replace
from typing import Any

import torch
from torch import nn

from mtrl.envs.batch import ObsBatch, TaskSet
from mtrl.world_models.config import WorldModelConfig
from mtrl.world_models.encoders import ObsEncoder, simnorm
from mtrl.world_models.heads import ActionEmbedding, PolicyHead, TaskMLP, TaskTable
from mtrl.world_models.lora import LoRABank, set_active_adapters
from mtrl.world_models.losses import Losses, compute_losses
from mtrl.world_models.moe import MoE
from mtrl.world_models.support import support_to_scalar
from mtrl.world_models.task_layout import TaskParts, collect, task_rows
from mtrl.world_models.transformer import Transformer
from mtrl.world_models.types import (
    Actions,
    LatentState,
    Observations,
    Prediction,
    TaskGroups,
    UnrolledBatch,
    observations_from_batch,
)


class WorldModel(nn.Module):
    def __init__(self, tasks: TaskSet, cfg: WorldModelConfig) -> None:
        super().__init__()
        self.tasks, self.cfg = tasks, cfg
        n, d, hidden, bins = len(tasks), cfg.embed_dim, cfg.head_hidden, cfg.num_bins
        self.table = TaskTable(tasks, tuple(cfg.kv_window(s.suite) for s in tasks.specs))
        self.encoder = ObsEncoder(tasks, cfg)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.task_embed = nn.Parameter(torch.randn(n, d) * 0.02)
        self.action_embed = ActionEmbedding(tasks, self.table, d)
        self.transformer = Transformer(cfg, n)
        per_task = cfg.per_task_heads
        self.policy_head = PolicyHead(tasks, self.table, d, hidden, per_task)
        self.value_head = TaskMLP(n, d, hidden, bins, per_task, zero_init=True)
        self.reward_head = TaskMLP(n, d, hidden, bins, per_task, zero_init=True)
        self.latent_head = TaskMLP(n, d, hidden, d, per_task)
        self.end_head = TaskMLP(n, d, hidden, 1, per_task, zero_init=True) if cfg.end_head else None
        self.q_head = TaskMLP(n, d, hidden, bins, per_task, zero_init=True) if cfg.q_head else None
        self.has_text = any(s.action.kind == "text" for s in tasks.specs)

    @property
    def device(self) -> torch.device:
        return self.task_embed.device

    # ---- small single-purpose pieces (TD-MPC2 style) ----

    def encode(self, obs: Observations) -> torch.Tensor:
        """Observations -> latents [N, D]."""
        return self.encoder(obs)

    def token(self, x: torch.Tensor, groups: TaskGroups) -> torch.Tensor:
        """Add the task embedding to tokens [N, D] (if enabled)."""
        if not self.cfg.task_token_embedding:
            return x
        return x + self.task_embed[groups.task_ids]

    def next(self, h: torch.Tensor, groups: TaskGroups) -> torch.Tensor:
        """Action-token output [N, D] -> predicted next latent [N, D]."""
        return simnorm(self.latent_head(h, groups), self.cfg.simnorm_group)

    def reward(self, h: torch.Tensor, groups: TaskGroups) -> torch.Tensor:
        """Action-token output -> reward logits [N, 2S+1]."""
        return self.reward_head(h, groups)

    def end(self, h: torch.Tensor, groups: TaskGroups) -> torch.Tensor:
        """Action-token output -> logit [N] that the transition ends the episode (models with
        an end head only)."""
        return self.end_head(h, groups)[:, 0]

    def q(self, h: torch.Tensor, groups: TaskGroups) -> torch.Tensor:
        """Action-token output -> logits [N, 2S+1] of the return after the action (models
        with a Q head only)."""
        return self.q_head(h, groups)

    def value(self, h: torch.Tensor, groups: TaskGroups) -> torch.Tensor:
        """Observation-token output -> value logits [N, 2S+1]."""
        return self.value_head(h, groups)

    def pi(
        self,
        h: torch.Tensor,
        groups: TaskGroups,
        commands: torch.Tensor,
        command_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Observation-token output -> (logits [N, A], mean [N, Da], log_std [N, Da])."""
        bounds = (self.cfg.log_std_min, self.cfg.log_std_max, self.cfg.log_std_shift)
        return self.policy_head(h, groups, commands, command_mask, bounds)

    def commands(self, obs: Observations) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded offered commands of every row: [N, A, D] (zeros off text rows), mask [N, A]."""
        width = self.tasks.max_choices if self.has_text else 0
        emb = torch.zeros(obs.size, width, self.cfg.embed_dim, device=self.device)
        mask = torch.zeros(obs.size, width, dtype=torch.bool, device=self.device)
        if obs.text_rows.numel() and width:
            text_emb, text_mask = self.encoder.encode_commands(obs.commands, width)
            emb = emb.index_copy(0, obs.text_rows, text_emb.to(emb.dtype))
            mask = mask.index_copy(0, obs.text_rows, text_mask)
        return emb, mask

    # ---- the interface used by search ----

    def initial_inference(
        self, obs: ObsBatch | Observations, task_ids: torch.Tensor | None = None
    ) -> Prediction:
        """Encode B root observations (any mix of tasks); the state's cache holds their token.

        ``task_ids`` defaults to ``obs.task_ids`` (if given, it must match). Runs under the
        caller's grad mode (wrap search in ``torch.inference_mode()``).
        """
        if isinstance(obs, ObsBatch):
            obs = observations_from_batch(obs, self.device)
        if task_ids is not None and not torch.equal(task_ids.to(obs.task_ids), obs.task_ids):
            raise ValueError("task_ids differ from the observations' task ids")
        groups = TaskGroups.of(obs.task_ids)
        latent = self.encode(obs)
        commands, command_mask = self.commands(obs)
        cache = self.transformer.empty_cache(obs.size, self.device, latent.dtype)
        window = self.table.kv_window[groups.task_ids]
        h, cache, _ = self.transformer.step(
            self.token(latent, groups), cache, window=window, inplace=True
        )
        state = LatentState(cache, latent, commands, command_mask, groups)
        return self.predict(h, state, reward_logits=None)

    def recurrent_inference(
        self,
        state: LatentState,
        actions: Actions | torch.Tensor,
        task_ids: torch.Tensor | None = None,
    ) -> Prediction:
        """One imagined step for B rows of any mix of tasks and depths.

        ``actions``: ``Actions`` or a tensor — int64 [B] indices (discrete/text) or float
        [B, Da] continuous actions. ``task_ids`` defaults to the state's (rows never change
        task). The input state is not modified, so several children can share a parent.
        """
        if task_ids is not None and not torch.equal(task_ids.to(state.task_ids), state.task_ids):
            raise ValueError("task_ids differ from the state's task ids")
        actions = as_actions(actions)
        groups = state.groups
        a = self.token(self.action_embed(actions, groups, state.commands), groups)
        window = self.table.kv_window[groups.task_ids]
        h, cache, _ = self.transformer.step(a, state.cache, window=window)
        reward_logits, latent = self.reward(h, groups), self.next(h, groups)
        end_prob = self.end(h, groups).float().sigmoid() if self.end_head is not None else None
        q = self.q(h, groups) if self.q_head is not None else None
        token = self.token(latent, groups)
        # In place into the cache the first step copied, unless autograd may need it (the
        # learner's value-gradient term differentiates through this step).
        inplace = not torch.is_grad_enabled()
        h, cache, _ = self.transformer.step(token, cache, window=window, inplace=inplace)
        state = replace(state, cache=cache, latent=latent)
        return self.predict(h, state, reward_logits, end_prob, q)

    def predict(
        self,
        h: torch.Tensor,
        state: LatentState,
        reward_logits: torch.Tensor | None,
        end_prob: torch.Tensor | None = None,
        q_logits: torch.Tensor | None = None,
    ) -> Prediction:
        logits, mean, log_std = self.pi(h, state.groups, state.commands, state.command_mask)
        value_logits = self.value(h, state.groups)
        support = self.cfg.support
        reward = (
            torch.zeros_like(h[:, 0])
            if reward_logits is None
            else support_to_scalar(reward_logits, *support)
        )
        return Prediction(
            state=state,
            policy_logits=logits,
            mean=mean,
            log_std=log_std,
            value=support_to_scalar(value_logits, *support),
            reward=reward,
            value_logits=value_logits,
            reward_logits=reward_logits,
            end_prob=torch.zeros_like(h[:, 0]).float() if end_prob is None else end_prob,
            q=None if q_logits is None else support_to_scalar(q_logits, *support),
        )

    def sample_actions(
        self, pred: Prediction, k: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """K actions per row from the Gaussian policy, clipped to the task's bounds:
        [B, K, Da] (Sampled MuZero's root candidates; padded dims and non-continuous rows 0)."""
        task = pred.state.task_ids
        noise = torch.randn(
            (*pred.mean.shape[:1], k, pred.mean.shape[1]), generator=generator, device=self.device
        )
        actions = pred.mean[:, None] + pred.log_std.exp()[:, None] * noise
        return self.clip_actions(actions, task[:, None])

    def clip_actions(self, actions: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Continuous actions [..., Da] of tasks ``task_ids`` [...] clipped to each task's
        bounds, padded dims zeroed."""
        da = actions.shape[-1]
        low = (self.table.center - self.table.half_range)[task_ids][..., :da]
        high = (self.table.center + self.table.half_range)[task_ids][..., :da]
        dims = self.table.dim_mask[task_ids][..., :da]
        return torch.minimum(torch.maximum(actions, low), high) * dims

    # ---- learning ----

    def losses(
        self,
        batch: UnrolledBatch,
        critic: WorldModel | None = None,
        discounts: torch.Tensor | None = None,
    ) -> Losses:
        """Per-task losses of an unrolled batch; see ``mtrl.world_models.losses``. ``critic``
        (a frozen copy) and per-task ``discounts`` [num_tasks] enable ``policy_value_coef``."""
        return compute_losses(self, batch, critic, discounts)

    @torch.no_grad()
    def update_target(self, momentum: float | None = None) -> None:
        """EMA step of the target encoder: target <- m * target + (1 - m) * online."""
        m = self.cfg.target_momentum if momentum is None else momentum
        for target, online in zip(
            self.target_encoder.parameters(), self.encoder.parameters(), strict=True
        ):
            target.lerp_(online, 1.0 - m)

    # ---- DPS and logging ----

    def set_active_adapters(self, active: int) -> None:
        set_active_adapters(self, active)

    @property
    def active_adapters(self) -> int:
        return next((m.active for m in self.modules() if isinstance(m, LoRABank)), 0)

    def expert_load(self) -> torch.Tensor:
        """[layers, tasks, experts]: each task's share of routed assignments per expert
        (training tokens since the last reset; rows of absent tasks are 0)."""
        loads = [m.task_load for m in self.modules() if isinstance(m, MoE)]
        if not loads:  # a dense model (num_experts == 0)
            return torch.zeros(0, len(self.tasks), 0, device=self.device)
        counts = torch.stack(loads)
        return counts / counts.sum(-1, keepdim=True).clamp_min(1.0)

    def reset_expert_load(self) -> None:
        for m in self.modules():
            if isinstance(m, MoE):
                m.reset_load()

    # ---- which weights belong to which task (fine-tuning moves them by task) ----

    def task_parts(self) -> TaskParts:
        return task_rows(len(self.tasks), "task_embed")

    def task_layout(self) -> TaskParts:
        """State-dict key -> task id -> that task's entries, for every tensor that holds
        per-task slices (see ``mtrl.world_models.task_layout``); other tensors are shared."""
        return collect(self)

    @classmethod
    def task_layout_of(cls, tasks: TaskSet, cfg: WorldModelConfig) -> TaskParts:
        """The layout of a model of ``tasks`` and ``cfg``, built without allocating weights."""
        with torch.device("meta"):
            return cls(tasks, cfg).task_layout()

    def checkpoint(self) -> dict[str, Any]:
        """Tensors and plain data only, loadable with ``torch.load(weights_only=True)``."""
        return {
            "config": asdict(self.cfg),
            "tasks": list(self.tasks.names),
            "active_adapters": self.active_adapters,  # the DPS stage's adapters in forward
            "state": self.state_dict(),
        }

    @classmethod
    def from_checkpoint(cls, tasks: TaskSet, ckpt: dict[str, Any]) -> WorldModel:
        """A model built from a checkpoint's own config, with its weights loaded."""
        model = cls(tasks, WorldModelConfig(**ckpt["config"]))
        model.load_checkpoint(ckpt)
        return model

    def load_checkpoint(self, ckpt: dict[str, Any]) -> None:
        if list(ckpt["tasks"]) != list(self.tasks.names):
            raise ValueError(f"checkpoint tasks {ckpt['tasks']} != model tasks {self.tasks.names}")
        self.load_state_dict(ckpt["state"])
        self.set_active_adapters(int(ckpt["active_adapters"]))


def as_actions(actions: Actions | torch.Tensor) -> Actions:
    if isinstance(actions, Actions):
        return actions
    if actions.is_floating_point():
        index = torch.zeros(actions.shape[0], dtype=torch.int64, device=actions.device)
        return Actions(index=index, vector=actions)
    return Actions(index=actions.long())
