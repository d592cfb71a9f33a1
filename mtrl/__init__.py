"""mtrl: multi-task reinforcement learning and planning with one world model.

The public surface lives here; subpackages follow ``docs/architecture.md``: ``envs`` (tasks and
environments), ``world_models``, ``search`` (native kernels in ``cuda``), ``agents``,
``runtime``, ``eval``. Task specs import eagerly (cheap); names that need torch import on
first use, so ``mtrl tasks`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from mtrl.envs import (
    ActionSpace,
    Modality,
    TaskSpec,
    get_suite,
    get_task,
    list_suites,
    list_tasks,
    resolve_tasks,
)

__version__ = "0.1.0"

_LAZY = {
    # environments
    "EnvSettings": "mtrl.envs.settings",
    "MultiTaskEnv": "mtrl.envs.vector",
    "ActionBatch": "mtrl.envs.vector",
    "TaskSet": "mtrl.envs.batch",
    "ObsBatch": "mtrl.envs.batch",
    "make_env": "mtrl.envs.make",
    # world model
    "WorldModel": "mtrl.world_models",
    "WorldModelConfig": "mtrl.world_models",
    "preset": "mtrl.world_models",
    "DPSStages": "mtrl.world_models",
    "UnrolledBatch": "mtrl.world_models",
    "SequenceObs": "mtrl.world_models",
    "Actions": "mtrl.world_models",
    "Losses": "mtrl.world_models",
    "LatentState": "mtrl.world_models",
    "Prediction": "mtrl.world_models",
    # search
    "search": "mtrl.search",
    "sampled_search": "mtrl.search",
    "SearchConfig": "mtrl.search",
    "RootInput": "mtrl.search",
    "ModelOutput": "mtrl.search",
    "SearchOutput": "mtrl.search",
    "GraphedSearch": "mtrl.search",
    # agent
    "GradientConfig": "mtrl.agents.gradients",
    "MultiTaskUpdate": "mtrl.agents.gradients",
    "conflict_metrics": "mtrl.agents.gradients",
    "ActingConfig": "mtrl.agents.acting",
    "BatchedActor": "mtrl.agents.acting",
    "ReplayConfig": "mtrl.agents.replay",
    "TaskReplay": "mtrl.agents.replay",
    "LearnerConfig": "mtrl.agents.learner",
    "Learner": "mtrl.agents.learner",
    "DpsController": "mtrl.agents.dps_controller",
    "DpsSchedule": "mtrl.agents.dps_controller",
    "evaluate": "mtrl.agents.evaluate",
    # Ray runtime
    "RunConfig": "mtrl.runtime",
    "Resources": "mtrl.runtime",
    "Driver": "mtrl.runtime",
    "RunResult": "mtrl.runtime",
    "train_local": "mtrl.runtime",
    "CheckpointError": "mtrl.runtime",
    "read_checkpoint": "mtrl.runtime",
    "latest_checkpoint": "mtrl.runtime",
    "RunLost": "mtrl.runtime.results",
    "merge": "mtrl.runtime.merge",
    "MergeConfig": "mtrl.runtime.merge",
    # evaluation and monitoring
    "evaluate_checkpoint": "mtrl.eval.run",
    "EvalOptions": "mtrl.eval.run",
    "load_checkpoint": "mtrl.eval.checkpoint",
    "write_layout": "mtrl.eval.tensorboard",
    "aggregate_scalars": "mtrl.eval.metrics",
    "load_baselines": "mtrl.eval.baselines",
}

__all__ = [
    "ActionSpace",
    "Modality",
    "TaskSpec",
    "__version__",
    "get_suite",
    "get_task",
    "list_suites",
    "list_tasks",
    "resolve_tasks",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mtrl' has no attribute {name!r}")
