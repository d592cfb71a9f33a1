"""What travels between actors: observation batches, search results, replay records/samples.

Workers may run any subset of the run's tasks; their batches are re-indexed to the run's
``TaskSet`` (and padded to its widths) before search, so one search server can batch roots of
several workers. Replay crosses actors as *records* (the ``TaskReplay.add``/``end_episode``
calls a ``Collector`` makes) and comes back as ``ReplaySlice``s: a sampled ``SequenceBatch``
with just the observations it references, enough for ``Learner.sample`` to run unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtrl.agents.acting import ActResult
from mtrl.agents.replay import SequenceBatch, TaskReplay
from mtrl.envs.batch import ObsBatch, TaskSet, pad_images


def to_global(obs: ObsBatch, local_to_global: np.ndarray, tasks: TaskSet) -> ObsBatch:
    """A worker's batch re-indexed to the run's task set, padded to its legal/vector widths
    and its image shape (workers holding other subsets of the image tasks batch together)."""
    legal = np.zeros((obs.size, tasks.max_choices), dtype=bool)
    legal[:, : obs.legal.shape[1]] = obs.legal
    vector = np.zeros((obs.vector.shape[0], tasks.max_vector_dim), dtype=np.float32)
    vector[:, : obs.vector.shape[1]] = obs.vector
    shape = tuple(tasks.max_image_shape)
    padded = obs.image.shape[0] and tuple(obs.image.shape[1:]) != shape
    image = pad_images(obs.image, shape) if padded else obs.image
    return dataclasses.replace(
        obs, task_ids=local_to_global[obs.task_ids], legal=legal, vector=vector, image=image
    )


def concat_obs(batches: list[ObsBatch]) -> ObsBatch:
    """One batch of several (same task set): rows in order, modality row indices offset."""
    if len(batches) == 1:
        return batches[0]
    offsets = np.cumsum([0] + [b.size for b in batches[:-1]])

    def rows(name: str) -> np.ndarray:
        parts = [getattr(b, name) + o for b, o in zip(batches, offsets, strict=True)]
        return np.concatenate(parts).astype(np.int64)

    images = [b.image for b in batches if b.image.shape[0]]
    return ObsBatch(
        task_ids=np.concatenate([b.task_ids for b in batches]),
        legal=np.concatenate([b.legal for b in batches]),
        image=np.concatenate(images) if images else batches[0].image,
        image_rows=rows("image_rows"),
        vector=np.concatenate([b.vector for b in batches]),
        vector_rows=rows("vector_rows"),
        vector_dims=np.concatenate([b.vector_dims for b in batches]),
        text=tuple(t for b in batches for t in b.text),
        text_rows=rows("text_rows"),
        commands=tuple(c for b in batches for c in b.commands),
    )


@dataclass(frozen=True)
class ActSlice:
    """The numpy part of an ``ActResult`` for some rows (the search tensors stay behind)."""

    action_index: np.ndarray
    action_vector: np.ndarray
    policy: np.ndarray
    sampled: np.ndarray
    root_value: np.ndarray
    weights_version: int = -1  # of the server's weights; -1: none loaded yet (a restart)

    @staticmethod
    def split(result: ActResult, sizes: list[int], weights_version: int) -> list[ActSlice]:
        out, start = [], 0
        for size in sizes:
            part = slice(start, start + size)
            out.append(
                ActSlice(
                    result.action_index[part],
                    result.action_vector[part],
                    result.policy[part],
                    result.sampled[part],
                    result.root_value[part],
                    weights_version,
                )
            )
            start += size
        return out

    def to_result(self) -> ActResult:
        # The Collector reads only these arrays; the raw search output is not shipped back
        # (ActResult.search stays None).
        return ActResult(
            self.action_index,
            self.action_vector,
            self.policy,
            self.sampled,
            self.root_value,
        )


class RecordingReplay:
    """Quacks like ``TaskReplay`` for a ``Collector``: records the calls for a replay shard.

    Environment keys are made unique per worker incarnation, so a restarted worker's new
    episodes are never linked to the episodes its previous life left open.
    """

    def __init__(self, task_id: int, key_base: int) -> None:
        self.task_id, self.key_base = task_id, key_base
        self.records: list[tuple[str, tuple[Any, ...]]] = []

    def add(self, env_key: int, *args: Any) -> int:
        self.records.append(("add", (self.key_base + env_key, *args)))
        return -1

    def end_episode(self, env_key: int, *args: Any) -> None:
        self.records.append(("end", (self.key_base + env_key, *args)))

    def drain(self) -> list[tuple[str, tuple[Any, ...]]]:
        records, self.records = self.records, []
        return records


def apply_records(replay: TaskReplay, records: list[tuple[str, tuple[Any, ...]]]) -> int:
    """Replay recorded calls into ``replay``; returns the number of steps added."""
    added = 0
    for kind, args in records:
        if kind == "add":
            replay.add(*args)
            added += 1
        else:
            replay.end_episode(*args)
    return added


@dataclass(frozen=True)
class _WholeRows:
    capacity: int = 1 << 62  # absolute rows are their own slots in a slice (x % cap == x)


class _RowTable:
    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        self.keys, self.values = keys, values

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self.values[np.searchsorted(self.keys, rows)]


class ReplaySlice:
    """One task's sampled sequences plus the stored data they reference.

    Implements what ``Learner.sample`` (with batching and reanalyse) reads from a
    ``TaskReplay``: ``len``, ``sample``, ``observations``, ``offered_commands``, ``legal``,
    ``text``, ``discount`` and ``config.capacity``.
    """

    def __init__(self, replay: TaskReplay, batch: SequenceBatch) -> None:
        self.batch, self.length = batch, len(replay)
        self.discount = replay.discount  # reanalyse searches with the task's own discount
        self.keys = np.unique(np.concatenate([batch.rows.ravel(), batch.bootstrap_rows.ravel()]))
        self.config = _WholeRows()
        self.legal = _RowTable(self.keys, replay.legal[self.keys % replay.config.capacity])
        stored = replay.observations(self.keys)
        self.text: list[str] = list(stored) if replay.text else []
        self._obs = None if replay.text else stored
        self._commands = replay.offered_commands(self.keys) if replay.text else []

    def __len__(self) -> int:
        return self.length

    def sample(self, batch_size: int, rng: np.random.Generator) -> SequenceBatch:
        if batch_size != self.batch.rows.shape[0]:
            raise ValueError(
                f"slice holds {self.batch.rows.shape[0]} sequences, {batch_size} asked"
            )
        return self.batch

    def _index(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.keys, rows)

    def observations(self, rows: np.ndarray) -> np.ndarray | list[str]:
        if self.text:
            return [self.text[i] for i in self._index(rows).reshape(-1)]
        assert self._obs is not None
        return self._obs[self._index(rows)]

    def offered_commands(self, rows: np.ndarray) -> list[tuple[str, ...]]:
        return [self._commands[i] for i in self._index(rows).reshape(-1)]
