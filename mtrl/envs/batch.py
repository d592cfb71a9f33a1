"""Heterogeneous batches: observations of many environments of many tasks, ready for a model.

Rows are environments. Each modality keeps its own dense array plus the rows it belongs to, so
an 18-action Atari game, a 4-command text state and a 6-dim continuous task share one batch.
``task_ids`` index the run's ``TaskSet`` (not a global registry), so models can keep per-task
parameters in a plain table.

Image tasks of different frame shapes (Atari's 3x64x64, MinAtar's Cx10x10 grids) share the one
``image`` array the way vector tasks share ``vector``: each frame is zero-padded at the end of
every axis (channels, rows, columns) to ``TaskSet.max_image_shape``, the element-wise maximum
over the task set's image tasks. A row's own shape is its task's ``obs_shape``, so a consumer
crops ``frame[:c, :h, :w]`` (``crop_image``); the world model keeps one encoder per frame shape.
When every image task shares one shape (every run before MinAtar) nothing is padded and the
arrays are exactly as before. Padding lives in batches only: replay stores each task's frames
at their own shape, so a MinAtar step costs its ~1 KB whatever else the run holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mtrl.envs.base import Step
from mtrl.envs.spec import Modality, TaskSpec


@dataclass(frozen=True)
class TaskSet:
    """The ordered tasks of a run; a task's position is its task id in batches."""

    specs: tuple[TaskSpec, ...]

    def __post_init__(self) -> None:
        ids = [spec.id for spec in self.specs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate tasks in task set: {ids}")
        if not ids:
            raise ValueError("a task set needs at least one task")

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, index: int) -> TaskSpec:
        return self.specs[index]

    def index(self, task_id: str) -> int:
        for i, spec in enumerate(self.specs):
            if spec.id == task_id:
                return i
        raise ValueError(f"task {task_id!r} is not in this task set: {self.names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.id for spec in self.specs)

    @property
    def max_choices(self) -> int:
        """Width of the legal mask: the most discrete actions / offered commands of any task."""
        return max((s.action.n for s in self.specs if not s.action.is_continuous), default=0)

    @property
    def max_action_dim(self) -> int:
        return max((s.action.dim for s in self.specs if s.action.is_continuous), default=0)

    @property
    def max_vector_dim(self) -> int:
        return max((s.obs_shape[0] for s in self.specs if s.modality == Modality.VECTOR), default=0)

    @property
    def max_image_shape(self) -> tuple[int, int, int]:
        """Frame shape of the batch's ``image`` array: the element-wise max over image tasks."""
        shapes = [s.obs_shape for s in self.specs if s.modality == Modality.IMAGE]
        if not shapes:
            return (0, 0, 0)
        c, h, w = (max(axis) for axis in zip(*shapes, strict=True))
        return (c, h, w)


@dataclass(frozen=True)
class ObsBatch:
    """Observations of E environments, grouped by modality."""

    task_ids: np.ndarray  # [E] int64, index into the TaskSet
    legal: np.ndarray  # [E, A] bool, A = TaskSet.max_choices; continuous rows are all False
    image: np.ndarray  # [Ei, C, H, W] uint8, zero-padded to TaskSet.max_image_shape
    image_rows: np.ndarray  # [Ei] int64
    vector: np.ndarray  # [Ev, D] float32, zero-padded to TaskSet.max_vector_dim
    vector_rows: np.ndarray  # [Ev] int64
    vector_dims: np.ndarray  # [Ev] int64, true observation size of each row
    text: tuple[str, ...]  # [Et]
    text_rows: np.ndarray  # [Et] int64
    commands: tuple[tuple[str, ...], ...]  # [Et] offered commands, in action-index order

    @property
    def size(self) -> int:
        return int(self.task_ids.shape[0])


def _rows(rows: list[int]) -> np.ndarray:
    return np.asarray(rows, dtype=np.int64)


def stack_observations(tasks: TaskSet, task_ids: Sequence[int], steps: Sequence[Step]) -> ObsBatch:
    """Group per-env steps into one ``ObsBatch``; row ``i`` is ``steps[i]`` of ``task_ids[i]``."""
    if len(task_ids) != len(steps):
        raise ValueError(f"{len(task_ids)} task ids for {len(steps)} steps")
    legal = np.zeros((len(steps), tasks.max_choices), dtype=bool)
    for row, step in enumerate(steps):
        legal[row, : step.legal.shape[0]] = step.legal
    modalities = [tasks[task_id].modality for task_id in task_ids]
    image_rows = [row for row, m in enumerate(modalities) if m == Modality.IMAGE]
    vector_rows = [row for row, m in enumerate(modalities) if m == Modality.VECTOR]
    text_rows = [row for row, m in enumerate(modalities) if m == Modality.TEXT]
    return ObsBatch(
        task_ids=np.asarray(task_ids, dtype=np.int64),
        legal=legal,
        image=pad_images([steps[r].obs for r in image_rows], tasks.max_image_shape),
        image_rows=_rows(image_rows),
        vector=_pad_vectors([steps[r].obs for r in vector_rows], tasks.max_vector_dim),
        vector_rows=_rows(vector_rows),
        vector_dims=_rows([len(steps[r].obs) for r in vector_rows]),
        text=tuple(str(steps[r].obs) for r in text_rows),
        text_rows=_rows(text_rows),
        commands=tuple(steps[r].commands or () for r in text_rows),
    )


def pad_images(frames: Sequence[np.ndarray] | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Frames ``[C, H, W]`` (a list, or an array ``[N, C', H', W']``) as one uint8 array
    ``[N, *shape]``, each zero-padded at the end of every axis; ``shape`` must cover them all."""
    if len(frames) == 0:
        return np.zeros((0, 0, 0, 0), dtype=np.uint8)
    if all(frame.shape == tuple(shape) for frame in frames):  # one shape: nothing to pad
        return np.stack(frames).astype(np.uint8, copy=False)
    out = np.zeros((len(frames), *shape), dtype=np.uint8)
    for row, frame in enumerate(frames):
        if any(n > m for n, m in zip(frame.shape, shape, strict=True)):
            raise ValueError(f"a {frame.shape} frame does not fit the batch's {tuple(shape)}")
        out[(row, *(slice(n) for n in frame.shape))] = frame
    return out


def crop_image(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A padded frame ``[C', H', W']`` cut back to its task's ``shape`` (a view)."""
    return frame[tuple(slice(n) for n in shape)]


def _pad_vectors(vectors: list, width: int) -> np.ndarray:
    out = np.zeros((len(vectors), width), dtype=np.float32)
    for row, vector in enumerate(vectors):
        out[row, : len(vector)] = vector
    return out
