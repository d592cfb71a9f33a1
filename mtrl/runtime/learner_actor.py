"""The learner actor: ``agents.Learner`` fed by replay shards, one batch prefetched ahead.

Each update asks the shards for its per-task sequences (sizes as ``Learner.sample`` will
compute them) and runs ``Learner.sample`` + ``train_step`` unchanged on the returned slices,
so reanalyse, target-network bootstraps and gradient aggregation are the agent's own.

Several learners (``num_learners``, see ``mtrl.runtime.learner_group``) are ranks of one
torch.distributed group: each samples ``batch_size / world`` sequences with its own seed, and
``Learner``'s ``MultiTaskUpdate`` all-reduces losses, Jacobians and gradients
(``all_reduce_mean``), so every rank clips and steps the same gradients. Rank 0's weights are
broadcast when the group forms and after every load; the ranks agree on the tasks of each
batch before sampling it, and seed torch alike before each step (PCGrad's random order).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import ray
import torch
import torch.distributed as dist

from mtrl.agents.acting import BatchedActor
from mtrl.agents.batching import TaskSample, start_row_priorities
from mtrl.agents.gradients import all_reduce_mean
from mtrl.agents.learner import Learner
from mtrl.agents.replay import batch_sizes
from mtrl.envs.batch import TaskSet
from mtrl.runtime import calls
from mtrl.runtime.actors import pick_device, pin_threads
from mtrl.runtime.config import RunConfig
from mtrl.runtime.transport import ReplaySlice
from mtrl.world_models import WorldModel, WorldModelConfig

JOIN_TIMEOUT = timedelta(minutes=2)  # for every rank to reach rank 0's rendezvous store


class LearnerActor:
    def __init__(
        self,
        run_tasks: TaskSet,
        model_config: WorldModelConfig,
        config: RunConfig,
        shards: list[Any],
        shard_of: dict[int, int],
        rank: int = 0,
        world: int = 1,
    ) -> None:
        pin_threads(config.resources.learner_threads or config.resources.learner_cpus)
        self.tasks, self.config, self.shard_of = run_tasks, config, shard_of
        self.shards = [calls.resolve(shard) for shard in shards]
        self.rank, self.world = rank, world
        self.device = pick_device(config.resources.learner_gpus)
        self.model = WorldModel(run_tasks, model_config).to(self.device)
        # Reanalyse searches with the fp32 model: an int8 copy would be rebuilt every update.
        reanalyse = replace(config.acting, int8_inference=False)
        self.actor = BatchedActor(self.model, run_tasks, reanalyse)
        sampled = config.acting.sampled_actions
        share = replace(config.learner, batch_size=config.learner.batch_size // world)
        reduce_fn = all_reduce_mean if world > 1 else None
        discounts = config.replay.discounts(run_tasks.specs)
        self.learner = Learner(self.model, run_tasks, share, sampled, reduce_fn, discounts)
        self.rng = np.random.default_rng(config.seed if rank == 0 else [config.seed, rank])
        self.lengths: dict[int, int] = {}
        self.prefetched: tuple[tuple[int, ...], list[Any]] | None = None
        self.store: dist.TCPStore | None = None  # the rendezvous of several ranks

    # ---- sampling from the shards ----

    def _request(self, ids: tuple[int, ...]) -> list[Any]:
        by_need = self.config.learner.batch_policy == "by_need"
        weights = self.learner.need_weights(list(ids)) if by_need else None
        sizes = batch_sizes(self.learner.config.batch_size, list(ids), weights)
        per_shard: dict[int, dict[int, int]] = defaultdict(dict)
        for task, size in sizes.items():
            if size:
                per_shard[self.shard_of[task]][task] = size
        seed = int(self.rng.integers(1 << 31))
        return [self.shards[s].sample.remote(req, seed + s) for s, req in per_shard.items()]

    def _wanted(self, active: list[int]) -> tuple[int, ...]:
        if not all(t in self.lengths for t in active):  # new data may have arrived
            for shard in calls.get([s.lengths.remote() for s in self.shards]):
                self.lengths.update(shard)
        return tuple(sorted(t for t in active if self.lengths.get(t, 0) > 0))

    def _slices(self, active: list[int]) -> dict[int, ReplaySlice]:
        ids = self._wanted(active)
        if not ids:
            return {}
        ready = self.prefetched if self.prefetched and self.prefetched[0] == ids else None
        refs = ready[1] if ready else self._request(ids)
        self.prefetched = (ids, self._request(ids))  # next update's batch, sampled meanwhile
        slices: dict[int, ReplaySlice] = {}
        for part in calls.get(refs):
            slices.update(part)
        for task, piece in slices.items():
            self.lengths[task] = len(piece)
        if tuple(sorted(slices)) != ids:  # a shard lost data (restart): ask again
            self.lengths, self.prefetched = {}, None
            return self._slices(active)
        return slices

    def _batch_slices(self, active: list[int]) -> dict[int, ReplaySlice]:
        slices = self._slices(active) if self.world == 1 else self._agreed_slices(active)
        if not slices:
            raise ValueError("no active task has replay data to learn from")
        return slices

    def _agreed_slices(self, active: list[int]) -> dict[int, ReplaySlice]:
        """Slices of the same tasks on every rank (their views of the shards may differ).

        Round one resamples towards the union (a rank that has not seen a task's first data
        looks again), later rounds towards the intersection (a restarted shard lost data).
        Every rank runs the same rounds: each all-reduces once and all see the same counts.
        """
        slices, rounds = self._slices(active), 0
        while True:
            counts = torch.zeros(len(self.tasks), device=self.device)
            counts[list(slices)] = 1.0
            dist.all_reduce(counts)  # how many ranks hold each task
            if bool(((counts == 0) | (counts == self.world)).all()):
                return slices
            keep = (counts > 0 if rounds == 0 else counts == self.world).tolist()
            target = sorted(t for t in active if keep[t])
            if sorted(slices) != target:
                self.lengths, self.prefetched = {}, None
                slices = self._slices(target)
            rounds += 1

    def _send_priorities(self, samples: list[TaskSample], priorities: torch.Tensor) -> None:
        """The sampled start rows' new priorities to their shards (not awaited: Ray runs one
        caller's calls to an actor in order, so the shard has them before its next sample
        after the prefetched one)."""
        per_shard: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
        for sample, rows, values in start_row_priorities(samples, priorities):
            per_shard[self.shard_of[sample.task_id]][sample.task_id] = (rows, values)
        for shard, updates in per_shard.items():
            self.shards[shard].set_priorities.remote(updates)

    # ---- the process group of several ranks ----

    def open_store(self) -> tuple[str, int]:
        """Rank 0: the rendezvous store, on a free port of this node's address (only: given
        just a host, torch's store listens on every interface; 127.0.0.1 in a local run)."""
        host = ray.util.get_node_ip_address()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._store_socket = socket.create_server((host, 0), family=family)
        port = self._store_socket.getsockname()[1]
        self.store = dist.TCPStore(
            host,
            port,
            self.world,
            is_master=True,
            wait_for_workers=False,
            timeout=JOIN_TIMEOUT,
            master_listen_fd=self._store_socket.fileno(),
        )
        return host, port

    def join(self, host: str, port: int) -> None:
        """Every rank at once: form the group, then take rank 0's weights."""
        if self.rank:
            self.store = dist.TCPStore(host, port, self.world, timeout=JOIN_TIMEOUT)
        whole_gpu = self.device.type == "cuda" and self.config.resources.learner_gpus >= 1
        backend = "nccl" if whole_gpu else "gloo"  # NCCL needs one GPU per rank
        dist.init_process_group(backend, store=self.store, rank=self.rank, world_size=self.world)
        self._sync()

    @torch.no_grad()
    def _sync(self) -> None:
        """Rank 0's model and target network on every rank."""
        if self.world == 1:
            return
        for tensor in (
            *self.model.state_dict().values(),
            *self.learner.target.state_dict().values(),
        ):
            dist.broadcast(tensor, src=0)

    # ---- the remote API ----

    def train(self, updates: int, active: list[int]) -> dict[str, Any]:
        started = time.perf_counter()
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        cosine = None
        for _ in range(updates):
            slices = self._batch_slices(active)
            # Draw what was asked of the shards: by_need's weights may have moved since the
            # request (it was prefetched one update ahead).
            asked = {t: float(piece.batch.rows.shape[0]) for t, piece in slices.items()}
            samples = self.learner.draw(slices, self.rng, need=asked)
            batch = self.learner.assemble(samples, actor=self.actor)
            if self.world > 1:  # the same torch random numbers on every rank (PCGrad's order)
                torch.manual_seed(self.config.seed * 1_000_003 + self.learner.updates)
            metrics = self.learner.train_step(batch)
            if self.config.replay.priority_exponent:
                self._send_priorities(samples, metrics["priorities"])  # type: ignore[arg-type]
            for key, value in metrics.items():
                if isinstance(value, float):
                    sums[key] += value
                    counts[key] += 1
                elif key.endswith("/cosine"):
                    cosine = value.numpy()
        # Conflict metrics come every `metrics_every` updates: average each over its own count.
        scalars = {k: v / counts[k] for k, v in sums.items()}
        load = self.model.expert_load()  # [layers, tasks, experts] since the last call
        self.model.reset_expert_load()
        return {
            "scalars": scalars,
            "cosine": cosine,
            "expert_load": load.mean(0).cpu().numpy() if load.numel() else None,
            "updates": self.learner.updates,
            "samples": updates * self.learner.config.batch_size,
            "seconds": time.perf_counter() - started,
            "pid": os.getpid(),
        }

    def merge(self, *results: dict[str, Any]) -> dict[str, Any]:
        """Rank 0: one ``train`` result from every rank's (the driver waits on this one)."""
        return merge_metrics(list(results))

    def weights(self) -> dict[str, Any]:
        return self.model.checkpoint()

    def set_stage(self, stage: int) -> None:
        self.learner.set_stage(stage)

    def state(self) -> dict[str, Any]:
        return learner_state(self.model, self.learner, self.rng)

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_checkpoint(state["model"])
        self.learner.load_state_dict(state["learner"])
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        if self.rank:  # rank 0's sampling stream, forked into one of this rank's own
            self.rng = np.random.default_rng([int(self.rng.integers(1 << 62)), self.rank])
        self.lengths, self.prefetched = {}, None
        self._sync()

    def load_weights(self, model_state: dict[str, Any]) -> None:
        """Fine-tuning: start from these weights (already mapped onto this run's tasks)."""
        self.model.load_state_dict(model_state)
        self.learner.target.load_state_dict(self.model.state_dict())
        self._sync()


def learner_state(model: WorldModel, learner: Learner, rng: np.random.Generator) -> dict:
    """What a checkpoint keeps of a learner: weights, optimiser and the rest, RNG states."""
    return {
        "model": model.checkpoint(),
        "learner": learner.state_dict(),
        "numpy_rng": json.dumps(rng.bit_generator.state),
        "torch_rng": torch.get_rng_state(),
    }


def merge_metrics(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The ranks' ``train`` results as one: scalars and expert loads averaged over the ranks
    (conflict metrics and update counts agree anyway), samples summed, the slowest time."""
    first = results[0]
    scalars = {
        key: float(np.mean([r["scalars"][key] for r in results if key in r["scalars"]]))
        for key in first["scalars"]
    }
    loads = [r["expert_load"] for r in results if r["expert_load"] is not None]
    return {
        **first,
        "scalars": scalars,
        "expert_load": np.mean(loads, axis=0) if loads else None,
        "samples": sum(r["samples"] for r in results),
        "seconds": max(r["seconds"] for r in results),
    }
