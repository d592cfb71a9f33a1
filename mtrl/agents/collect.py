"""Collection: act in a batch of environments of many tasks and store what search said."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from mtrl.agents.acting import ActResult
from mtrl.agents.exploration import HeldExploration
from mtrl.agents.seams import Acting, TransitionSink
from mtrl.envs.batch import ObsBatch
from mtrl.envs.vector import ActionBatch, EpisodeEnd, MultiTaskEnv, StepBatch


def row_observations(obs: ObsBatch) -> list[tuple[np.ndarray | str, tuple[str, ...]]]:
    """Each env row's observation (and offered commands for text rows), in row order."""
    rows: list[tuple[np.ndarray | str, tuple[str, ...]]] = [(np.zeros(0), ())] * obs.size
    for i, row in enumerate(obs.image_rows):
        rows[row] = (obs.image[i], ())
    for i, row in enumerate(obs.vector_rows):
        rows[row] = (obs.vector[i, : obs.vector_dims[i]], ())
    for i, row in enumerate(obs.text_rows):
        rows[row] = (obs.text[i], obs.commands[i])
    return rows


class Collector:
    """Steps ``env`` with ``actor``'s choices and appends every transition to ``replays``.

    Only tasks in ``active`` are stored (DPS: solved tasks stop being collected); rows of other
    tasks still step so that the batch keeps its layout.
    """

    def __init__(
        self,
        env: MultiTaskEnv,
        actor: Acting,
        replays: Mapping[int, TransitionSink],
        discounts: torch.Tensor,
    ) -> None:
        self.env, self.actor, self.replays, self.discounts = env, actor, replays, discounts
        self.obs = env.reset()
        self.env_steps = 0
        self.calls = 0
        self.continuous = np.array([s.action.is_continuous for s in env.tasks.specs])
        config = actor.config
        self.held = (
            HeldExploration(
                config.explore_epsilon,
                config.explore_holds(env.tasks.specs)[env.task_ids],
                config.explore_max_hold,
                max(env.tasks.max_action_dim, 1),
            )
            if config.holds_exploration
            else None
        )

    def collect(
        self, steps: int, temperature: float, active: set[int] | None = None, seed: int = 0
    ) -> list[EpisodeEnd]:
        episodes: list[EpisodeEnd] = []
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            result = self.actor.act(
                self.obs, self.discounts, temperature, seed=seed * 1_000_003 + self.calls
            )
            self.calls += 1
            if self.held is not None and temperature > 0:
                continuous = self.continuous[self.obs.task_ids]
                result = self.held.apply(result, self.obs.legal, continuous, rng)
            batch = self.env.step(self.actions(result))
            if self.held is not None:
                self.held.end(np.flatnonzero(batch.terminated | batch.truncated))
            self._store(self.obs, result, batch, active)
            episodes.extend(batch.episodes)
            self.obs = batch.obs
            self.env_steps += self.env.num_envs
        return episodes

    def actions(self, result: ActResult) -> ActionBatch:
        vector = np.zeros((self.env.num_envs, self.env.tasks.max_action_dim), np.float32)
        vector[:, : result.action_vector.shape[1]] = result.action_vector[:, : vector.shape[1]]
        return ActionBatch(result.action_index.astype(np.int64), vector)

    def _store(
        self, obs: ObsBatch, result: ActResult, batch: StepBatch, active: set[int] | None
    ) -> None:
        current = row_observations(obs)
        for row, task in enumerate(obs.task_ids.tolist()):
            if active is not None and task not in active:
                continue
            replay = self.replays[task]
            spec = self.env.tasks[task]
            width = (
                self.actor.config.sampled_actions if spec.action.is_continuous else (spec.action.n)
            )
            observation, commands = current[row]
            action = (
                result.action_vector[row, : spec.action.dim]
                if spec.action.is_continuous
                else int(result.action_index[row])
            )
            replay.add(
                row,
                observation,
                obs.legal[row],
                action,
                float(batch.reward[row]),
                result.policy[row, :width],
                float(result.root_value[row]),
                result.sampled[row, :, : spec.action.dim],
                commands,
            )
            if batch.terminated[row] or batch.truncated[row]:
                final = batch.final_obs[row]
                replay.end_episode(row, final, bool(batch.terminated[row]))
