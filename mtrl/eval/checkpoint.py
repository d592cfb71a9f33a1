"""Read a training checkpoint back into what acting needs: tasks, model, search settings.

Works for any checkpoint with the keys every run writes (``mtrl.runtime.checkpoint``):
``version``, ``tasks`` (task ids in task-set order), ``config`` (JSON of the run config with
``acting`` and, optionally, ``replay.discount`` and ``replay.task_discounts``) and ``model``
(``WorldModel.checkpoint()``).
Loaded with ``weights_only=True``; anything missing or unreadable is a ``ValueError`` naming the
problem, so evaluation never falls back to an untrained model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mtrl.agents.acting import ActingConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.envs.batch import TaskSet
from mtrl.envs.registry import get_task
from mtrl.envs.settings import EnvSettings
from mtrl.envs.vector import MultiTaskEnv
from mtrl.overrides import from_json
from mtrl.run_folder import PATTERN, latest_checkpoint
from mtrl.search import SearchConfig
from mtrl.world_models import WorldModel

SUPPORTED_VERSIONS = (1,)
REQUIRED_KEYS = ("version", "tasks", "config", "model")


@dataclass
class LoadedCheckpoint:
    path: Path
    tasks: TaskSet
    model: WorldModel
    acting: ActingConfig
    discount: float  # the value discount of acting for tasks without an override
    task_discounts: tuple[tuple[str, float], ...]  # (task id or suite, discount) overrides
    config: dict[str, Any]
    env_steps: int | None
    settings: EnvSettings  # the run's env settings: evaluation preprocesses like training

    @property
    def discounts(self) -> torch.Tensor:
        """Each task's discount, as training searched with it [num_tasks]."""
        replay = ReplayConfig(discount=self.discount, task_discounts=self.task_discounts)
        return replay.discounts(self.tasks.specs)

    def check_tasks(self, task_ids: list[str]) -> None:
        """A clear error for tasks this checkpoint was not trained on."""
        missing = [t for t in task_ids if t not in self.tasks.names]
        if missing:
            raise ValueError(
                f"checkpoint {self.path} was not trained on {missing}; "
                f"it has: {', '.join(self.tasks.names)}"
            )


def resolve_path(path: Path) -> Path:
    """A checkpoint file, or a run folder: its newest checkpoints/ckpt-*.pt."""
    if not path.is_dir():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {path} (expected checkpoints/{PATTERN})")
    return latest


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, pickle with code objects, not a torch file ...
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"checkpoint {path} is corrupt or not an mtrl checkpoint: {first}"
        ) from None
    if not isinstance(state, dict) or not all(k in state for k in REQUIRED_KEYS):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"checkpoint {path} is not an mtrl checkpoint: needs keys {list(REQUIRED_KEYS)}, "
            f"found {found}"
        )
    if state["version"] not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"checkpoint {path} has version {state['version']}; "
            f"this mtrl reads {SUPPORTED_VERSIONS}"
        )
    return state


def acting_config(config: dict[str, Any]) -> ActingConfig:
    """The stored ``acting`` section as an ``ActingConfig`` (fields absent keep defaults)."""
    acting = dict(config.get("acting") or {})
    search = acting.pop("search", None)
    if search is not None:
        acting["search"] = SearchConfig(**search)
    return ActingConfig(**acting)


def _discount(config: dict[str, Any], acting: ActingConfig) -> float:
    # Training values searches with the replay discount; configs without one use acting's.
    replay = config.get("replay") or {}
    return float(replay.get("discount", acting.discount))


def _task_discounts(config: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    pairs = (config.get("replay") or {}).get("task_discounts") or ()
    return tuple((str(key), float(value)) for key, value in pairs)


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """The model and acting settings of a checkpoint, ready for evaluation (eval mode, CPU)."""
    path = resolve_path(Path(path))
    state = _read(path)
    try:
        config = json.loads(state["config"])
        settings = env_settings(config)
        tasks = run_tasks(state["tasks"], settings)
        acting = acting_config(config)
        model = WorldModel.from_checkpoint(tasks, state["model"])
        task_discounts = _task_discounts(config)
    except (json.JSONDecodeError, TypeError, KeyError, RuntimeError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ValueError(f"checkpoint {path} cannot be rebuilt: {message}") from None
    model.eval()
    counters = state.get("counters") if isinstance(state.get("counters"), dict) else {}
    steps = counters.get("env_steps")
    return LoadedCheckpoint(
        path=path,
        tasks=tasks,
        model=model,
        acting=acting,
        discount=_discount(config, acting),
        task_discounts=task_discounts,
        config=config,
        env_steps=int(steps) if steps is not None else None,
        settings=settings,
    )


def env_settings(config: dict[str, Any]) -> EnvSettings:
    """The run's env settings (``RunConfig.env``); checkpoints from before them used the
    defaults."""
    raw = config.get("env")
    if not raw:
        return EnvSettings()
    return from_json(EnvSettings, json.dumps(raw))  # groups added since take their defaults


def run_tasks(task_ids: list[str], settings: EnvSettings) -> TaskSet:
    """Task specs as the run saw them: settings change specs (frame shapes, command caps), and
    only the environments resolve them, so non-default settings build one env per task."""
    if settings == EnvSettings():
        return TaskSet(tuple(get_task(t) for t in task_ids))
    env = MultiTaskEnv(list(task_ids), 1, settings)
    env.close()
    return env.tasks
