"""From per-task replay samples to the model's ``UnrolledBatch`` (all tasks in one batch).

Image tasks of different frame shapes are zero-padded to ``TaskSet.max_image_shape`` here,
as in environment batches (``mtrl.envs.batch``); replay holds each task's own shape.

Rows are laid out task by task in the order the samples are given. Value targets are
``reward_sum + bootstrap_weight * V_target(s_bootstrap)``, with the target network evaluated
once for every bootstrap observation of the batch (one ``initial_inference`` call).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mtrl.agents.replay import SequenceBatch
from mtrl.agents.seams import SampleSource
from mtrl.envs.batch import TaskSet
from mtrl.envs.spec import Modality
from mtrl.world_models import Actions, SequenceObs, UnrolledBatch, WorldModel


@dataclass(frozen=True)
class TaskSample:
    task_id: int  # index into the TaskSet
    replay: SampleSource  # a TaskReplay, or a replay shard's slice
    batch: SequenceBatch


def start_row_priorities(
    samples: list[TaskSample], priorities: torch.Tensor
) -> list[tuple[TaskSample, np.ndarray, np.ndarray]]:
    """Per sample: its sequences' start rows and their new priorities (``priorities`` [B] in
    the batch's row order, which ``assemble`` lays out sample by sample)."""
    out, start = [], 0
    values = priorities.detach().float().cpu().numpy()
    for sample in samples:
        rows = sample.batch.rows[:, 0]
        out.append((sample, rows, values[start : start + len(rows)]))
        start += len(rows)
    if start != len(values):
        raise ValueError(f"{len(values)} priorities for {start} sampled sequences")
    return out


def _rows_of(samples: list[TaskSample], modality: Modality, tasks: TaskSet) -> list[int]:
    rows, start = [], 0
    for sample in samples:
        size = sample.batch.rows.shape[0]
        if tasks[sample.task_id].modality == modality:
            rows.extend(range(start, start + size))
        start += size
    return rows


def sequence_obs(tasks: TaskSet, samples: list[TaskSample], field: str = "rows") -> SequenceObs:
    """Observations at ``batch.<field>`` ([B_t, S] absolute rows) of every sample."""
    images, vectors, texts, commands = [], [], [], []
    width = tasks.max_vector_dim
    for sample in samples:
        rows = getattr(sample.batch, field)
        modality = tasks[sample.task_id].modality
        obs = sample.replay.observations(rows)
        if modality == Modality.IMAGE:
            images.append(torch.from_numpy(_pad_frames(obs, tasks.max_image_shape)))
        elif modality == Modality.VECTOR:
            padded = np.zeros((*rows.shape, width), dtype=np.float32)
            padded[..., : obs.shape[-1]] = obs
            vectors.append(torch.from_numpy(padded))
        else:
            steps = rows.shape[1]
            offered = sample.replay.offered_commands(rows)
            texts.extend(tuple(obs[i : i + steps]) for i in range(0, len(obs), steps))
            commands.extend(tuple(offered[i : i + steps]) for i in range(0, len(offered), steps))
    steps = samples[0].batch.rows.shape[1]
    task_ids = torch.cat([torch.full((s.batch.rows.shape[0],), s.task_id) for s in samples])
    image_shape = tasks.max_image_shape if images else (0, 0, 0)
    return SequenceObs(
        task_ids=task_ids,
        image=torch.cat(images)
        if images
        else torch.zeros(0, steps, *image_shape, dtype=torch.uint8),
        image_rows=torch.tensor(_rows_of(samples, Modality.IMAGE, tasks), dtype=torch.int64),
        vector=torch.cat(vectors) if vectors else torch.zeros(0, steps, width),
        vector_rows=torch.tensor(_rows_of(samples, Modality.VECTOR, tasks), dtype=torch.int64),
        text=tuple(texts),
        text_rows=torch.tensor(_rows_of(samples, Modality.TEXT, tasks), dtype=torch.int64),
        commands=tuple(commands),
    )


def _pad_frames(frames: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Replay frames ``[..., C, H, W]`` at their task's shape, zero-padded to the batch's frame
    shape (``TaskSet.max_image_shape``; see ``mtrl.envs.batch``); a copy only when padding."""
    if frames.shape[-3:] == shape:
        return np.ascontiguousarray(frames)
    out = np.zeros((*frames.shape[:-3], *shape), dtype=frames.dtype)
    out[..., : frames.shape[-3], : frames.shape[-2], : frames.shape[-1]] = frames
    return out


@torch.no_grad()
def bootstrap_values(target: WorldModel, tasks: TaskSet, samples: list[TaskSample]) -> torch.Tensor:
    """Target-network values at every bootstrap observation: [B, S]."""
    seq = sequence_obs(tasks, samples, field="bootstrap_rows")
    steps = samples[0].batch.rows.shape[1]
    values = target.initial_inference(seq.flatten(steps)).value.float().cpu()
    return values.view(-1, steps)


def _cat(samples: list[TaskSample], name: str) -> np.ndarray:
    return np.concatenate([getattr(s.batch, name) for s in samples])


def _pad(array: np.ndarray, axis: int, size: int) -> np.ndarray:
    if array.shape[axis] >= size:
        return np.take(array, np.arange(size), axis=axis)
    widths = [(0, 0)] * array.ndim
    widths[axis] = (0, size - array.shape[axis])
    return np.pad(array, widths)


def unrolled_batch(
    tasks: TaskSet, samples: list[TaskSample], values: torch.Tensor, sampled_actions: int
) -> UnrolledBatch:
    """The training batch; ``values`` [B, S] are the target network's bootstrap values."""
    choices, dim = tasks.max_choices, tasks.max_action_dim
    continuous = np.concatenate(
        [np.full(s.batch.rows.shape[0], tasks[s.task_id].action.is_continuous) for s in samples]
    )
    policy = [_pad(s.batch.policy, 2, max(choices, sampled_actions)) for s in samples]
    policy = np.concatenate(policy)
    target_value = (
        torch.from_numpy(_cat(samples, "reward_sum"))
        + torch.from_numpy(_cat(samples, "bootstrap_weight")) * values
    )
    vector = None
    sampled = sampled_policy = None
    if dim:
        vector = torch.from_numpy(
            np.concatenate([_pad(s.batch.action_vector, 2, dim) for s in samples])
        )
        sampled = torch.from_numpy(
            np.concatenate(
                [_pad(_pad(s.batch.sampled, 2, sampled_actions), 3, dim) for s in samples]
            )
        )
        sampled_policy = torch.from_numpy(policy[..., :sampled_actions] * continuous[:, None, None])
    discrete_policy = policy[..., :choices] * ~continuous[:, None, None]
    return UnrolledBatch(
        obs=sequence_obs(tasks, samples),
        actions=Actions(torch.from_numpy(_cat(samples, "action_index")), vector),
        target_value=target_value.float(),
        target_reward=torch.from_numpy(_cat(samples, "reward")),
        target_policy=torch.from_numpy(np.ascontiguousarray(discrete_policy)).float(),
        mask=torch.from_numpy(_cat(samples, "valid")),
        sampled_actions=sampled,
        sampled_policy=None if sampled_policy is None else sampled_policy.float(),
        weight=torch.from_numpy(_cat(samples, "weight")).float(),
        target_end=torch.from_numpy(_cat(samples, "ended")),
    )
