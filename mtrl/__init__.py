"""mtrl: multi-task reinforcement learning and planning with one world model.

The public surface lives here; subpackages follow ``ARCHITECTURE.md``:
``envs`` (tasks and environments), ``world_models``, ``search`` (with native kernels in
``cuda``), ``agents``, ``runtime``, ``eval``.
"""

from mtrl.envs import (
    ActionSpace,
    Modality,
    TaskSpec,
    get_suite,
    get_task,
    list_suites,
    list_tasks,
)

__version__ = "0.1.0"

__all__ = [
    "ActionSpace",
    "Modality",
    "TaskSpec",
    "__version__",
    "get_suite",
    "get_task",
    "list_suites",
    "list_tasks",
]
