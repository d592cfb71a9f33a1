"""Fine-tuning (``init_from``): a checkpoint's weights mapped onto a model of other tasks.

Every tensor the world model declares per task (``WorldModel.task_layout``: task embeddings,
per-task vector encoders, rows of the action table, continuous-action linears, per-task head
weights or task rows) moves with its task's id: the checkpoint's layout is rebuilt from its own
task list and config, and each task's entries go from their old positions to their new ones.
Tasks new to the checkpoint keep the model's fresh initialisation. Shared tensors are copied
when their shapes match and left fresh otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from mtrl.envs.batch import TaskSet
from mtrl.envs.registry import resolve_tasks
from mtrl.world_models import WorldModel, WorldModelConfig
from mtrl.world_models.task_layout import TaskIndex, TaskParts, grid, part


@dataclass
class _Report:
    copied: list[str] = field(default_factory=list)  # shared tensors taken whole
    by_task: list[str] = field(default_factory=list)  # per-task tensors with a carried part
    fresh: list[str] = field(default_factory=list)  # keys, or "key[task]" parts, left fresh
    carried: set[str] = field(default_factory=set)  # tasks with at least one carried part


def finetune_state(
    state: dict[str, Any], model: WorldModel
) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """The checkpoint's weights mapped onto ``model`` (other tasks, a subset, another order).

    Returns the state dict to load and a report: ``copied`` (shared keys copied), ``by_task``
    (per-task keys with at least one task carried), ``fresh`` (keys left at their fresh
    initialisation, and ``"key[task]"`` for a carried task's part that did not fit, e.g. after
    a change of model size), ``carried_tasks`` (tasks of ``model`` with weights from the
    checkpoint) and ``fresh_tasks`` (the others), both in ``model``'s task order.
    """
    old_tasks = list(state["model"]["tasks"])
    saved: dict[str, torch.Tensor] = state["model"]["state"]
    old_layout = layout_of(old_tasks, state["model"]["config"])
    new_layout = model.task_layout()
    old_id = {name: i for i, name in enumerate(old_tasks)}
    # task id in the model -> its id in the checkpoint, for the tasks in both
    common = {t: old_id[name] for t, name in enumerate(model.tasks.names) if name in old_id}
    out = model.state_dict()
    report = _Report()
    for key, fresh in out.items():
        old = saved.get(key)
        if key in new_layout or key in old_layout:
            # A key per task on one side only (per_task_heads changed) cannot be mapped.
            if old is None or key not in new_layout or key not in old_layout:
                report.fresh.append(key)
                continue
            parts = (old_layout[key], new_layout[key])
            out[key] = _move_parts(key, old, fresh, parts, common, model.tasks.names, report)
        elif old is not None and old.shape == fresh.shape:
            out[key] = old
            report.copied.append(key)
        else:
            report.fresh.append(key)
    names = model.tasks.names
    return out, {
        "copied": report.copied,
        "by_task": report.by_task,
        "fresh": report.fresh,
        "carried_tasks": [n for n in names if n in report.carried],
        "fresh_tasks": [n for n in names if n not in report.carried],
    }


def _move_parts(
    key: str,
    old: torch.Tensor,
    fresh: torch.Tensor,
    parts: tuple[dict[int, TaskIndex], dict[int, TaskIndex]],
    common: dict[int, int],
    names: tuple[str, ...],
    report: _Report,
) -> torch.Tensor:
    """``fresh`` with each common task's entries taken from ``old``; the rest stay fresh."""
    old_parts, new_parts = parts
    result, moved = fresh.clone(), False
    for task, was in common.items():
        if task not in new_parts and was not in old_parts:
            continue  # the task has no entries in this tensor (e.g. a discrete task's cont_w)
        name = names[task]
        if task in new_parts and was in old_parts:
            value, where = part(old, old_parts[was]), grid(new_parts[task])
            if value.shape == result[where].shape:
                result[where] = value.to(result)  # dtype and device of the model
                report.carried.add(name)
                moved = True
                continue
        report.fresh.append(f"{key}[{name}]")
    (report.by_task if moved else report.fresh).append(key)
    return result


def layout_of(tasks: list[str], config: dict[str, Any]) -> TaskParts:
    """The task layout of the model a checkpoint was saved from."""
    try:
        task_set = TaskSet(resolve_tasks(tasks))
        cfg = WorldModelConfig(**config)
    except (TypeError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"cannot fine-tune from a checkpoint of tasks {tasks}: {first}") from None
    return WorldModel.task_layout_of(task_set, cfg)
