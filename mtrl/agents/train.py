"""A single-machine training loop (the Ray runtime replaces this loop, not its parts).

One iteration: one batched env step of every environment (acting with the joint search),
then ``updates_per_step`` learner updates once replay holds ``warmup_env_steps`` steps.
Every ``eval_every`` env steps: evaluation episodes of every task with the same acting path
(temperature 0), progress reported to the DPS controller, which may advance the stage.
Metrics go to ``log`` as plain dicts; checkpoints (safe to load with ``weights_only=True``)
are written atomically into ``run_dir``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtrl.agents.acting import ActingConfig, BatchedActor
from mtrl.agents.batching import TaskSample, start_row_priorities
from mtrl.agents.collect import Collector
from mtrl.agents.dps_controller import DpsController, DpsSchedule
from mtrl.agents.evaluate import evaluate, mean_returns
from mtrl.agents.learner import Learner, LearnerConfig
from mtrl.agents.replay import ReplayConfig, TaskReplay
from mtrl.envs.registry import resolve_tasks
from mtrl.envs.settings import EnvSettings
from mtrl.envs.vector import MultiTaskEnv
from mtrl.world_models import WorldModel, preset

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything one local run needs; every field has the value used unless overridden."""

    tasks: tuple[str, ...] = (
        "classic/CartPole",
        "dmc/cartpole-balance",
        "text/tw-coin_collector-l1",
    )
    envs_per_task: int = 2
    env_steps: int = 20_000  # agent steps over all environments
    model_preset: str = "tiny"
    # The tiny preset's value support (h(x) in [-10, 10]) caps values near 120, below the
    # discounted returns of CartPole (~333) and DMC (~1,300): widen it for real training.
    model_overrides: tuple[tuple[str, Any], ...] = (("support_size", 50),)
    acting: ActingConfig = field(default_factory=ActingConfig)
    replay: ReplayConfig = field(default_factory=lambda: ReplayConfig(capacity=50_000))
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(lr=1e-3))
    dps: DpsSchedule = field(default_factory=DpsSchedule)
    warmup_env_steps: int = 500
    updates_per_step: int = 1  # learner updates per batched env step (after warm-up)
    # (fraction of the budget, temperature) pairs: the first whose fraction is not passed.
    temperatures: tuple[tuple[float, float], ...] = ((0.5, 1.0), (0.75, 0.5), (1.0, 0.25))
    eval_every: int = 5_000  # env steps; 0 evaluates only at the end
    eval_episodes: int = 4  # per task; 0 turns evaluation off
    eval_at_start: bool = True  # also evaluate the untrained model (env step 0)
    seed: int = 0
    run_dir: str = ""  # "" writes nothing
    checkpoint_every: int = 0  # env steps; 0: only at the end (with run_dir)
    log_every: int = 50  # learner updates between training-metric logs
    max_seconds: float = 0.0  # wall-clock budget of the loop (0: none); ends with an evaluation
    targets: tuple[tuple[str, float], ...] = ()  # (task, return) overriding TaskSpec.target_score

    def temperature(self, progress: float) -> float:
        return next(
            (t for until, t in self.temperatures if progress <= until), self.temperatures[-1][1]
        )


@dataclass
class TrainResult:
    env_steps: int
    updates: int
    evaluations: list[dict[str, Any]]  # {"env_steps", "updates", "returns": {task: mean}}
    train_returns: dict[str, list[float]]
    # Every training episode in the order it ended: (seconds since start, task, return).
    train_episodes: list[tuple[float, str, float]]
    last_metrics: dict[str, float]
    seconds: float


