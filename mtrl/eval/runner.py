"""Evaluation episodes of a checkpoint, with the acting path of training.

The loop is ``mtrl.agents.evaluate.evaluate``'s (a ``Collector`` stepping a ``MultiTaskEnv``
whose row ``r`` is seeded ``seed + r``, under ``EnvSettings.for_evaluation``'s protocol, nothing
stored, first episode of every row counted) plus progress and recording hooks. The requested
tasks run as one batch in the checkpoint's task order, so evaluating all of a checkpoint's tasks
with a training evaluation's seed replays that evaluation exactly. Units of work are seeds;
``workers > 1`` runs them in spawned processes.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtrl.agents.acting import ActResult, BatchedActor
from mtrl.agents.collect import Collector
from mtrl.envs.batch import ObsBatch, TaskSet
from mtrl.envs.settings import EnvSettings
from mtrl.envs.vector import MultiTaskEnv
from mtrl.eval.checkpoint import LoadedCheckpoint, load_checkpoint

MAX_BATCHED_STEPS = 100_000
Observer = Callable[[ObsBatch, ActResult], None]
OnEpisode = Callable[[str, int, int, float], None]  # task, seed, episode index, return


class SubsetActor:
    """A checkpoint's actor acting on a batch of some of its tasks.

    The environments' task ids index the subset; the model's index the checkpoint's task set,
    and its vector inputs and legal masks are as wide as the whole set: rows are remapped and
    zero-padded as a batch of all tasks would be. With every task in order it is the identity.
    """

    def __init__(self, actor: BatchedActor, task_ids: list[str]) -> None:
        self.actor, self.config = actor, actor.config
        self.tasks = TaskSet(tuple(actor.tasks[actor.tasks.index(t)] for t in task_ids))
        self.index = np.array([actor.tasks.index(t) for t in task_ids], dtype=np.int64)
        self.identity = list(task_ids) == list(actor.tasks.names)
        self.observer: Observer | None = None

    def act(
        self, obs: ObsBatch, discounts: torch.Tensor, temperature: float, seed: int
    ) -> ActResult:
        full = obs if self.identity else self._remap(obs)
        result = self.actor.act(full, discounts, temperature, seed=seed)
        if self.observer is not None:
            self.observer(obs, result)
        return result

    def _remap(self, obs: ObsBatch) -> ObsBatch:
        tasks = self.actor.tasks
        vector = np.zeros((obs.vector.shape[0], tasks.max_vector_dim), np.float32)
        vector[:, : obs.vector.shape[1]] = obs.vector
        legal = np.zeros((obs.size, tasks.max_choices), bool)
        width = min(obs.legal.shape[1], legal.shape[1])
        legal[:, :width] = obs.legal[:, :width]
        return dataclasses.replace(
            obs, task_ids=self.index[obs.task_ids], vector=vector, legal=legal
        )


@dataclass(frozen=True)
class Unit:
    """One seed's evaluation batch: ``episodes`` environments of each task."""

    task_ids: tuple[str, ...]
    episodes: int
    seed: int
    temperature: float
    video_dir: str = ""  # "" records nothing
    settings: EnvSettings | None = None  # the run's env settings; None: the checkpoint's


def run_unit(
    ckpt: LoadedCheckpoint, unit: Unit, on_episode: OnEpisode | None = None
) -> dict[str, list[float]]:
    """Per task, the returns of the first episode of each of its environments, in row order."""
    acting = ckpt.acting.for_evaluation()  # training's search, without its exploration
    actor = SubsetActor(BatchedActor(ckpt.model, ckpt.tasks, acting), list(unit.task_ids))
    protocol = (unit.settings or ckpt.settings).for_evaluation()  # as training evaluated
    env = MultiTaskEnv(actor.tasks, envs_per_task=unit.episodes, settings=protocol, seed=unit.seed)
    recorder = None
    if unit.video_dir:
        from mtrl.eval.video import Recorder

        recorder = Recorder(env, Path(unit.video_dir))
        actor.observer = recorder.observe
    try:
        collector = Collector(env, actor, {}, ckpt.discounts)
        first: dict[int, float] = {}
        for _ in range(MAX_BATCHED_STEPS):
            for end in collector.collect(1, unit.temperature, active=set(), seed=unit.seed):
                if end.row in first:
                    continue
                first[end.row] = end.episode_return
                task = env.tasks[end.task_id].id
                if recorder is not None:
                    recorder.finish(end.row, end.episode_return)
                if on_episode is not None:
                    on_episode(task, unit.seed, end.row % unit.episodes, end.episode_return)
            if len(first) == env.num_envs:
                break
        else:
            raise RuntimeError(f"evaluation did not finish within {MAX_BATCHED_STEPS} steps")
        returns: dict[str, list[float]] = {t: [] for t in env.tasks.names}
        for row in sorted(first):
            returns[env.tasks[int(env.task_ids[row])].id].append(first[row])
        return returns
    finally:
        if recorder is not None:
            recorder.close()
        env.close()


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core: threads would oversubscribe


def _worker(path: str, unit: Unit, progress: queue.Queue) -> dict[str, list[float]]:
    ckpt = load_checkpoint(path)
    return run_unit(ckpt, unit, lambda *event: progress.put(event))


def run_units(
    ckpt: LoadedCheckpoint, units: list[Unit], workers: int, on_episode: OnEpisode | None = None
) -> list[dict[str, list[float]]]:
    """Every unit's returns, in unit order; in this process or in ``workers`` processes."""
    if workers <= 1 or len(units) <= 1:
        return [run_unit(ckpt, unit, on_episode) for unit in units]
    context = multiprocessing.get_context("spawn")  # fork after torch threads start can hang
    with context.Manager() as manager:
        progress = manager.Queue()
        with ProcessPoolExecutor(min(workers, len(units)), context, _init_worker) as pool:
            futures = [pool.submit(_worker, str(ckpt.path), u, progress) for u in units]
            while not all(f.done() for f in futures):
                _drain(progress, on_episode, timeout=0.2)
            _drain(progress, on_episode, timeout=0.0)
            return [f.result() for f in futures]


def _drain(progress: queue.Queue, on_episode: OnEpisode | None, timeout: float) -> None:
    try:
        while True:
            event = progress.get(timeout=timeout) if timeout else progress.get_nowait()
            if on_episode is not None:
                on_episode(*event)
    except queue.Empty:
        return
