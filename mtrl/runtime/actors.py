"""Acting-side actors: rollout workers, the batching search server, the evaluator.

These are plain classes; ``mtrl.runtime.topology`` starts them as Ray actors with the
resources/restart options of the run's config, or in this process (the single-process mode,
``mtrl.runtime.calls``). Every Ray actor pins torch to its own CPU share: on small machines,
several actors each using all cores run many times slower than one thread each; in the
single-process mode everything shares the process's threads.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import numpy as np
import torch

from mtrl.agents.acting import ActingConfig, ActResult, BatchedActor
from mtrl.agents.collect import Collector
from mtrl.agents.evaluate import evaluate
from mtrl.envs.batch import ObsBatch, TaskSet
from mtrl.envs.settings import EnvSettings
from mtrl.envs.vector import MultiTaskEnv
from mtrl.runtime import calls
from mtrl.runtime.transport import ActSlice, RecordingReplay, concat_obs, to_global
from mtrl.world_models import WorldModel, WorldModelConfig


def pin_threads(cpus: float) -> None:
    if calls.in_ray_actor():
        torch.set_num_threads(max(1, int(cpus)))


def pick_device(gpus: float) -> torch.device:
    return torch.device("cuda" if gpus > 0 and torch.cuda.is_available() else "cpu")


class SearchClient:
    """What a ``Collector`` sees as its actor: searches run remotely on a ``SearchServer``."""

    def __init__(
        self, server: Any, tasks: TaskSet, run_tasks: TaskSet, acting: ActingConfig
    ) -> None:
        self.server, self.tasks, self.run_tasks = calls.resolve(server), tasks, run_tasks
        self.config = acting
        self.to_run = np.array([run_tasks.index(name) for name in tasks.names], dtype=np.int64)
        self.served_unloaded = False  # a search ran on a server without weights (restarted)

    def act(
        self, obs: ObsBatch, discounts: Any = None, temperature: float = 1.0, seed: int = 0
    ) -> ActResult:
        batch = to_global(obs, self.to_run, self.run_tasks)
        part: ActSlice = calls.get(self.server.act.remote(batch, temperature, seed))
        self.served_unloaded |= part.weights_version < 0
        return part.to_result()


class RolloutWorker:
    """Owns a ``MultiTaskEnv`` (any mix of the run's tasks) and collects into replay shards.

    A restarted worker (``max_restarts``) rebuilds its environments and continues; its
    environment keys in replay are new, so no episode is stitched across the restart.
    """

    def __init__(
        self,
        index: int,
        run_tasks: TaskSet,
        task_names: tuple[str, ...],
        envs_per_task: int,
        settings: EnvSettings,
        acting: ActingConfig,
        discounts: tuple[float, ...],  # per run task
        server: Any,
        shards: list[Any],
        shard_of: dict[int, int],  # run task id -> index into shards
        seed: int,
    ) -> None:
        pin_threads(1)
        self.index, self.shard_of = index, shard_of
        self.shards = [calls.resolve(shard) for shard in shards]
        specs = TaskSet(tuple(run_tasks[run_tasks.index(name)] for name in task_names))
        self.env = MultiTaskEnv(specs, envs_per_task, settings, seed + 1_000 * index)
        self.client = SearchClient(server, self.env.tasks, run_tasks, acting)
        self.to_run = self.client.to_run
        base = (uuid.uuid4().int % (1 << 40)) << 20  # unique per incarnation
        self.replays = {t: RecordingReplay(int(g), base) for t, g in enumerate(self.to_run)}
        own = torch.tensor([discounts[run_tasks.index(name)] for name in task_names])
        self.collector = Collector(self.env, self.client, self.replays, own)
        self.pending: list[Any] = []

    def collect(self, steps: int, temperature: float, active: list[int], seed: int) -> dict:
        """``steps`` batched env steps; transitions of ``active`` run tasks go to replay."""
        started = time.perf_counter()
        wanted = set(active)
        local_active = {t for t, g in enumerate(self.to_run) if int(g) in wanted}
        ends = self.collector.collect(steps, temperature, local_active, seed)
        self._flush()
        unloaded, self.client.served_unloaded = self.client.served_unloaded, False
        return {
            "worker": self.index,
            "pid": os.getpid(),
            "env_steps": steps * self.env.num_envs,
            "seconds": time.perf_counter() - started,
            "searches": steps,
            "server_unloaded": unloaded,  # the driver sends that server the current weights
            "episodes": [(int(self.to_run[e.task_id]), e.episode_return, e.length) for e in ends],
        }

    def _flush(self) -> None:
        calls.get(self.pending)  # at most one flush in flight per shard: bounded memory
        by_shard: dict[int, dict[int, list]] = {}
        for replay in self.replays.values():
            records = replay.drain()
            if records:
                by_shard.setdefault(self.shard_of[replay.task_id], {})[replay.task_id] = records
        self.pending = [self.shards[i].add.remote(records) for i, records in by_shard.items()]

    def pid(self) -> int:
        return os.getpid()


class SearchServer:
    """Root inference + search for several workers in one batched call (one tree batch).

    Requests wait at most ``window_s`` for the other clients' roots, then run together.
    """

    def __init__(
        self,
        run_tasks: TaskSet,
        model_config: WorldModelConfig,
        acting: ActingConfig,
        discounts: tuple[float, ...],  # per run task
        clients: int,
        window_s: float,
        cpus: float,
        gpus: float,
    ) -> None:
        pin_threads(cpus)
        self.model = WorldModel(run_tasks, model_config).to(pick_device(gpus)).eval()
        self.actor = BatchedActor(self.model, run_tasks, acting)  # collection: it explores
        self.discounts = torch.tensor(discounts)
        self.clients, self.window_s = clients, window_s
        self.version = -1
        self.pending: list[tuple[ObsBatch, float, int, asyncio.Future]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.counts = {"searches": 0, "roots": 0, "seconds": 0.0}

    async def set_weights(self, version: int, weights: dict[str, Any]) -> int:
        self.model.load_checkpoint(weights)
        self.version = version
        return version

    async def act(self, obs: ObsBatch, temperature: float, seed: int) -> ActSlice:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((obs, temperature, seed, future))
        if len(self.pending) >= self.clients:
            self._flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending = self.pending, []
        if not batch:
            return
        started = time.perf_counter()
        try:
            obs = concat_obs([item[0] for item in batch])
            # One search for all requests: the first request's temperature and seed.
            result = self.actor.act(obs, self.discounts, batch[0][1], seed=batch[0][2])
            parts = ActSlice.split(result, [item[0].size for item in batch], self.version)
        except Exception as error:  # every waiting worker gets the error, not a hang
            for *_, future in batch:
                future.set_exception(error)
            return
        for (*_, future), part in zip(batch, parts, strict=True):
            future.set_result(part)
        self.counts["searches"] += 1
        self.counts["roots"] += obs.size
        self.counts["seconds"] += time.perf_counter() - started

    async def stats(self) -> dict[str, float]:
        return {**self.counts, "version": self.version, "pid": os.getpid()}


class Evaluator:
    """Fixed-seed episodes of every task with the acting search (temperature 0)."""

    def __init__(
        self,
        run_tasks: TaskSet,
        model_config: WorldModelConfig,
        acting: ActingConfig,
        discounts: tuple[float, ...],  # per run task
        settings: EnvSettings,
        gpus: float,
    ) -> None:
        pin_threads(1)
        self.model = WorldModel(run_tasks, model_config).to(pick_device(gpus)).eval()
        self.actor = BatchedActor(self.model, run_tasks, acting.for_evaluation())
        self.discounts = torch.tensor(discounts)
        self.settings = settings

    def evaluate(
        self, weights: dict[str, Any], episodes: int, seed: int, max_steps: int
    ) -> dict[str, list]:
        self.model.load_checkpoint(weights)
        return evaluate(
            self.actor, episodes, self.discounts, self.settings, seed, max_batched_steps=max_steps
        )
