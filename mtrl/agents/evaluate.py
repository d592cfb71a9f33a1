"""Evaluation episodes with the acting path used in training (temperature aside)."""

from __future__ import annotations

import numpy as np
import torch

from mtrl.agents.acting import BatchedActor
from mtrl.envs.settings import EnvSettings
from mtrl.envs.vector import ActionBatch, MultiTaskEnv


def evaluate(
    actor: BatchedActor,
    episodes: int,
    discounts: torch.Tensor,
    settings: EnvSettings | None = None,
    seed: int = 10_000,
    temperature: float = 0.0,
    max_batched_steps: int = 100_000,
) -> dict[str, list[float]]:
    """The return of the first episode of ``episodes`` environments of every task of the actor.

    All tasks are evaluated: the batch's task ids must index the actor's task set.
    Environment ``r`` is seeded with ``seed + r``, so the same seed gives the same episodes.
    Search runs with the actor's own settings; only the visit-count temperature differs
    (0: the most visited action; Gumbel MuZero plays the search's choice regardless).
    An environment whose episode ended stops: acting and stepping cover the running ones only,
    so short episodes (a text game, a fallen pole) cost nothing while long ones finish.
    ``settings`` are the run's: episodes follow their evaluation protocol
    (``EnvSettings.for_evaluation``: Atari starts with up to ``atari.eval_noop_max`` no-ops).
    """
    protocol = (settings or EnvSettings()).for_evaluation()
    env = MultiTaskEnv(actor.tasks, envs_per_task=episodes, settings=protocol, seed=seed)
    try:
        env.reset()
        first: dict[int, float] = {}
        running = list(range(env.num_envs))
        for call in range(max_batched_steps):
            if not running:
                break
            result = actor.act(
                env.observe(running), discounts, temperature, seed=seed * 1_000_003 + call
            )
            batch = env.step(
                _actions(env, running, result.action_index, result.action_vector), running
            )
            for end in batch.episodes:
                first.setdefault(end.row, end.episode_return)
            running = [row for row in running if row not in first]
        returns: dict[str, list[float]] = {name: [] for name in env.tasks.names}
        for row in sorted(first):
            returns[env.tasks[int(env.task_ids[row])].id].append(first[row])
        return returns
    finally:
        env.close()


def _actions(
    env: MultiTaskEnv, rows: list[int], index: np.ndarray, vector: np.ndarray
) -> ActionBatch:
    """Actions for every env row: ``index``/``vector`` of ``rows`` in place, zeros elsewhere."""
    full_index = np.zeros(env.num_envs, np.int64)
    full_vector = np.zeros((env.num_envs, env.tasks.max_action_dim), np.float32)
    full_index[rows] = index
    width = min(vector.shape[1], full_vector.shape[1])
    full_vector[rows, :width] = vector[:, :width]
    return ActionBatch(full_index, full_vector)


def mean_returns(returns: dict[str, list[float]]) -> dict[str, float]:
    return {
        task: float(np.mean(values)) if values else float("nan") for task, values in returns.items()
    }