class LocalTrainer:
    def __init__(self, config: TrainConfig, settings: EnvSettings | None = None) -> None:
        self.config = config
        run_tasks = {spec.id for spec in resolve_tasks(config.tasks)}
        unknown = [task for task, _ in config.targets if task not in run_tasks]
        if unknown:
            raise ValueError(f"targets for tasks not in this run: {unknown}")
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.settings = settings or EnvSettings()
        self.env = MultiTaskEnv(
            list(config.tasks), config.envs_per_task, self.settings, config.seed
        )
        self.tasks = self.env.tasks
        self.model = WorldModel(
            self.tasks, preset(config.model_preset, **dict(config.model_overrides))
        )
        self.actor = BatchedActor(self.model, self.tasks, config.acting)
        self.discounts = config.replay.discounts(self.tasks.specs)
        replay = dataclasses.replace(config.replay, sampled_actions=config.acting.sampled_actions)
        self.replays = {t: TaskReplay(self.tasks[t], replay) for t in range(len(self.tasks))}
        self.collector = Collector(self.env, self.actor, self.replays, self.discounts)
        self.learner = Learner(
            self.model, self.tasks, config.learner, config.acting.sampled_actions
        )
        targets = {spec.id: spec.target_score for spec in self.tasks.specs}
        targets.update(dict(config.targets))
        self.dps = DpsController(self.tasks.names, targets, config.dps)
        self.evaluations: list[dict[str, Any]] = []
        self.started = time.perf_counter()
        self.train_returns: dict[str, list[float]] = {name: [] for name in self.tasks.names}
        self.train_episodes: list[tuple[float, str, float]] = []

    def active(self) -> set[int]:
        """Tasks still collected."""
        return {self.tasks.index(name) for name in self.dps.active_tasks}

    def training(self) -> set[int]:
        """Tasks the learner still trains on (solved ones may stay until the stage switch)."""
        return {self.tasks.index(name) for name in self.dps.training_tasks}

    def run(self, log: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
        config, start = self.config, time.perf_counter()
        metrics: dict[str, float] = {}
        next_checkpoint = 0
        next_eval = 0 if config.eval_at_start else config.eval_every
        while (
            self.collector.env_steps < config.env_steps
            and not self.dps.all_solved
            and not (config.max_seconds and time.perf_counter() - start > config.max_seconds)
        ):
            steps = self.collector.env_steps
            if config.eval_every and steps >= next_eval:  # 0: only at the end
                self.evaluate(log)
                next_eval += config.eval_every
                if self.dps.all_solved:  # nothing left to collect or train
                    break
            if config.checkpoint_every and steps >= next_checkpoint:
                next_checkpoint += config.checkpoint_every
                if steps:
                    self.save()
            temperature = config.temperature(steps / config.env_steps)
            for end in self.collector.collect(1, temperature, self.active(), config.seed):
                self.record_episode(self.tasks[end.task_id].id, end.episode_return)
            if self.collector.env_steps >= config.warmup_env_steps:
                for _ in range(config.updates_per_step):
                    metrics = self.train_step()
            if log and metrics and self.learner.updates % config.log_every == 0:
                log({**metrics, "env_steps": float(self.collector.env_steps)})
        if not self.evaluations or self.evaluations[-1]["env_steps"] != self.collector.env_steps:
            self.evaluate(log)
        if config.run_dir:
            self.save()
        return TrainResult(
            self.collector.env_steps,
            self.learner.updates,
            self.evaluations,
            self.train_returns,
            self.train_episodes,
            metrics,
            time.perf_counter() - start,
        )

    def record_episode(self, task: str, episode_return: float) -> None:
        self.train_returns[task].append(episode_return)
        self.train_episodes.append((time.perf_counter() - self.started, task, episode_return))

    def train_step(self) -> dict[str, float]:
        replays = {t: self.replays[t] for t in self.training() if len(self.replays[t])}
        samples = self.learner.draw(replays, self.rng)
        metrics = self.learner.train_step(self.learner.assemble(samples, actor=self.actor))
        if self.config.replay.priority_exponent:
            self.write_priorities(samples, metrics["priorities"])  # type: ignore[arg-type]
        return {k: v for k, v in metrics.items() if isinstance(v, float)}

    def write_priorities(self, samples: list[TaskSample], priorities: torch.Tensor) -> None:
        """Each sampled sequence's start row gets its new priority (rows in batch order)."""
        for sample, rows, values in start_row_priorities(samples, priorities):
            sample.replay.set_priorities(rows, values)

    def evaluate(self, log: Callable[[dict[str, float]], None] | None = None) -> None:
        if not self.config.eval_episodes:  # evaluation turned off
            return
        episodes = evaluate(
            self.actor,
            self.config.eval_episodes,
            self.discounts,
            self.settings,
            seed=10_000 + 97 * len(self.evaluations),
        )
        returns = mean_returns(episodes)
        updates = self.learner.updates
        for task, value in returns.items():
            if not math.isnan(value):
                self.dps.report_evaluation(task, value, updates)
        if self.dps.maybe_advance(updates):
            self.learner.set_stage(self.dps.stage)
        record = {
            "env_steps": self.collector.env_steps,
            "updates": updates,
            "returns": returns,
            "episodes": episodes,
            "solved": sorted(self.dps.solved),
            "seconds": time.perf_counter() - self.started,
        }
        self.evaluations.append(record)
        if log:
            log(
                {
                    **{f"eval/{t}/return": r for t, r in returns.items()},
                    **self.dps.metrics(),
                    "env_steps": float(self.collector.env_steps),
                }
            )

    def checkpoint(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "tasks": list(self.tasks.names),
            "config": json.dumps(
                {
                    **dataclasses.asdict(self.config),
                    "env_settings": dataclasses.asdict(self.settings),
                },
                default=str,
            ),
            "model": self.model.checkpoint(),
            "learner": self.learner.state_dict(),
            "dps": self.dps.state_dict(),
            "env_steps": self.collector.env_steps,
            "torch_rng": torch.get_rng_state(),
        }

    def save(self) -> Path:
        """Write ``run_dir/checkpoint.pt`` atomically (temp file, then rename)."""
        folder = Path(self.config.run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "checkpoint.pt"
        temp = path.with_suffix(".pt.tmp")
        torch.save(self.checkpoint(), temp)
        os.replace(temp, path)
        return path

    def load(self, path: str | Path) -> None:
        """Restore a checkpoint of this same task set; a clear error names any mismatch."""
        try:
            state = torch.load(path, weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as error:
            raise ValueError(
                f"checkpoint {path} is corrupt or not an mtrl checkpoint: {error}"
            ) from None
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(
                f"checkpoint {path} has version {state.get('version')}, "
                f"expected {CHECKPOINT_VERSION}"
            )
        if state["tasks"] != list(self.tasks.names):
            raise ValueError(
                f"checkpoint {path} was trained on {state['tasks']}, "
                f"this run has {list(self.tasks.names)}"
            )
        self.model.load_checkpoint(state["model"])
        self.learner.load_state_dict(state["learner"])
        self.dps.load_state_dict(state["dps"])
        self.collector.env_steps = int(state["env_steps"])
        torch.set_rng_state(state["torch_rng"])


def train_local(
    config: TrainConfig,
    log: Callable[[dict[str, float]], None] | None = None,
    settings: EnvSettings | None = None,
) -> TrainResult:
    trainer = LocalTrainer(config, settings)
    try:
        return trainer.run(log)
    finally:
        trainer.env.close()
