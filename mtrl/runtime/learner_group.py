"""The run's learner ranks behind the one-learner interface the driver uses.

``num_learners == 1`` is one ``LearnerActor`` and no process group, exactly as before. With
more, the ranks are reserved first as one Ray placement group (a bundle of
``resources.learner_cpus``/``learner_gpus`` per rank, strategy ``learner_placement``), so a
request the cluster cannot meet fails before any other actor starts, with the resources named.
The ranks then form a torch.distributed group (rank 0 hosts the TCP rendezvous store on its
node's address) and start from rank 0's weights; see ``mtrl.runtime.learner_actor``.

Every method returns what the driver waits on: one ``ObjectRef`` (``train``, ``weights``,
``state``) or one per rank (``load``, ``load_weights``, ``set_stage``, which run on all ranks).
``train`` resolves to one merged result: rank 0 merges the ranks' results, so the driver's
``ray.wait`` sees one ref and an error on any rank surfaces there.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from mtrl.runtime import calls
from mtrl.runtime.config import Resources, RunConfig
from mtrl.runtime.learner_actor import LearnerActor


class PlacementError(ValueError):
    """The cluster cannot host the learner ranks as configured (reported like a bad value)."""


def learner_bundle(resources: Resources) -> dict[str, float]:
    """One rank's resources as a placement bundle (zero amounts left out)."""
    bundle = {"CPU": resources.learner_cpus, "GPU": resources.learner_gpus}
    bundle.update(resources.learner_custom)
    return {name: amount for name, amount in bundle.items() if amount > 0}


def reserve_learners(config: RunConfig) -> PlacementGroup | None:
    """A ready placement group for the ranks, or ``None`` (one rank, or nothing to reserve)."""
    bundle = learner_bundle(config.resources)
    if config.num_learners == 1 or not bundle:
        return None
    group = placement_group([bundle] * config.num_learners, strategy=config.learner_placement)
    ready, _ = ray.wait([group.ready()], timeout=config.placement_timeout_s)
    if ready:
        return group
    remove_placement_group(group)
    have = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
    raise PlacementError(
        f"could not place {config.num_learners} learner ranks of {bundle} each "
        f"(learner_placement={config.learner_placement}) within "
        f"{config.placement_timeout_s:g}s; the cluster has {have}: lower num_learners or "
        "resources.learner_cpus/learner_gpus, relax learner_placement, or add nodes"
    )


class LearnerGroup:
    def __init__(self, ranks: list[Any], placement: PlacementGroup | None = None) -> None:
        self.ranks, self.placement = ranks, placement

    @classmethod
    def create(
        cls, config: RunConfig, placement: PlacementGroup | None, *args: Any, inline: bool = False
    ) -> LearnerGroup:
        """``args``: ``LearnerActor``'s (tasks, model config, run config, shards, shard_of)."""
        res, world = config.resources, config.num_learners
        options = {**res.ray_options("learner"), "enable_task_events": config.ray_task_events}
        if world == 1:
            return cls([calls.actor_class(LearnerActor, inline, **options).remote(*args)])
        if inline:
            raise ValueError(
                f"num_learners={world}: several learner ranks need Ray (the single-process "
                "mode runs one)"
            )
        actor = ray.remote(LearnerActor)
        ranks = [
            actor.options(**options, scheduling_strategy=_bundle(placement, rank)).remote(
                *args, rank=rank, world=world
            )
            for rank in range(world)
        ]
        group = cls(ranks, placement)
        try:
            host, port = ray.get(ranks[0].open_store.remote())
            ray.get([r.join.remote(host, port) for r in ranks])
        except BaseException:
            group.kill()
            raise
        return group

    def train(self, updates: int, active: list[int]) -> ray.ObjectRef:
        refs = [r.train.remote(updates, active) for r in self.ranks]
        return refs[0] if len(refs) == 1 else self.ranks[0].merge.remote(*refs)

    def weights(self) -> ray.ObjectRef:
        return self.ranks[0].weights.remote()  # every rank holds the same

    def state(self) -> ray.ObjectRef:
        return self.ranks[0].state.remote()

    def load(self, state: Any) -> list[ray.ObjectRef]:
        return [r.load.remote(state) for r in self.ranks]

    def load_weights(self, model_state: Any) -> list[ray.ObjectRef]:
        return [r.load_weights.remote(model_state) for r in self.ranks]

    def set_stage(self, stage: int) -> list[ray.ObjectRef]:
        return [r.set_stage.remote(stage) for r in self.ranks]

    def kill(self) -> None:
        for rank in self.ranks:
            calls.kill(rank)
        if self.placement is not None:
            remove_placement_group(self.placement)
            self.placement = None


def _bundle(placement: PlacementGroup | None, rank: int) -> Any:
    if placement is None:
        return "DEFAULT"
    return PlacementGroupSchedulingStrategy(
        placement_group=placement, placement_group_bundle_index=rank
    )
