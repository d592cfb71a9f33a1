"""Creating the run's actors from its config: resources, restart policy, who talks to whom."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from mtrl.envs.batch import TaskSet
from mtrl.envs.registry import resolve_tasks
from mtrl.envs.vector import MultiTaskEnv
from mtrl.runtime import calls
from mtrl.runtime.actors import Evaluator, RolloutWorker, SearchServer
from mtrl.runtime.config import RunConfig
from mtrl.runtime.learner_group import LearnerGroup, reserve_learners
from mtrl.runtime.replay_shard import ReplayShard
from mtrl.world_models import WorldModelConfig


def resolve_run_tasks(config: RunConfig) -> TaskSet:
    """The run's tasks with specs resolved by its env settings (frame shapes, command caps)."""
    env = MultiTaskEnv(list(config.tasks), 1, config.env, config.seed)
    env.close()
    return env.tasks


@dataclass
class Actors:
    workers: list[Any]
    servers: list[Any]
    shards: list[Any]
    shard_of: dict[int, int]
    learner: LearnerGroup
    evaluator: Any


def _restartable(cls: type, config: RunConfig, inline: bool, name: str = "", **options: Any) -> Any:
    # max_task_retries=-1: calls in flight when the actor died run again on its new life.
    restarts = {"max_restarts": config.max_restarts, "max_task_retries": -1}
    named = {"name": name} if name and not inline else {}  # found by name (calls.resolve)
    events = {"enable_task_events": config.ray_task_events}
    return calls.actor_class(cls, inline, **named, **restarts, **events, **options)


def _references(actors: list[Any], names: list[str], inline: bool) -> list[Any]:
    """How other actors' constructors refer to ``actors`` (see ``calls.resolve``)."""
    return actors if inline else names


def worker_tasks(config: RunConfig, index: int) -> tuple[str, ...]:
    """Task ids of worker ``index``: suite names (``"atari8"``) expanded to their tasks."""
    names = config.worker_tasks[index] if config.worker_tasks else config.tasks
    return tuple(spec.id for spec in resolve_tasks(names))


def demand(config: RunConfig) -> dict[str, float]:
    """The CPUs and GPUs that ``create_actors`` asks Ray for, summed over the run's actors."""
    res = config.resources
    evaluators = 1 if config.eval_episodes > 0 else 0
    return {
        "CPU": config.num_workers * res.worker_cpus
        + config.num_search_servers * res.search_cpus
        + config.num_replay_shards * res.replay_cpus
        + config.num_learners * res.learner_cpus
        + evaluators * res.evaluator_cpus,
        "GPU": config.num_search_servers * res.search_gpus
        + config.num_learners * res.learner_gpus
        + evaluators * res.evaluator_gpus,
    }


def create_actors(
    config: RunConfig,
    tasks: TaskSet,
    model_config: WorldModelConfig,
    restore_from: str,
    inline: bool = False,
) -> Actors:
    """The run's actors on Ray, or (``inline``) as plain objects in this process."""
    res = config.resources
    discounts = tuple(config.replay.discounts(tasks.specs).tolist())  # per run task
    # Learner ranks are reserved first: a request the cluster cannot meet fails before any
    # other actor starts.
    placement = None if inline else reserve_learners(config)
    # Replay stores the K actions acting searched over, so its K is acting's.
    replay = replace(config.replay, sampled_actions=config.acting.sampled_actions)
    # Constructor arguments go by value (small: task specs and the config) and other actors
    # by name, so Ray inlines them with the actor's creation and a restarted actor always
    # has them: an object-store reference, a handle included, could be lost with its owner
    # (ray-project/ray#53727).
    shard_of = {t: t % config.num_replay_shards for t in range(len(tasks))}
    prefix = f"mtrl-{uuid.uuid4().hex[:12]}"  # unique per run on a shared cluster
    shard_names = [f"{prefix}-shard-{i}" for i in range(config.num_replay_shards)]
    server_names = [f"{prefix}-search-{s}" for s in range(config.num_search_servers)]
    shards = [
        _restartable(
            ReplayShard, config, inline, shard_names[index], **res.ray_options("replay")
        ).remote(
            tasks,
            [t for t, s in shard_of.items() if s == index],
            replay,
            config.run_dir,
            restore_from,
        )
        for index in range(config.num_replay_shards)
    ]
    clients = [
        sum(1 for w in range(config.num_workers) if w % config.num_search_servers == s)
        for s in range(config.num_search_servers)
    ]
    servers = [
        _restartable(
            SearchServer,
            config,
            inline,
            server_names[s],
            **res.ray_options("search"),
        ).remote(
            tasks,
            model_config,
            config.acting,
            discounts,
            clients[s],
            config.search_window_s,
            res.search_cpus,
            res.search_gpus,
        )
        for s in range(config.num_search_servers)
    ]
    shard_refs = _references(shards, shard_names, inline)
    server_refs = _references(servers, server_names, inline)
    worker_cls = _restartable(RolloutWorker, config, inline, **res.ray_options("worker"))
    workers = [
        worker_cls.remote(
            w,
            tasks,
            worker_tasks(config, w),
            config.envs_per_task,
            config.env,
            config.acting,
            discounts,
            server_refs[w % config.num_search_servers],
            shard_refs,
            shard_of,
            config.seed,
        )
        for w in range(config.num_workers)
    ]
    # The learner is not restarted by Ray: its state lives in the checkpoints (resume).
    learner = LearnerGroup.create(
        config, placement, tasks, model_config, config, shard_refs, shard_of, inline=inline
    )
    evaluator = None  # one process less to start when the run never evaluates
    if config.eval_episodes > 0:
        evaluator = _restartable(Evaluator, config, inline, **res.ray_options("evaluator")).remote(
            tasks, model_config, config.acting, discounts, config.env, res.evaluator_gpus
        )
    return Actors(workers, servers, shards, shard_of, learner, evaluator)


def role_of(actors: Actors, actor_id: str) -> str:
    """Which of the run's actors has this id (hex): "learner rank 1", "rollout worker 0"."""
    roles = {
        **{f"rollout worker {i}": a for i, a in enumerate(actors.workers)},
        **{f"search server {i}": a for i, a in enumerate(actors.servers)},
        **{f"replay shard {i}": a for i, a in enumerate(actors.shards)},
        **{f"learner rank {i}": a for i, a in enumerate(actors.learner.ranks)},
        "evaluator": actors.evaluator,
    }
    ids = {role: getattr(a, "_actor_id", None) for role, a in roles.items()}
    return next((r for r, i in ids.items() if i is not None and i.hex() == actor_id), "an actor")


def kill_all(actors: Actors) -> None:
    for actor in [*actors.workers, *actors.servers, *actors.shards]:
        calls.kill(actor)
    actors.learner.kill()  # and its placement group
    if actors.evaluator is not None:
        calls.kill(actors.evaluator)
