"""The driver loop: keeps workers collecting and the learner learning at a target ratio.

Every rollout worker has one ``collect`` call in flight, the learner one ``train`` call;
``ray.wait`` hands back whichever finishes. Back-pressure: the learner is only asked for
updates while it is below ``replay_ratio * (env_steps - warmup) + slack``, and workers pause
while it lags that target by more than ``slack``. After each learner call the driver puts the
new weights in the object store once (versioned by the update count) and every search server
loads them; a new learner call waits for the servers when they would trail by more than
``max_weight_lag`` updates. Checkpoints every ``checkpoint_minutes``, at the end and on SIGTERM.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import torch

from mtrl.agents.dps_controller import DpsController
from mtrl.agents.train import CHECKPOINT_VERSION
from mtrl.eval.tensorboard import aggregate_scalars, write_layout
from mtrl.runtime import checkpoint as ckpt
from mtrl.runtime.config import RunConfig, to_json
from mtrl.runtime.metrics import MetricsWriter, Progress
from mtrl.runtime.topology import create_actors, kill_all, resolve_run_tasks
from mtrl.world_models import WorldModel, preset

log = logging.getLogger(__name__)
Hook = Callable[["Driver"], None]


@dataclass
class RunResult:
    env_steps: int
    updates: int
    run_dir: Path
    checkpoints: list[Path]
    evaluations: list[dict[str, float]]
    worker_pids: dict[int, set[int]]
    seconds: float
    stopped_by: str = ""


@dataclass
class _Rates:
    """Counts since the last report, turned into per-second rates."""

    since: float = field(default_factory=time.perf_counter)
    counts: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.counts[name] = self.counts.get(name, 0.0) + value

    def take(self) -> dict[str, float]:
        now = time.perf_counter()
        seconds = max(now - self.since, 1e-9)
        rates = {f"{k}_per_s": v / seconds for k, v in self.counts.items()}
        self.since, self.counts = now, {}
        return rates


class Driver:
    def __init__(self, config: RunConfig, resume: str = "", hooks: tuple[Hook, ...] = ()):
        self.config, self.hooks = config, hooks
        self.run_dir = Path(config.run_dir)
        state, restore_from = self._resume_state(resume)
        self.tasks = resolve_run_tasks(config)
        self.names = list(self.tasks.names)
        self.model_config = preset(config.model_preset, **dict(config.model_overrides))
        if state is not None:
            ckpt.check_compatible(Path(restore_from), state, self.names, self._model_dict())
        self.dps = self._dps()
        self.env_steps = self.updates = self.episodes = 0
        self.actors = create_actors(config, self.tasks, self.model_config, restore_from)
        if state is not None:
            self._load(state)
        elif config.init_from:
            self._init_from(Path(config.init_from))
        self.writer = MetricsWriter(self.run_dir, self.env_steps if state is not None else None)
        self.progress = Progress(config.env_steps, tuple(self.names))
        self.evaluations: list[dict[str, float]] = []
        self.checkpoints: list[Path] = []
        self.worker_pids: dict[int, set[int]] = {i: set() for i in range(config.num_workers)}
        self.stop_reason = ""
        write_layout(self.run_dir, self.names)  # TensorBoard's custom-scalars layout

    # ---- setup ----

    def _resume_state(self, resume: str) -> tuple[dict[str, Any] | None, str]:
        if not resume:
            existing = ckpt.latest_checkpoint(self.run_dir)
            if existing is not None:
                raise ckpt.CheckpointError(
                    f"{self.run_dir} already holds checkpoints ({existing.name}); "
                    f"pass --resume {self.run_dir} to continue it, or choose another run_dir"
                )
            return None, ""
        path = ckpt.resolve_resume(resume)
        return ckpt.read_checkpoint(path), str(path)

    def _model_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self.model_config)

    def _dps(self) -> DpsController:
        run = set(self.names)
        unknown = [task for task, _ in self.config.targets if task not in run]
        if unknown:
            raise ValueError(f"targets for tasks not in this run: {unknown}")
        targets = {spec.id: spec.target_score for spec in self.tasks.specs}
        targets.update(dict(self.config.targets))
        return DpsController(self.names, targets, self.config.dps)

    def _load(self, state: dict[str, Any]) -> None:
        counters = state["counters"]
        self.env_steps, self.updates = int(counters["env_steps"]), int(counters["updates"])
        self.episodes = int(counters.get("episodes", 0))
        self.dps.load_state_dict(state["dps"])
        learner_state = {k: state[k] for k in ("model", "learner", "numpy_rng", "torch_rng")}
        ray.get(self.actors.learner.load(ray.put(learner_state)))
        torch.set_rng_state(state["driver_torch_rng"])
        log.info("resumed at %d env steps, %d updates", self.env_steps, self.updates)

    def _init_from(self, path: Path) -> None:
        state = ckpt.read_checkpoint(path)
        model = WorldModel(self.tasks, self.model_config)
        weights, report = ckpt.finetune_state(state, model)
        ray.get(self.actors.learner.load_weights(ray.put(weights)))
        log.info(
            "fine-tuning from %s: %d tensors copied, %d mapped by task, %d fresh",
            path,
            len(report["copied"]),
            len(report["by_task"]),
            len(report["fresh"]),
        )

    # ---- the loop ----

    def run(self) -> RunResult:
        config, started = self.config, time.perf_counter()
        previous = self._install_sigterm()
        self.version, self.acked = -1, -1
        self.weights_ref, self.acks = None, []
        self._broadcast()
        collecting: dict[Any, int] = {}
        training: Any = None
        evaluating: Any = None
        rates, last_log, last_ckpt = _Rates(), time.perf_counter(), time.perf_counter()
        next_eval = (
            (self.env_steps // config.eval_every + 1) * config.eval_every
            if config.eval_every
            else math.inf
        )
        try:
            while not self._done():
                for index in range(config.num_workers):
                    if index not in collecting.values() and self._may_collect():
                        collecting[self._collect(index)] = index
                if training is None and self._may_train():
                    training = self._train()
                if evaluating is None and self.env_steps >= next_eval and config.eval_episodes:
                    evaluating = self._evaluate()
                    next_eval += config.eval_every
                pending = [
                    *collecting,
                    *([training] if training else []),
                    *([evaluating] if evaluating else []),
                ]
                ready, _ = ray.wait(pending, num_returns=1, timeout=1.0)
                for ref in ready:
                    if ref in collecting:
                        self._collected(ray.get(ref), collecting.pop(ref), rates)
                    elif ref == training:
                        training = None
                        self._trained(ray.get(ref), rates)
                    else:
                        evaluating = None
                        self._evaluated(ray.get(ref))
                now = time.perf_counter()
                if now - last_log >= config.log_every_s:
                    self._report(rates.take())
                    last_log = now
                if now - last_ckpt >= 60 * config.checkpoint_minutes:
                    self.save()
                    last_ckpt = now
                for hook in self.hooks:
                    hook(self)
            ray.get([*collecting, *([training] if training else [])])
            if evaluating is not None:
                self._evaluated(ray.get(evaluating))
            elif not self.stop_reason and config.eval_episodes > 0:
                self._evaluated(ray.get(self._evaluate()))
            self._report(rates.take())
            self.save()
        finally:
            self.writer.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return RunResult(
            self.env_steps,
            self.updates,
            self.run_dir,
            self.checkpoints,
            self.evaluations,
            self.worker_pids,
            time.perf_counter() - started,
            self.stop_reason,
        )

    def _done(self) -> bool:
        return bool(
            self.stop_reason or self.env_steps >= self.config.env_steps or self.dps.all_solved
        )

    def _target_updates(self) -> float:
        return self.config.replay_ratio * max(0, self.env_steps - self.config.warmup_env_steps)

    def _may_collect(self) -> bool:
        return self.updates >= self._target_updates() - self.config.replay_ratio_slack

    def _may_train(self) -> bool:
        if self.env_steps < self.config.warmup_env_steps or self.config.replay_ratio <= 0:
            return False
        return self.updates < self._target_updates() + self.config.replay_ratio_slack

    def _active(self) -> list[int]:
        return [self.tasks.index(name) for name in self.dps.active_tasks]

    def _training(self) -> list[int]:
        return [self.tasks.index(name) for name in self.dps.training_tasks]

    def _collect(self, index: int) -> Any:
        config = self.config
        temperature = config.temperature(self.env_steps / config.env_steps)
        seed = config.seed * 7_919 + self.env_steps + index
        worker = self.actors.workers[index]
        return worker.collect.remote(config.steps_per_call, temperature, self._active(), seed)

    def _collected(self, result: dict[str, Any], index: int, rates: _Rates) -> None:
        self.env_steps += result["env_steps"]
        pids = self.worker_pids[index]
        if pids and result["pid"] not in pids:
            log.warning("rollout worker %d was restarted (pid %d)", index, result["pid"])
        pids.add(result["pid"])
        rates.add("env_steps", result["env_steps"])
        rates.add("searches", result["searches"])
        for task, episode_return, length in result["episodes"]:
            name = self.names[task]
            self.episodes += 1
            self.progress.episode(name, episode_return)
            self.writer.scalar(f"{name}/return", episode_return, self.env_steps)
            self.writer.scalar(f"{name}/episode_length", length, self.env_steps)

    def _train(self) -> Any:
        updates = self.config.updates_per_call
        if self.updates + updates - self.acked > self.config.max_weight_lag:
            ray.get(self.acks)  # bounded staleness: the servers catch up first
            self.acked = self.version
        return self.actors.learner.train(updates, self._training())

    def _trained(self, result: dict[str, Any], rates: _Rates) -> None:
        self.updates = int(result["updates"])
        rates.add("updates", self.config.updates_per_call)
        rates.add("samples", result["samples"])
        self._broadcast()
        step = self.env_steps
        for key, value in result["scalars"].items():
            self.writer.scalar(_loss_tag(key), value, step)
        every = self.config.conflict_image_every
        if (
            result["cosine"] is not None
            and every
            and self.updates % every < self.config.updates_per_call
        ):
            self.writer.conflict_matrix(result["cosine"], step)
        load = result["expert_load"]
        if load is not None:
            for task, row in enumerate(load):
                if row.sum() > 0:
                    for k, share in enumerate(row):
                        self.writer.scalar(
                            f"{self.names[task]}/expert_load/{k}", float(share), step
                        )

    def _broadcast(self) -> None:
        ready = [a for a in self.acks if ray.wait([a], timeout=0)[0]]
        if ready and len(ready) == len(self.acks):
            self.acked = self.version
        self.version = self.updates
        self.weights_ref = self.actors.learner.weights()
        self.acks = [
            s.set_weights.remote(self.version, self.weights_ref) for s in self.actors.servers
        ]

    def _evaluate(self) -> Any:
        seed, config = 10_000 + 97 * len(self.evaluations), self.config
        return self.actors.evaluator.evaluate.remote(
            self.weights_ref, config.eval_episodes, seed, config.eval_max_steps
        )

    def _evaluated(self, episodes: dict[str, list[float]]) -> None:
        returns = {t: sum(v) / len(v) for t, v in episodes.items() if v}
        for task, value in returns.items():
            self.dps.report_evaluation(task, value, self.updates)
            self.writer.scalar(f"{task}/eval_return", value, self.env_steps)
        if self.dps.maybe_advance(self.updates):
            ray.get(self.actors.learner.set_stage(self.dps.stage))
        self.writer.scalars(aggregate_scalars(returns), self.env_steps)  # HNS etc.
        self.writer.scalar("dps/stage", self.dps.stage, self.env_steps)
        self.writer.scalar("dps/solved_tasks", len(self.dps.solved), self.env_steps)
        self.evaluations.append({"env_steps": self.env_steps, **returns})

    def _report(self, rates: dict[str, float]) -> None:
        for name, value in rates.items():
            self.writer.scalar(f"throughput/{name}", value, self.env_steps)
        self.writer.flush()
        self.progress.show(self.env_steps, self.updates, rates)

    # ---- checkpoints and signals ----

    def save(self) -> Path:
        learner = ray.get(self.actors.learner.state())
        replay: dict[str, Any] = {}
        for part in ray.get(
            [s.snapshot.remote(self.config.replay_snapshot_rows) for s in self.actors.shards]
        ):
            replay.update(part)
        state = {
            "version": CHECKPOINT_VERSION,
            "runtime": "ray",
            "tasks": self.names,
            "task_table": dict(enumerate(self.names)),
            "config": to_json(self.config),
            **learner,
            "dps": self.dps.state_dict(),
            "counters": {
                "env_steps": self.env_steps,
                "updates": self.updates,
                "episodes": self.episodes,
            },
            "driver_torch_rng": torch.get_rng_state(),
            "replay": replay,
        }
        path = ckpt.write_checkpoint(
            self.run_dir, state, self.env_steps, self.config.keep_checkpoints
        )
        self.checkpoints.append(path)
        log.info("checkpoint %s", path)
        return path

    def _install_sigterm(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def stop(signum: int, frame: Any) -> None:
            self.stop_reason = "SIGTERM"  # the loop ends, checkpoints and returns

        return signal.signal(signal.SIGTERM, stop)

    def shutdown(self) -> None:
        kill_all(self.actors)


def _loss_tag(key: str) -> str:
    """Learner metric names -> the run's tag scheme."""
    if key.startswith("loss/task/"):
        return f"loss/{key.removeprefix('loss/task/')}/total"
    if key.startswith("grad/"):
        return "gradients/" + key.removeprefix("grad/")
    return key
