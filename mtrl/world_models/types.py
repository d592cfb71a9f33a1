"""Tensors in and out of the world model (frozen dataclasses; shapes in comments).

``Observations`` is the torch twin of ``mtrl.envs.batch.ObsBatch`` (flat rows grouped by
modality); ``SequenceObs`` is the same with a time axis, for training; ``Actions`` covers every
action kind in one batch; ``LatentState`` is what search keeps per node; ``Prediction`` is what
both inference calls return; ``UnrolledBatch`` is what the learner feeds to ``losses``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mtrl.envs.batch import ObsBatch
from mtrl.world_models.transformer import KVCache


@dataclass(frozen=True)
class Observations:
    """N observations of any tasks; row r of the batch is task ``task_ids[r]``."""

    task_ids: torch.Tensor  # [N] int64, index into the TaskSet
    image: torch.Tensor  # [Ni, C, H, W] uint8
    image_rows: torch.Tensor  # [Ni] int64
    vector: torch.Tensor  # [Nv, D] float32, zero-padded to TaskSet.max_vector_dim
    vector_rows: torch.Tensor  # [Nv] int64
    text: tuple[str, ...]  # [Nt]
    text_rows: torch.Tensor  # [Nt] int64
    commands: tuple[tuple[str, ...], ...]  # [Nt] offered commands, in action-index order

    @property
    def size(self) -> int:
        return int(self.task_ids.shape[0])

    def select(self, rows: torch.Tensor) -> Observations:
        """The observations of ``rows`` [M] (ascending, distinct), renumbered 0..M-1."""
        new = torch.full((self.size,), -1, dtype=torch.int64, device=rows.device)
        new[rows] = torch.arange(rows.numel(), device=rows.device)

        def keep(kind_rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            renumbered = new[kind_rows]
            kept = renumbered >= 0
            return kept.nonzero().squeeze(1), renumbered[kept]

        image, image_rows = keep(self.image_rows)
        vector, vector_rows = keep(self.vector_rows)
        text, text_rows = keep(self.text_rows)
        texts = text.tolist()
        return Observations(
            task_ids=self.task_ids[rows],
            image=self.image[image],
            image_rows=image_rows,
            vector=self.vector[vector],
            vector_rows=vector_rows,
            text=tuple(self.text[i] for i in texts),
            text_rows=text_rows,
            commands=tuple(self.commands[i] for i in texts),
        )


def observations_from_batch(obs: ObsBatch, device: torch.device | str = "cpu") -> Observations:
    """The adapter from an environment batch (numpy) to model tensors."""

    def tensor(array: np.ndarray) -> torch.Tensor:
        # Arrays that arrive through Ray's object store are read-only; torch would warn that
        # writes are undefined. Copy those (only those).
        return torch.as_tensor(np.require(array, requirements="W")).to(device)

    return Observations(
        task_ids=tensor(obs.task_ids),
        image=tensor(obs.image),
        image_rows=tensor(obs.image_rows),
        vector=tensor(obs.vector),
        vector_rows=tensor(obs.vector_rows),
        text=obs.text,
        text_rows=tensor(obs.text_rows),
        commands=obs.commands,
    )


@dataclass(frozen=True)
class SequenceObs:
    """B sequences of S = T + 1 observations each, grouped by modality like ``Observations``."""

    task_ids: torch.Tensor  # [B] int64 (a sequence never changes task)
    image: torch.Tensor  # [Bi, S, C, H, W] uint8
    image_rows: torch.Tensor  # [Bi] int64, which of the B sequences
    vector: torch.Tensor  # [Bv, S, D] float32, zero-padded
    vector_rows: torch.Tensor  # [Bv] int64
    text: tuple[tuple[str, ...], ...]  # [Bt][S]
    text_rows: torch.Tensor  # [Bt] int64
    commands: tuple[tuple[tuple[str, ...], ...], ...]  # [Bt][S] offered commands per step

    def flatten(self, steps: int) -> Observations:
        """Rows ``b * S + t`` (sequence-major), so that ``[B * S] -> [B, S]`` is a view."""

        def rows(seq_rows: torch.Tensor) -> torch.Tensor:
            offsets = torch.arange(steps, device=seq_rows.device)
            return (seq_rows[:, None] * steps + offsets).flatten()

        return Observations(
            task_ids=self.task_ids.repeat_interleave(steps),
            image=self.image.flatten(0, 1),
            image_rows=rows(self.image_rows),
            vector=self.vector.flatten(0, 1),
            vector_rows=rows(self.vector_rows),
            text=tuple(s for seq in self.text for s in seq),
            text_rows=rows(self.text_rows),
            commands=tuple(c for seq in self.commands for c in seq),
        )


@dataclass(frozen=True)
class Actions:
    """One action per row, whatever its task's kind."""

    index: torch.Tensor  # [...] int64: discrete action / command index (ignored on continuous rows)
    vector: torch.Tensor | None = None  # [..., Da] float32 in the task's [low, high], zero-padded


