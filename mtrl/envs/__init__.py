"""Tasks and environments: task specs, suites, adapters and heterogeneous batches."""

from mtrl.envs.registry import get_suite, get_task, list_suites, list_tasks, resolve_tasks
from mtrl.envs.spec import ActionSpace, Modality, TaskSpec

__all__ = [
    "ActionSpace",
    "Modality",
    "TaskSpec",
    "get_suite",
    "get_task",
    "list_suites",
    "list_tasks",
    "resolve_tasks",
]
