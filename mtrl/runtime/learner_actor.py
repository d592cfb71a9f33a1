"""The learner actor: ``agents.Learner`` fed by replay shards, one batch prefetched ahead.

Each update asks the shards for its per-task sequences (sizes as ``Learner.sample`` will
compute them) and runs ``Learner.sample`` + ``train_step`` unchanged on the returned slices,
so reanalyse, target-network bootstraps and gradient aggregation are the agent's own. One
learner is what runs today; several (torch DDP over ``MultiTaskUpdate``'s process group, see
``tests/agents/gradients/test_grad_ddp.py``) would each take a share of the batch.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from typing import Any

import numpy as np
import ray
import torch

from mtrl.agents.acting import BatchedActor
from mtrl.agents.learner import Learner
from mtrl.agents.replay import batch_sizes
from mtrl.envs.batch import TaskSet
from mtrl.runtime.actors import pick_device, pin_threads
from mtrl.runtime.config import RunConfig
from mtrl.runtime.transport import ReplaySlice
from mtrl.world_models import WorldModel, WorldModelConfig


class LearnerActor:
    def __init__(
        self,
        run_tasks: TaskSet,
        model_config: WorldModelConfig,
        config: RunConfig,
        shards: list[Any],
        shard_of: dict[int, int],
    ) -> None:
        pin_threads(config.resources.learner_cpus)
        self.tasks, self.config, self.shards, self.shard_of = run_tasks, config, shards, shard_of
        device = pick_device(config.resources.learner_gpus)
        self.model = WorldModel(run_tasks, model_config).to(device)
        self.actor = BatchedActor(self.model, run_tasks, config.acting)
        sampled = config.acting.sampled_actions
        self.learner = Learner(self.model, run_tasks, config.learner, sampled)
        self.rng = np.random.default_rng(config.seed)
        self.lengths: dict[int, int] = {}
        self.prefetched: tuple[tuple[int, ...], list[Any]] | None = None

    # ---- sampling from the shards ----

    def _request(self, ids: tuple[int, ...]) -> list[Any]:
        weights = {t: 1.0 for t in ids} if self.config.learner.batch_policy == "by_need" else None
        sizes = batch_sizes(self.config.learner.batch_size, list(ids), weights)
        per_shard: dict[int, dict[int, int]] = defaultdict(dict)
        for task, size in sizes.items():
            if size:
                per_shard[self.shard_of[task]][task] = size
        seed = int(self.rng.integers(1 << 31))
        return [self.shards[s].sample.remote(req, seed + s) for s, req in per_shard.items()]

    def _wanted(self, active: list[int]) -> tuple[int, ...]:
        if not all(t in self.lengths for t in active):  # new data may have arrived
            for shard in ray.get([s.lengths.remote() for s in self.shards]):
                self.lengths.update(shard)
        return tuple(sorted(t for t in active if self.lengths.get(t, 0) > 0))

    def _slices(self, active: list[int]) -> dict[int, ReplaySlice]:
        ids = self._wanted(active)
        if not ids:
            raise ValueError("no active task has replay data to learn from")
        ready = self.prefetched if self.prefetched and self.prefetched[0] == ids else None
        refs = ready[1] if ready else self._request(ids)
        self.prefetched = (ids, self._request(ids))  # next update's batch, sampled meanwhile
        slices: dict[int, ReplaySlice] = {}
        for part in ray.get(refs):
            slices.update(part)
        for task, piece in slices.items():
            self.lengths[task] = len(piece)
        if tuple(sorted(slices)) != ids:  # a shard lost data (restart): ask again
            self.lengths, self.prefetched = {}, None
            return self._slices(active)
        return slices

    # ---- the remote API ----

    def train(self, updates: int, active: list[int]) -> dict[str, Any]:
        started = time.perf_counter()
        sums: dict[str, float] = defaultdict(float)
        cosine = None
        for _ in range(updates):
            slices = self._slices(active)
            batch = self.learner.sample(slices, self.rng, actor=self.actor)  # type: ignore[arg-type]
            metrics = self.learner.train_step(batch)
            for key, value in metrics.items():
                if isinstance(value, float):
                    sums[key] += value
                elif key.endswith("/cosine"):
                    cosine = value.numpy()
        scalars = {k: v / updates for k, v in sums.items()}
        load = self.model.expert_load()  # [layers, tasks, experts] since the last call
        self.model.reset_expert_load()
        return {
            "scalars": scalars,
            "cosine": cosine,
            "expert_load": load.mean(0).cpu().numpy() if load.numel() else None,
            "updates": self.learner.updates,
            "samples": updates * self.config.learner.batch_size,
            "seconds": time.perf_counter() - started,
            "pid": os.getpid(),
        }

    def weights(self) -> dict[str, Any]:
        return self.model.checkpoint()

    def set_stage(self, stage: int) -> None:
        self.learner.set_stage(stage)

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.checkpoint(),
            "learner": self.learner.state_dict(),
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_checkpoint(state["model"])
        self.learner.load_state_dict(state["learner"])
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])

    def load_weights(self, model_state: dict[str, Any]) -> None:
        """Fine-tuning: start from these weights (already mapped onto this run's tasks)."""
        self.model.load_state_dict(model_state)
        self.learner.target.load_state_dict(self.model.state_dict())
