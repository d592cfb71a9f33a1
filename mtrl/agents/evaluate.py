"""Evaluation episodes with the acting path used in training (temperature aside)."""

from __future__ import annotations

import numpy as np
import torch

from mtrl.agents.acting import BatchedActor
from mtrl.agents.collect import Collector
from mtrl.envs.settings import EnvSettings
from mtrl.envs.vector import MultiTaskEnv


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
    """
    env = MultiTaskEnv(actor.tasks, envs_per_task=episodes, settings=settings, seed=seed)
    try:
        collector = Collector(env, actor, {}, discounts)
        first: dict[int, float] = {}
        for _ in range(max_batched_steps):  # nothing is stored: no task is active
            for end in collector.collect(1, temperature, active=set(), seed=seed):
                first.setdefault(end.row, end.episode_return)
            if len(first) == env.num_envs:
                break
        returns: dict[str, list[float]] = {name: [] for name in env.tasks.names}
        for row in sorted(first):
            returns[env.tasks[int(env.task_ids[row])].id].append(first[row])
        return returns
    finally:
        env.close()


def mean_returns(returns: dict[str, list[float]]) -> dict[str, float]:
    return {
        task: float(np.mean(values)) if values else float("nan") for task, values in returns.items()
    }
