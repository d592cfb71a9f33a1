"""Random observations, actions and unrolled batches for any TaskSet (test helpers)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mtrl.envs.batch import ObsBatch, TaskSet
from mtrl.envs.spec import Modality
from mtrl.world_models import (
    Actions,
    SequenceObs,
    UnrolledBatch,
)

WORDS = ("north", "south", "key", "door", "open", "take", "coin", "room", "dark", "lamp")


def sentence(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(WORDS, size=n))


def random_obs(tasks: TaskSet, task_ids: Sequence[int], seed: int = 0) -> ObsBatch:
    """An ``ObsBatch`` with random content for the given rows' tasks."""
    rng = np.random.default_rng(seed)
    mods = [tasks[t].modality for t in task_ids]
    rows = {m: np.array([r for r, x in enumerate(mods) if x == m], np.int64) for m in Modality}
    shape = next((tasks[t].obs_shape for t in task_ids if tasks[t].modality == "image"), (0,) * 3)
    vector = np.zeros((len(rows[Modality.VECTOR]), tasks.max_vector_dim), np.float32)
    dims = np.array([tasks[task_ids[r]].obs_shape[0] for r in rows[Modality.VECTOR]], np.int64)
    for i, d in enumerate(dims):
        vector[i, :d] = rng.normal(size=d)
    commands = tuple(
        tuple(sentence(rng, 2) for _ in range(rng.integers(2, 6))) for _ in rows[Modality.TEXT]
    )
    legal = np.zeros((len(task_ids), tasks.max_choices), bool)
    return ObsBatch(
        task_ids=np.asarray(task_ids, np.int64),
        legal=legal,
        image=rng.integers(0, 256, size=(len(rows[Modality.IMAGE]), *shape), dtype=np.uint8),
        image_rows=rows[Modality.IMAGE],
        vector=vector,
        vector_rows=rows[Modality.VECTOR],
        vector_dims=dims,
        text=tuple(sentence(rng, 8) for _ in rows[Modality.TEXT]),
        text_rows=rows[Modality.TEXT],
        commands=commands,
    )


def random_actions(tasks: TaskSet, task_ids: Sequence[int], shape: tuple[int, ...], seed: int = 0):
    """Legal random ``Actions`` of shape [len(task_ids), *shape] for each row's task."""
    gen = torch.Generator().manual_seed(seed)
    specs = [tasks[t].action for t in task_ids]
    # Text rows offer at least 2 commands in random_obs, so index < 2 is always legal.
    high = torch.tensor([s.n if s.kind == "discrete" else 2 for s in specs])
    high = high.view(-1, *([1] * len(shape)))
    index = (torch.rand(len(specs), *shape, generator=gen) * high).long()
    vector = torch.rand(len(specs), *shape, max(tasks.max_action_dim, 1), generator=gen) * 2 - 1
    return Actions(index=index, vector=vector)


def random_batch(tasks: TaskSet, task_ids: Sequence[int], steps: int, seed: int = 0):
    """An ``UnrolledBatch`` of S = ``steps`` observations per row with random targets."""
    rng = np.random.default_rng(seed)
    b, s = len(task_ids), steps
    per_step = [random_obs(tasks, task_ids, seed=seed * 1000 + t) for t in range(s)]
    first = per_step[0]
    obs = SequenceObs(
        task_ids=torch.as_tensor(first.task_ids),
        image=torch.as_tensor(np.stack([o.image for o in per_step], 1)),
        image_rows=torch.as_tensor(first.image_rows),
        vector=torch.as_tensor(np.stack([o.vector for o in per_step], 1)),
        vector_rows=torch.as_tensor(first.vector_rows),
        text=tuple(tuple(o.text[i] for o in per_step) for i in range(len(first.text))),
        text_rows=torch.as_tensor(first.text_rows),
        commands=tuple(tuple(o.commands[i] for o in per_step) for i in range(len(first.text))),
    )
    policy = torch.zeros(b, s, tasks.max_choices)
    for r, t in enumerate(task_ids):
        n = tasks[t].action.n if tasks[t].action.kind == "discrete" else 2
        policy[r, :, :n] = torch.softmax(torch.as_tensor(rng.normal(size=(s, n))), -1)
    k, da = 3, max(tasks.max_action_dim, 1)
    gen = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, s, dtype=torch.bool)
    mask[0, -1] = False  # an episode that ended before the segment did
    return UnrolledBatch(
        obs=obs,
        actions=random_actions(tasks, task_ids, (s - 1,), seed),
        target_value=torch.as_tensor(rng.normal(size=(b, s)) * 5, dtype=torch.float32),
        target_reward=torch.as_tensor(rng.normal(size=(b, s - 1)), dtype=torch.float32),
        target_policy=policy,
        mask=mask,
        sampled_actions=torch.rand(b, s, k, da, generator=gen) * 2 - 1,
        sampled_policy=torch.softmax(torch.randn(b, s, k, generator=gen), -1),
    )


def select_rows(obs: ObsBatch, rows: Sequence[int]) -> ObsBatch:
    """The sub-batch of some rows of ``obs`` (renumbered in the given order)."""
    new = {old: i for i, old in enumerate(rows)}

    def pick(kind_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = [i for i, r in enumerate(kind_rows) if r in new]
        keep.sort(key=lambda i: new[int(kind_rows[i])])
        return np.asarray(keep, np.int64), np.asarray([new[int(kind_rows[i])] for i in keep])

    img, img_rows = pick(obs.image_rows)
    vec, vec_rows = pick(obs.vector_rows)
    txt, txt_rows = pick(obs.text_rows)
    return ObsBatch(
        task_ids=obs.task_ids[list(rows)],
        legal=obs.legal[list(rows)],
        image=obs.image[img] if len(img) else obs.image[:0],
        image_rows=img_rows.astype(np.int64),
        vector=obs.vector[vec],
        vector_rows=vec_rows.astype(np.int64),
        vector_dims=obs.vector_dims[vec],
        text=tuple(obs.text[i] for i in txt),
        text_rows=txt_rows.astype(np.int64),
        commands=tuple(obs.commands[i] for i in txt),
    )
