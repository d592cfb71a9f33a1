"""Reanalyse: fresh search policies for stored states, from the current model.

MuZero Reanalyse (Schrittwieser et al. 2021) recomputes the policy targets of replayed
positions with the latest network; value targets here always come from the target network at
sample time, so only policies are refreshed. The same ``BatchedActor`` as acting runs one
joint search over all reanalysed positions of all tasks.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from mtrl.agents.acting import BatchedActor
from mtrl.agents.batching import TaskSample
from mtrl.agents.seams import SampleSource
from mtrl.envs.base import Step
from mtrl.envs.batch import ObsBatch, TaskSet, stack_observations


def stored_observations(
    picks: list[tuple[int, SampleSource, np.ndarray]], tasks: TaskSet
) -> ObsBatch:
    """An ``ObsBatch`` of stored rows: ``(task id, replay, rows [n])``, laid out in order."""
    task_ids: list[int] = []
    steps: list[Step] = []
    for task_id, replay, picked in picks:
        obs = replay.observations(picked)
        legal = replay.legal[picked % replay.config.capacity]
        offered = replay.offered_commands(picked) if replay.text else [None] * len(picked)
        task_ids.extend([task_id] * len(picked))
        steps.extend(
            Step(o, 0.0, False, False, m, c) for o, m, c in zip(obs, legal, offered, strict=True)
        )
    return stack_observations(tasks, task_ids, steps)


def reanalyse(
    actor: BatchedActor, samples: list[TaskSample], fraction: float, seed: int = 0
) -> list[TaskSample]:
    """``samples`` with the policy targets of the first ``fraction`` of each task's sequences
    recomputed by one search (positions without a policy target are left alone)."""
    if fraction <= 0.0:
        return samples
    chosen: list[tuple[TaskSample, np.ndarray, np.ndarray]] = []
    for sample in samples:
        count = math.ceil(fraction * sample.batch.rows.shape[0])
        where = np.argwhere(sample.batch.policy_mask[:count])  # [(sequence, position)]
        chosen.append((sample, where, sample.batch.rows[where[:, 0], where[:, 1]]))
    if not any(len(picked) for _, _, picked in chosen):
        return samples
    obs = stored_observations([(s.task_id, s.replay, p) for s, _, p in chosen], actor.tasks)
    discounts = torch.full((len(actor.tasks),), actor.config.discount)
    for sample in samples:
        discounts[sample.task_id] = sample.replay.discount
    result = actor.act(obs, discounts, temperature=1.0, seed=seed)
    out, offset = [], 0
    for sample, where, picked in chosen:
        policy = sample.batch.policy.copy()
        fresh = result.policy[offset : offset + len(picked), : policy.shape[2]]
        policy[where[:, 0], where[:, 1]] = fresh
        sampled = sample.batch.sampled.copy()
        if sampled.shape[2]:
            dim = sampled.shape[3]
            sampled[where[:, 0], where[:, 1]] = result.sampled[
                offset : offset + len(picked), :, :dim
            ]
        offset += len(picked)
        batch = dataclasses.replace(sample.batch, policy=policy, sampled=sampled)
        out.append(dataclasses.replace(sample, batch=batch))
    return out
