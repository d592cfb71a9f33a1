"""The run configuration of the Ray runtime: one frozen dataclass, JSON round trip, overrides.

``RunConfig`` keeps the single-machine ``TrainConfig``'s field names for what they share
(``tasks``, ``model_preset``, ``model_overrides``, ``acting``, ``replay``, ``learner``, ...),
flat at the top level: checkpoint readers find ``model_preset`` and ``model_overrides`` in the
``config`` JSON without knowing which loop wrote it. Launch scripts subclass it to change
defaults; ``--set key=value`` overrides any field, nested ones with dots.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from mtrl.agents.acting import ActingConfig
from mtrl.agents.dps_controller import DpsSchedule
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.envs.settings import EnvSettings

PLACEMENTS = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")  # Ray placement strategies


@dataclass(frozen=True)
class Resources:
    """Ray resources per actor (fractional GPUs allowed, e.g. four search servers on one)."""

    worker_cpus: float = 1.0
    search_cpus: float = 1.0
    search_gpus: float = 0.0
    learner_cpus: float = 1.0
    learner_gpus: float = 0.0
    replay_cpus: float = 0.0  # replay shards mostly wait on calls: no CPU reserved
    evaluator_cpus: float = 0.0  # 0: evaluation shares the machine instead of reserving a core
    evaluator_gpus: float = 0.0


@dataclass(frozen=True)
class RunConfig:
    """One training run on Ray. Budgets count agent steps over all environments."""

    tasks: tuple[str, ...] = ("classic/CartPole",)
    env_steps: int = 20_000
    envs_per_task: int = 2  # per rollout worker
    model_preset: str = "tiny"
    model_overrides: tuple[tuple[str, Any], ...] = (("support_size", 50),)
    acting: ActingConfig = field(default_factory=ActingConfig)
    replay: ReplayConfig = field(default_factory=lambda: ReplayConfig(capacity=50_000))
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(lr=1e-3))
    dps: DpsSchedule = field(default_factory=DpsSchedule)
    env: EnvSettings = field(default_factory=EnvSettings)
    warmup_env_steps: int = 500
    replay_ratio: float = 0.25  # target learner updates per env step (back-pressure keeps it)
    replay_ratio_slack: int = 20  # updates either side of the target before anyone waits
    temperatures: tuple[tuple[float, float], ...] = ((0.5, 1.0), (0.75, 0.5), (1.0, 0.25))
    targets: tuple[tuple[str, float], ...] = ()  # (task, return) overriding target_score
    seed: int = 0
    # Topology. Each worker runs envs_per_task environments of every task in worker_tasks
    # (empty: all tasks); workers are spread round-robin over the search servers.
    num_workers: int = 1
    worker_tasks: tuple[tuple[str, ...], ...] = ()  # per worker; () gives every worker all tasks
    num_search_servers: int = 1
    num_replay_shards: int = 1  # tasks are split round-robin over the shards
    steps_per_call: int = 8  # batched env steps a worker takes per call (and per replay flush)
    search_window_s: float = 0.002  # a search server waits this long for more workers' roots
    updates_per_call: int = 8  # learner updates per call; weights are broadcast after each
    max_weight_lag: int = 32  # updates the acting weights may trail the learner (staleness)
    # Data-parallel learner ranks (torch.distributed: gloo, NCCL when each rank has a whole
    # GPU). Each samples batch_size / num_learners sequences per update (so num_learners must
    # divide learner.batch_size) and all apply the same all-reduced update; each rank gets
    # resources.learner_cpus/learner_gpus. With more than one, the ranks are placed by one Ray
    # placement group (a bundle per rank) with this strategy, which must be ready within
    # placement_timeout_s (else the run stops with an error naming what could not be placed).
    num_learners: int = 1
    learner_placement: str = "SPREAD"  # PACK, SPREAD, STRICT_PACK or STRICT_SPREAD
    placement_timeout_s: float = 300.0  # room for an autoscaler to add nodes
    resources: Resources = field(default_factory=Resources)
    max_restarts: int = 3  # per restartable actor (workers, search servers, shards, evaluator)
    # Evaluation (fixed seeds, same search as acting, temperature 0) and logging.
    eval_every: int = 5_000  # env steps; 0 evaluates only at the end
    eval_episodes: int = 4  # per task; 0 turns evaluation off
    eval_max_steps: int = 100_000  # batched steps per evaluation; unfinished episodes skipped
    log_every_s: float = 10.0  # progress lines / TensorBoard flushes
    conflict_image_every: int = 200  # learner updates between gradient-conflict images
    # Run folder: TensorBoard events, scalars.csv, checkpoints/ckpt-<env_steps>.pt.
    run_dir: str = "runs/mtrl"
    checkpoint_minutes: float = 10.0
    keep_checkpoints: int = 3
    replay_snapshot_rows: int = 20_000  # newest rows per task kept in a checkpoint
    init_from: str = ""  # a checkpoint to fine-tune from (other task sets allowed)

    def __post_init__(self) -> None:
        checks = {
            "num_workers": self.num_workers >= 1,
            "num_search_servers": 1 <= self.num_search_servers <= self.num_workers,
            "num_replay_shards": self.num_replay_shards >= 1,
            "replay_ratio": self.replay_ratio >= 0,
            "steps_per_call": self.steps_per_call >= 1,
            "updates_per_call": 1 <= self.updates_per_call <= max(self.max_weight_lag, 1),
            "env_steps": self.env_steps >= 1,
            "worker_tasks": len(self.worker_tasks) in (0, self.num_workers),
            "placement_timeout_s": self.placement_timeout_s > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ValueError(f"bad config value(s): {values}")
        self._check_learners()

    def _check_learners(self) -> None:
        count, batch = self.num_learners, self.learner.batch_size
        if count < 1:
            raise ValueError(f"num_learners must be >= 1, got {count}")
        if self.learner_placement not in PLACEMENTS:
            raise ValueError(
                f"unknown learner_placement {self.learner_placement!r}; "
                f"valid: {', '.join(PLACEMENTS)}"
            )
        if batch % count:
            raise ValueError(
                f"num_learners={count} must divide learner.batch_size={batch} "
                "(each learner rank samples batch_size / num_learners sequences)"
            )
        if count > 1 and batch // count < len(self.tasks):
            raise ValueError(
                f"num_learners={count} leaves {batch // count} sequences per rank for "
                f"{len(self.tasks)} tasks: raise learner.batch_size or lower num_learners"
            )

    def temperature(self, progress: float) -> float:
        return next(
            (t for until, t in self.temperatures if progress <= until), self.temperatures[-1][1]
        )


def to_json(config: Any) -> str:
    return json.dumps(dataclasses.asdict(config), default=str)


def from_json(cls: type, text: str) -> Any:
    """Rebuild ``cls`` from ``to_json`` output (lists back to tuples, nested dataclasses)."""
    return _build(cls, json.loads(text))


def _build(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} for {cls.__name__}")
    return cls(**{k: _convert(hints[k], v) for k, v in data.items()})


def _convert(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if is_dataclass(hint) and isinstance(value, dict):
        return _build(hint, value)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return value if value is None else _convert(options[0], value)
    if isinstance(value, list):
        args = typing.get_args(hint)
        inner = args[0] if args and (len(args) == 1 or args[1] is Ellipsis) else Any
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(_convert(a, v) for a, v in zip(args, value, strict=False))
        return tuple(_convert(inner, v) for v in value)
    return value


def apply_overrides(config: Any, pairs: list[str]) -> Any:
    """``["learner.lr=3e-4", "tasks=classic/CartPole,dmc/cartpole-balance"]`` applied in order.

    Scalars parse by the field's type; tuple fields take comma-separated values or JSON
    (``model_overrides=[["support_size",50]]``). Unknown keys raise naming the valid ones.
    """
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"bad override {pair!r}: expected KEY=VALUE, e.g. env_steps=5000")
        config = _set(config, key.split("."), value, key)
    return config


def _set(obj: Any, path: list[str], text: str, key: str) -> Any:
    hints = typing.get_type_hints(type(obj))
    names = [f.name for f in fields(obj)]
    if path[0] not in names:
        raise ValueError(f"unknown config key {key!r}; valid here: {', '.join(names)}")
    current = getattr(obj, path[0])
    if len(path) > 1:
        if not is_dataclass(current):
            raise ValueError(f"unknown config key {key!r}: {path[0]} has no sub-fields")
        return replace(obj, **{path[0]: _set(current, path[1:], text, key)})
    if is_dataclass(current):
        raise ValueError(f"config key {key!r} is a group; set one of its fields")
    return replace(obj, **{path[0]: _parse(hints[path[0]], current, text, key)})


def _parse(hint: Any, current: Any, text: str, key: str) -> Any:
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if isinstance(current, tuple):
            if text.strip().startswith("["):
                return _convert(hint, json.loads(text))
            return tuple(part for part in text.split(",") if part)
        if isinstance(current, (int, float)):
            number = float(text)
            if isinstance(current, int):
                if not number.is_integer():
                    raise ValueError(text)
                return int(number)
            return number
        return text
    except ValueError:
        kind = type(current).__name__
        raise ValueError(f"bad value {key}={text!r}: expected a {kind}") from None
