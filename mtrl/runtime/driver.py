"""The training loop of every run: keeps workers collecting and the learner learning at a
target ratio. The one implementation of the run's rules (task sets, DPS hand-off, evaluation
seeds, temperatures, counters, metric names, checkpoint contents; the pacing and evaluation
schedule are ``mtrl.runtime.pace``), for both modes: the actors run on Ray, or in this process
(``inline=True``, the single-process mode that ``mtrl.train_local`` and ``bench/learning.py
--inline`` use; see ``mtrl.runtime.calls``).

Every rollout worker has one ``collect`` call in flight, the learner one ``train`` call;
``ray.wait`` hands back whichever finishes, and ``Pace`` says who may start another. After each
learner call the driver puts the new weights in the object store once (versioned by the update
count) and every search server loads them; a new learner call waits for the servers when they
would trail by more than ``max_weight_lag`` updates. Checkpoints every ``checkpoint_minutes``,
at the end and on SIGTERM.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mtrl.agents.dps_controller import DpsController
from mtrl.eval.tensorboard import aggregate_scalars, write_layout
from mtrl.runtime import calls
from mtrl.runtime import checkpoint as ckpt
from mtrl.runtime.config import RunConfig, to_json
from mtrl.runtime.finetune import finetune_state
from mtrl.runtime.metrics import MetricsWriter, Progress, Rates
from mtrl.runtime.pace import Pace
from mtrl.runtime.results import (
    TRAIN_EPISODES_KEPT,
    RunLost,
    RunResult,
    lost_message,
    write_result,
)
from mtrl.runtime.topology import create_actors, kill_all, resolve_run_tasks, role_of
from mtrl.world_models import WorldModel, preset

log = logging.getLogger(__name__)
Hook = Callable[["Driver"], None]


class Driver:
    def __init__(
        self,
        config: RunConfig,
        resume: str = "",
        hooks: tuple[Hook, ...] = (),
        inline: bool = False,
    ) -> None:
        self.config, self.hooks, self.inline = config, hooks, inline
        self.pace = Pace(config)
        self.run_dir = Path(config.run_dir)
        state, restore_from = self._resume_state(resume)
        self.tasks = resolve_run_tasks(config)
        self.names = list(self.tasks.names)
        self.model_config = preset(config.model_preset, **dict(config.model_overrides))
        if state is not None:
            ckpt.check_compatible(Path(restore_from), state, self.names, self._model_dict())
        self.dps = self._dps()
        self.env_steps = self.updates = self.episodes = self.evaluated = 0
        self.evaluations: list[dict[str, Any]] = []
        # Bounded: a text game ends ~1,000 episodes a minute, and runs last days (bench/soak.py).
        self.train_episodes: deque[ckpt.TrainEpisode] = deque(maxlen=TRAIN_EPISODES_KEPT)
        self.seconds_before = 0.0  # wall time of the run's earlier sessions (resumed runs)
        self.evaluating_at = (0, 0)  # env steps and updates of the weights under evaluation
        self.actors = create_actors(config, self.tasks, self.model_config, restore_from, inline)
        if state is not None:
            self._load(state)
        elif config.init_from:
            self._init_from(Path(config.init_from))
        self.writer = MetricsWriter(self.run_dir, self.env_steps if state is not None else None)
        self.progress = Progress(config.env_steps, tuple(self.names))
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
        targets = self.config.task_targets(self.tasks.specs)
        return DpsController(self.names, targets, self.config.dps)

    def _load(self, state: dict[str, Any]) -> None:
        counters = state["counters"]
        self.env_steps, self.updates = int(counters["env_steps"]), int(counters["updates"])
        self.episodes = int(counters.get("episodes", 0))
        self.evaluated = int(counters.get("evaluations", 0))
        # Wall time goes on from the checkpoint: max_seconds is the run's budget, not a session's.
        self.seconds_before = float(counters.get("seconds", 0.0))
        self.evaluations = json.loads(state.get("evaluations", "[]"))
        self.train_episodes.extend(ckpt.unpack_episodes(state))
        self.dps.load_state_dict(state["dps"])
        learner_state = {k: state[k] for k in ("model", "learner", "numpy_rng", "torch_rng")}
        calls.get(self.actors.learner.load(calls.put(learner_state, self.inline)))
        torch.set_rng_state(state["driver_torch_rng"])
        log.info("resumed at %d env steps, %d updates", self.env_steps, self.updates)

    def _init_from(self, path: Path) -> None:
        state = ckpt.read_checkpoint(path)
        model = WorldModel(self.tasks, self.model_config)
        weights, report = finetune_state(state, model)
        calls.get(self.actors.learner.load_weights(calls.put(weights, self.inline)))
        log.info(
            "fine-tuning from %s: carried over %s, started fresh %s",
            path,
            report["carried_tasks"] or "no task",
            report["fresh_tasks"] or "no task",
        )

    # ---- the loop ----

    def run(self) -> RunResult:
        config = self.config
        self.started = time.perf_counter()
        previous = self._install_sigterm()
        self.version, self.acked = -1, -1
        self.weights_ref, self.acks = None, []
        self._broadcast()
        calls.get(self.acks)  # the servers act with these weights from the first search
        collecting: dict[Any, int] = {}
        training: Any = None
        evaluating: Any = None
        rates, last_log, last_ckpt = Rates(), time.perf_counter(), time.perf_counter()
        next_eval = self.pace.first_evaluation(self.env_steps)
        try:
            while not self._done():
                if evaluating is None and self.env_steps >= next_eval and config.eval_episodes:
                    evaluating = self._evaluate()
                    next_eval = self.pace.next_evaluation(self.env_steps)
                counts = self.env_steps, self.updates
                for index in range(config.num_workers):
                    if index not in collecting.values() and self.pace.may_collect(*counts):
                        collecting[self._collect(index)] = index
                if training is None and self.pace.may_train(*counts):
                    training = self._train()
                pending = [
                    *collecting,
                    *([training] if training else []),
                    *([evaluating] if evaluating else []),
                ]
                ready, _ = calls.wait(pending, num_returns=1, timeout=1.0)
                for ref in ready:
                    if ref in collecting:
                        self._collected(calls.get(ref), collecting.pop(ref), rates)
                    elif ref is training:
                        training = None
                        self._trained(calls.get(ref), rates)
                    else:
                        evaluating = None
                        self._evaluated(calls.get(ref))
                now = time.perf_counter()
                if now - last_log >= config.log_every_s:
                    self._report(rates.take())
                    last_log = now
                if now - last_ckpt >= 60 * config.checkpoint_minutes:
                    self.save()
                    last_ckpt = now
                for hook in self.hooks:
                    hook(self)
            self._drain(collecting, training, evaluating, rates)
            if self._evaluate_at_end():
                self._evaluated(calls.get(self._evaluate()))
            self._report(rates.take())
            self.save()
        except calls.ActorDied as error:
            raise RunLost(self._lost(error)) from error
        except calls.RemoteError as error:
            # A learner rank whose peer died fails in its collective first: name the dead one.
            dead = next(filter(None, map(calls.died, self.actors.learner.ranks)), None)
            if dead is None:
                raise
            raise RunLost(self._lost(dead)) from error
        finally:
            self.writer.close()
            self.progress.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        result = RunResult(
            self.env_steps,
            self.updates,
            self.run_dir,
            self.checkpoints,
            self.evaluations,
            list(self.train_episodes),
            self.worker_pids,
            self._elapsed(),
            self.stop_reason,
            dict(self.dps.targets),
        )
        write_result(result, to_json(config))
        return result

    def _lost(self, error: Any) -> str:
        return lost_message(role_of(self.actors, error.actor_id or ""), error, self.run_dir)

    def _elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def _progress(self) -> float:
        return self.pace.progress(self.env_steps, self._elapsed())

    def _done(self) -> bool:
        return bool(self.stop_reason or self._progress() >= 1.0 or self.dps.all_solved)

    def _evaluate_at_end(self) -> bool:
        """Every run ends with an evaluation of its final weights (unless stopped by a signal,
        which checkpoints at once, or already evaluated at this step)."""
        if self.stop_reason or self.config.eval_episodes <= 0:
            return False
        return not self.evaluations or self.evaluations[-1]["env_steps"] != self.env_steps

    def _active(self) -> list[int]:
        return [self.tasks.index(name) for name in self.dps.active_tasks]

    def _training(self) -> list[int]:
        return [self.tasks.index(name) for name in self.dps.training_tasks]

    def _collect(self, index: int) -> Any:
        config = self.config
        temperature = config.temperature(self._progress())
        seed = config.seed * 7_919 + self.env_steps + index
        worker = self.actors.workers[index]
        return worker.collect.remote(config.steps_per_call, temperature, self._active(), seed)

    def _collected(self, result: dict[str, Any], index: int, rates: Rates) -> None:
        self.env_steps += result["env_steps"]
        pids = self.worker_pids[index]
        if pids and result["pid"] not in pids:
            log.warning("rollout worker %d was restarted (pid %d)", index, result["pid"])
        pids.add(result["pid"])
        if result["server_unloaded"]:
            self._reload_server(index % self.config.num_search_servers)
        rates.add("env_steps", result["env_steps"])
        rates.add("searches", result["searches"])
        for task, episode_return, length in result["episodes"]:
            name = self.names[task]
            self.episodes += 1
            self.train_episodes.append((self._elapsed(), name, episode_return))
            self.progress.episode(name, episode_return)
            self.writer.scalar(f"{name}/return", episode_return, self.env_steps)
            self.writer.scalar(f"{name}/episode_length", length, self.env_steps)

    def _train(self) -> Any:
        updates = self.config.updates_per_call
        if self.updates + updates - self.acked > self.config.max_weight_lag:
            calls.get(self.acks)  # bounded staleness: the servers catch up first
            self.acked = self.version
        return self.actors.learner.train(updates, self._training())

    def _trained(self, result: dict[str, Any], rates: Rates) -> None:
        self.updates = int(result["updates"])
        rates.add("updates", self.config.updates_per_call)
        rates.add("samples", result["samples"])
        self._broadcast()
        every = self.config.conflict_image_every
        image = every > 0 and self.updates % every < self.config.updates_per_call
        self.writer.learner_result(result, self.names, self.env_steps, conflict_image=image)

    def _broadcast(self) -> None:
        ready = [a for a in self.acks if calls.is_ready(a)]
        if ready and len(ready) == len(self.acks):
            self.acked = self.version
        self.version = self.updates
        self.weights_ref = self.actors.learner.weights()
        self.acks = [
            s.set_weights.remote(self.version, self.weights_ref) for s in self.actors.servers
        ]

    def _reload_server(self, index: int) -> None:
        """A search server without weights was restarted after the last broadcast: it gets
        the current weights now, not at the next update."""
        log.warning("search server %d was restarted: sending it weights %d", index, self.version)
        self.acks.append(
            self.actors.servers[index].set_weights.remote(self.version, self.weights_ref)
        )

    def _evaluate(self) -> Any:
        # Evaluation k of the run (resumes included) plays the same episodes in every mode.
        seed, config = 10_000 + 97 * self.evaluated, self.config
        self.evaluated += 1
        self.evaluating_at = (self.env_steps, self.version)  # the weights being evaluated
        return self.actors.evaluator.evaluate.remote(
            self.weights_ref, config.eval_episodes, seed, config.eval_max_steps
        )

    def _drain(
        self, collecting: dict[Any, int], training: Any, evaluating: Any, rates: Rates
    ) -> None:
        """Calls in flight finish and count, so the checkpoint's counters match the learner's.
        An evaluation still running when a signal stopped the run is dropped instead (one can
        take minutes), and a resumed run reuses its seeds."""
        for ref, index in collecting.items():
            self._collected(calls.get(ref), index, rates)
        if training is not None:
            self._trained(calls.get(training), rates)
        if evaluating is None:
            return
        if self.stop_reason and not calls.is_ready(evaluating):
            self.evaluated -= 1
            log.info("evaluation at %d env steps dropped: stopped", self.evaluating_at[0])
        else:
            self._evaluated(calls.get(evaluating))

    def _evaluated(self, episodes: dict[str, list[float]]) -> None:
        """Mean returns to TensorBoard and to DPS (tasks with no finished episode are left
        out of both: no NaN reaches the controller)."""
        steps, updates = self.evaluating_at
        returns = {t: sum(v) / len(v) for t, v in episodes.items() if v}
        for task, value in returns.items():
            self.dps.report_evaluation(task, value, self.updates)
            self.writer.scalar(f"{task}/eval_return", value, steps)
        if self.dps.maybe_advance(self.updates):
            calls.get(self.actors.learner.set_stage(self.dps.stage))
        self.writer.scalars(aggregate_scalars(returns), steps)  # HNS etc.
        self.writer.scalar("dps/stage", self.dps.stage, steps)
        self.writer.scalar("dps/solved_tasks", len(self.dps.solved), steps)
        self.evaluations.append(
            {
                "env_steps": steps,
                "updates": updates,
                "seconds": self._elapsed(),
                "returns": returns,
                "episodes": episodes,
                "solved": sorted(self.dps.solved),
            }
        )

    def _report(self, rates: dict[str, float]) -> None:
        for name, value in rates.items():
            self.writer.scalar(f"throughput/{name}", value, self.env_steps)
        self.writer.flush()
        if not self.env_steps:  # actors still starting: nothing to show yet
            return
        # The budget in env steps at this pace (a wall-clock budget is reached before
        # env_steps), so the display's percentage and ETA follow whichever budget binds.
        self.progress.total = max(self.env_steps, round(self.env_steps / self._progress()))
        self.progress.show(self.env_steps, self.updates, rates)

    # ---- checkpoints and signals ----

    def save(self) -> Path:
        learner = calls.get(self.actors.learner.state())
        replay: dict[str, Any] = {}
        for part in calls.get(
            [s.snapshot.remote(self.config.replay_snapshot_rows) for s in self.actors.shards]
        ):
            replay.update(part)
        counters = {
            "env_steps": self.env_steps,
            "updates": self.updates,
            "episodes": self.episodes,
            "evaluations": self.evaluated,
            "seconds": self._elapsed(),
        }
        state = ckpt.run_state(
            self.names,
            self.config,
            learner,
            self.dps.state_dict(),
            counters,
            replay,
            self.evaluations,
            self.train_episodes,
        )
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
