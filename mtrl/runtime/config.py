"""The run configuration: one frozen dataclass for both modes, JSON round trip, overrides.

``RunConfig`` is the one config base: the Ray runtime and the single-process mode
(``mtrl.train_local``) run the same driver from it, and checkpoints store it as JSON, so a
checkpoint of either mode resumes in the other. The single-process mode ignores only what is
about Ray (``resources``, placement). Launch scripts subclass it to change defaults;
``--set key=value`` overrides any field, nested ones with dots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mtrl.agents.acting import ActingConfig
from mtrl.agents.dps_controller import DpsSchedule
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.envs.registry import unknown_names
from mtrl.envs.settings import EnvSettings
from mtrl.envs.spec import TaskSpec
from mtrl.overrides import apply_overrides, from_json, to_json

PLACEMENTS = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")  # Ray placement strategies


ROLES = ("worker", "search", "learner", "replay", "evaluator")  # the run's kinds of actor
Custom = tuple[tuple[str, float], ...]  # Ray custom resources: (name, amount) pairs


@dataclass(frozen=True)
class Resources:
    """Ray resources per actor (fractional GPUs allowed, e.g. four search servers on one).

    The ``*_custom`` fields place a role on the nodes that offer those custom resources
    (``ray start --resources='{"rollout": 8}'``), e.g. ``worker_custom=(("rollout", 1),)``
    keeps rollout workers on CPU nodes and off the GPU node. A restarted actor goes to any
    live node that offers them.
    """

    worker_cpus: float = 1.0
    search_cpus: float = 1.0
    search_gpus: float = 0.0
    learner_cpus: float = 1.0
    learner_gpus: float = 0.0
    replay_cpus: float = 0.0  # replay shards mostly wait on calls: no CPU reserved
    evaluator_cpus: float = 0.0  # 0: evaluation shares the machine instead of reserving a core
    evaluator_gpus: float = 0.0
    # torch threads of each learner rank; 0: its learner_cpus. More than its CPUs pays when
    # the learner is the bottleneck (a high replay ratio) and the search server's core idles
    # while it waits for updates (bench/README.md, runtime).
    learner_threads: int = 0
    worker_custom: Custom = ()
    search_custom: Custom = ()
    learner_custom: Custom = ()
    replay_custom: Custom = ()
    evaluator_custom: Custom = ()

    def ray_options(self, role: str) -> dict[str, Any]:
        """Ray actor options of one role (``ROLES``): CPUs, GPUs and custom resources."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
        return {
            "num_cpus": getattr(self, f"{role}_cpus"),
            "num_gpus": getattr(self, f"{role}_gpus", 0.0),  # workers and shards use none
            "resources": dict(getattr(self, f"{role}_custom")),
        }


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
    # Wall-clock budget in seconds (0: none); the run ends at whichever budget comes first,
    # and the temperature schedule follows whichever is further spent.
    max_seconds: float = 0.0
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
    # Ray's task events (the dashboard's and `ray list tasks`' record of every actor call).
    # Off: the GCS keeps each call's events up to a large cap, which made it grow by ~7 MB a
    # minute in a small run (issue 21); turn on to inspect calls while debugging.
    ray_task_events: bool = False
    # Evaluation (fixed seeds, same search as acting, temperature 0) and logging.
    eval_every: int = 5_000  # env steps; 0 evaluates only at the end
    eval_episodes: int = 4  # per task; 0 turns evaluation off
    eval_at_start: bool = False  # also evaluate the untrained model (env step 0)
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

    def task_targets(self, specs: Sequence[TaskSpec]) -> dict[str, float | None]:
        """Each task's solved mark for DPS: its spec's target score, unless ``targets`` names
        it. Targets of registered tasks outside ``specs`` are ignored, so that one launcher's
        list serves any subset of its tasks; names of no registered task are refused."""
        unknown = unknown_names((task for task, _ in self.targets), suites=False)
        if unknown:
            raise ValueError(f"targets for unknown tasks: {unknown} (`mtrl tasks` lists them)")
        run = {spec.id for spec in specs}
        ours = {task: value for task, value in self.targets if task in run}
        return {spec.id: spec.target_score for spec in specs} | ours

    def temperature(self, progress: float) -> float:
        return next(
            (t for until, t in self.temperatures if progress <= until), self.temperatures[-1][1]
        )


# Re-exported: the JSON round trip and overrides live in mtrl.overrides (used by every layer).
__all__ = ["PLACEMENTS", "Resources", "RunConfig", "apply_overrides", "from_json", "to_json"]
