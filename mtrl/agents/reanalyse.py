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

from mtrl.agents.acting import BatchedActor
from mtrl.agents.batching import TaskSample
from mtrl.envs.batch import ObsBatch
from mtrl.envs.spec import Modality


def stored_observations(samples: list[tuple[TaskSample, np.ndarray]], tasks) -> ObsBatch:
    """An ``ObsBatch`` of stored rows: ``(sample, rows [n])`` pairs, rows laid out in order."""
    task_ids, legal_rows, images, vectors, dims, texts, commands = [], [], [], [], [], [], []
    rows = {m: [] for m in Modality}
    for sample, picked in samples:
        modality = tasks[sample.task_id].modality
        start = len(task_ids)
        task_ids.extend([sample.task_id] * len(picked))
        rows[modality].extend(range(start, start + len(picked)))
        legal = np.zeros((len(picked), tasks.max_choices), dtype=bool)
        stored = sample.replay.legal[picked % sample.replay.config.capacity]
        legal[:, : stored.shape[1]] = stored
        legal_rows.append(legal)
        obs = sample.replay.observations(picked)
        if modality == Modality.IMAGE:
            images.append(obs)
        elif modality == Modality.VECTOR:
            padded = np.zeros((len(picked), tasks.max_vector_dim), dtype=np.float32)
            padded[:, : obs.shape[1]] = obs
            vectors.append(padded)
            dims.extend([obs.shape[1]] * len(picked))
        else:
            texts.extend(obs)
            commands.extend(sample.replay.offered_commands(picked))
    image_shape = next(
        (s.obs_shape for s in tasks.specs if s.modality == Modality.IMAGE), (0, 0, 0)
    )
    return ObsBatch(
        task_ids=np.asarray(task_ids, dtype=np.int64),
        legal=np.concatenate(legal_rows),
        image=np.concatenate(images) if images else np.zeros((0, *image_shape), np.uint8),
        image_rows=np.asarray(rows[Modality.IMAGE], dtype=np.int64),
        vector=np.concatenate(vectors)
        if vectors
        else np.zeros((0, tasks.max_vector_dim), np.float32),
        vector_rows=np.asarray(rows[Modality.VECTOR], dtype=np.int64),
        vector_dims=np.asarray(dims, dtype=np.int64),
        text=tuple(texts),
        text_rows=np.asarray(rows[Modality.TEXT], dtype=np.int64),
        commands=tuple(commands),
    )


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
    obs = stored_observations([(s, picked) for s, _, picked in chosen], actor.tasks)
    result = actor.act(obs, temperature=1.0, seed=seed)
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