@dataclass(frozen=True)
class TaskGroups:
    """Rows of a batch grouped by task, computed once (one host sync) and reused by search."""

    task_ids: torch.Tensor  # [N] int64
    groups: tuple[tuple[int, torch.Tensor], ...]  # (task id, rows [n_task] int64)

    @staticmethod
    def of(task_ids: torch.Tensor) -> TaskGroups:
        ids = task_ids.cpu().numpy()
        groups = tuple(
            (int(t), torch.as_tensor(np.flatnonzero(ids == t)).to(task_ids.device))
            for t in np.unique(ids)
        )
        return TaskGroups(task_ids, groups)


@dataclass(frozen=True)
class LatentState:
    """What a search node needs to continue: the context so far (KV cache) and its latent."""

    cache: KVCache  # last 2 * kv_window_steps tokens of every row
    latent: torch.Tensor  # [B, D] latent of the current observation (SimNorm)
    commands: torch.Tensor  # [B, A, De] root's encoded commands (zeros on non-text rows)
    command_mask: torch.Tensor  # [B, A] bool, which command slots exist
    groups: TaskGroups  # rows by task; B = groups.task_ids.shape[0]

    @property
    def task_ids(self) -> torch.Tensor:
        return self.groups.task_ids

    def select(self, rows: torch.Tensor) -> LatentState:
        """The state of some rows (e.g. parents gathered from a node store); regroups rows by
        task (one host sync), so keep a selection's row order fixed across a search."""
        return LatentState(
            cache=self.cache.index(rows),
            latent=self.latent[rows],
            commands=self.commands[rows],
            command_mask=self.command_mask[rows],
            groups=TaskGroups.of(self.task_ids[rows]),
        )


@dataclass(frozen=True)
class Prediction:
    """Output of ``initial_inference`` / ``recurrent_inference`` for B rows."""

    state: LatentState
    policy_logits: torch.Tensor  # [B, A] discrete/text logits; -1e9 off the task's range
    mean: torch.Tensor  # [B, Da] Gaussian policy mean in [low, high] (continuous rows)
    log_std: torch.Tensor  # [B, Da] log standard deviation (continuous rows)
    value: torch.Tensor  # [B] scalar value (h^-1 of the categorical expectation)
    reward: torch.Tensor  # [B] scalar reward of the last transition (0 at initial inference)
    value_logits: torch.Tensor  # [B, 2S+1]
    reward_logits: torch.Tensor | None  # [B, 2S+1], None at initial inference
    # [B] P(the last transition ended the episode): the end head's, 0 at initial inference
    # or without an end head (``WorldModelConfig.end_head``).
    end_prob: torch.Tensor
    # [B] Q of the last transition's action in its parent state (models with a Q head, after
    # a recurrent step; ``WorldModelConfig.q_head``), else None.
    q: torch.Tensor | None = None

    @property
    def ended(self) -> torch.Tensor:
        """[B] bool: the search treats these rows as terminal (P(end) > 0.5)."""
        return self.end_prob > 0.5

    @property
    def continued_value(self) -> torch.Tensor:
        """[B] float32 V as the search scores it: weighed by P(the episode goes on), as
        DreamerV3 weighs imagined values by its continue probability (endings are rare, so a
        head that ranks fatal actions well may seldom pass 0.5); 0 where ``ended``."""
        value = (1.0 - self.end_prob.float()) * self.value.float()
        return torch.where(self.ended, 0.0, value)


@dataclass(frozen=True)
class UnrolledBatch:
    """B training sequences: S = T + 1 observations and T actions each (teacher-forced).

    Step t of row b holds obs t, the search policy and value target at obs t, and (t < T)
    action t and the reward of the transition obs t -> obs t + 1. ``mask[b, t]`` is False for
    steps after the episode ended or past the sampled segment; transition t counts iff
    ``mask[b, t + 1]``.
    """

    obs: SequenceObs  # B sequences of S steps
    actions: Actions  # index [B, T], vector [B, T, Da] (None without continuous tasks)
    target_value: torch.Tensor  # [B, S] float32 scalar (n-step) value targets
    target_reward: torch.Tensor  # [B, T] float32 scalar rewards
    target_policy: torch.Tensor  # [B, S, A] float32 search policy over choices (rows sum to 1)
    mask: torch.Tensor  # [B, S] bool
    # Continuous tasks (Sampled MuZero, Hubert et al. 2021): K sampled actions per step and
    # the search's weights over them; None without continuous tasks.
    sampled_actions: torch.Tensor | None = None  # [B, S, K, Da] float32
    sampled_policy: torch.Tensor | None = None  # [B, S, K] float32, rows sum to 1
    # Importance weights of prioritized replay (Schaul et al. 2016): each row's losses count
    # this much in its task's mean; None weighs every row 1.
    weight: torch.Tensor | None = None  # [B] float32
    # [B, T] float32: 1 where transition t ended the episode (terminated, not truncated); the
    # end head's target, needed only with ``WorldModelConfig.end_head``.
    target_end: torch.Tensor | None = None

    @property
    def task_ids(self) -> torch.Tensor:
        return self.obs.task_ids

    @property
    def steps(self) -> int:
        return int(self.mask.shape[1])
