"""Which entries of the world model's tensors belong to which task.

Several tensors hold one slice per task: rows of a task-embedding table, one stacked MLP per
vector task, rows of the discrete-action table, one linear per continuous task, per-task head
weights. Their positions depend on the whole task set (a task's slot among the vector tasks,
its offset in the action table, the padded width of observations and actions), so a tensor
cannot be copied to another task set by position. Every module that holds such a tensor
declares it with a ``task_parts`` method; ``WorldModel.task_layout`` collects the
declarations under state-dict keys. Fine-tuning (``mtrl.runtime.finetune``) moves each task's
part from the checkpoint's layout to the new model's.

A part is a ``TaskIndex``: one tuple of indices per leading dimension of the tensor (trailing
dimensions are taken whole). Entries a task does not use (zero-padded inputs, masked outputs)
are in no task's part.
"""

from __future__ import annotations

import torch
from torch import nn

TaskIndex = tuple[tuple[int, ...], ...]
TaskParts = dict[str, dict[int, TaskIndex]]  # parameter name -> task id -> its entries


def span(start: int, count: int = 1) -> tuple[int, ...]:
    return tuple(range(start, start + count))


def task_rows(num_tasks: int, *names: str) -> TaskParts:
    """Tensors whose dimension 0 is the task id (one row per task)."""
    return {name: {t: (span(t),) for t in range(num_tasks)} for name in names}


def collect(model: nn.Module) -> TaskParts:
    """The declarations of every submodule with ``task_parts``, keyed like ``state_dict``.

    A submodule reached twice (a shared one) is declared under the first name, as in
    ``state_dict``; every declared name must be a state-dict entry.
    """
    layout: TaskParts = {}
    keys = set(model.state_dict())
    for prefix, module in model.named_modules():
        declare = getattr(module, "task_parts", None)
        if declare is None:
            continue
        for name, parts in declare().items():
            key = f"{prefix}.{name}" if prefix else name
            if key not in keys:
                raise ValueError(f"{type(module).__name__} declares {key!r}, not a state entry")
            layout[key] = parts
    return layout


def grid(index: TaskIndex) -> tuple[torch.Tensor, ...]:
    """Advanced-index tensors selecting the cross product of ``index``'s per-dim indices."""
    dims = [torch.tensor(i, dtype=torch.int64) for i in index]
    n = len(dims)
    return tuple(d.view([-1 if j == k else 1 for j in range(n)]) for k, d in enumerate(dims))


def part(tensor: torch.Tensor, index: TaskIndex) -> torch.Tensor:
    """One task's entries of ``tensor`` (a copy), shaped [len(index[0]), ..., *trailing]."""
    return tensor[grid(index)]
