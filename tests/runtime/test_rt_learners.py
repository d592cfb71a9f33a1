"""Several learner ranks: the same weights on every rank, the mean-gradient update of one
learner, clear errors for bad settings and for ranks the cluster cannot place."""

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import ray
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mtrl.agents.acting import ActingConfig, BatchedActor
from mtrl.agents.batching import start_row_priorities
from mtrl.agents.collect import Collector
from mtrl.agents.gradients import GradientConfig, all_reduce_mean
from mtrl.agents.learner import Learner, LearnerConfig
from mtrl.agents.replay import ReplayConfig, TaskReplay
from mtrl.envs.vector import MultiTaskEnv
from mtrl.runtime import Driver, Resources, RunConfig, apply_overrides
from mtrl.runtime.learner_actor import LearnerActor
from mtrl.runtime.learner_group import LearnerGroup, PlacementError, reserve_learners
from mtrl.runtime.replay_shard import ReplayShard, replay_snapshot
from mtrl.search import SearchConfig
from mtrl.world_models import WorldModel, preset

TASKS = ("classic/CartPole", "classic/Pendulum")  # discrete and continuous, both quick
K = 2
ACTING = ActingConfig(SearchConfig(algorithm="gumbel_muzero", num_simulations=2), K)
REPLAY = ReplayConfig(capacity=1_000, sampled_actions=K)
AGGREGATORS = ("sum", "upgrad")  # loss- and gradient-based (test_grad_ddp: the rest)
STEPS = 2


@pytest.fixture(scope="module")
def collected(mtrl_cache):
    """Two tasks' replays, filled by a few dozen steps of the tiny model."""
    torch.manual_seed(0)
    env = MultiTaskEnv(list(TASKS), envs_per_task=1, seed=0)
    actor = BatchedActor(WorldModel(env.tasks, preset("tiny")), env.tasks, ACTING)
    replays = {t: TaskReplay(env.tasks[t], REPLAY) for t in range(len(TASKS))}
    Collector(env, actor, replays, torch.full((len(TASKS),), 0.99)).collect(40, 1.0, seed=1)
    env.close()
    return env.tasks, replays


def make_learner(tasks, weights, aggregator: str, reduce_fn=None, cls=Learner) -> Learner:
    model = WorldModel(tasks, preset("tiny"))
    model.load_state_dict(weights)
    config = LearnerConfig(batch_size=4, lr=1e-3, gradients=GradientConfig(aggregator=aggregator))
    return cls(model, tasks, config, K, reduce_fn)


class MeanOfBatches(Learner):
    """One learner whose per-task losses are the mean of the ranks' (its gradient is the mean
    of theirs): what two ranks with one batch each must reproduce."""

    def _losses(self, batches):
        parts = [Learner._losses(self, batch) for batch in batches]
        per_task = torch.stack([p[0] for p in parts]).mean(0)
        priorities = torch.cat([p[3] for p in parts])
        return per_task, parts[0][1] | parts[1][1], parts[0][2], priorities


def rank_worker(rank: int, world: int, store: str, data: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", store=dist.FileStore(store, world), rank=rank, world_size=2)
    try:
        saved = torch.load(data, weights_only=False)
        results = {}
        for name in AGGREGATORS:
            learner = make_learner(saved["tasks"], saved["weights"], name, all_reduce_mean)
            for _ in range(STEPS):
                learner.train_step(saved["batches"][rank])
            results[name] = learner.model.state_dict()
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_apply_the_mean_gradient_update(collected, tmp_path) -> None:
    tasks, replays = collected
    torch.manual_seed(1)
    weights = WorldModel(tasks, preset("tiny")).state_dict()
    sampler = make_learner(tasks, weights, "sum")
    batches = [sampler.sample(replays, np.random.default_rng(seed)) for seed in (10, 11)]
    data = tmp_path / "data.pt"
    torch.save({"tasks": tasks, "weights": weights, "batches": batches}, data)
    mp.spawn(rank_worker, args=(2, str(tmp_path / "store"), str(data), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name in AGGREGATORS:
        reference = make_learner(tasks, weights, name, cls=MeanOfBatches)
        for _ in range(STEPS):
            reference.train_step(batches)
        for key, expected in reference.model.state_dict().items():
            assert torch.equal(ranks[0][name][key], ranks[1][name][key]), (name, key)
            if key.endswith("attn.k.base.bias"):
                continue  # softmax ignores it: a zero gradient up to rounding, which Adam scales
            torch.testing.assert_close(ranks[0][name][key], expected, rtol=1e-4, atol=1e-6)
        assert not torch.equal(ranks[0][name]["task_embed"], weights["task_embed"])


def run_config(tmp_path: Path, **changes) -> RunConfig:
    config = RunConfig(
        tasks=TASKS,
        model_preset="tiny",
        model_overrides=(),
        acting=ACTING,
        replay=REPLAY,
        learner=LearnerConfig(batch_size=8, lr=1e-3, gradients=GradientConfig("upgrad")),
        num_learners=2,
        learner_placement="PACK",
        placement_timeout_s=60.0,
        resources=Resources(learner_cpus=1.0),
        run_dir=str(tmp_path / "run"),
    )
    return replace(config, **changes)


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_learner_ranks_keep_identical_weights(ray_local, collected, tmp_path) -> None:
    tasks, replays = collected
    config = run_config(tmp_path)
    tasks_ref, config_ref = ray.put(tasks), ray.put(config)
    shard = ray.remote(ReplayShard).remote(tasks_ref, [0, 1], REPLAY, config.run_dir)
    ray.get(shard.restore.remote({r.spec.id: replay_snapshot(r, 1_000) for r in replays.values()}))
    placement = reserve_learners(config)
    group = LearnerGroup.create(
        config, placement, tasks_ref, preset("tiny"), config_ref, [shard], {0: 0, 1: 0}
    )
    try:
        ranks = group.ranks
        start = [ray.get(r.weights.remote())["state"] for r in ranks]
        assert same_state(*start)  # rank 0's initial weights were broadcast
        own = ray.get([r.train.remote(2, [0, 1]) for r in ranks])
        assert own[0]["scalars"]["loss/value"] != own[1]["scalars"]["loss/value"]  # own data
        merged = ray.get(group.train(2, [0, 1]))
        assert merged["updates"] == 4 and merged["samples"] == 2 * 8
        after = [ray.get(r.weights.remote())["state"] for r in ranks]
        assert same_state(*after) and not same_state(start[0], after[0])
        saved = ray.get(group.state())
        ray.get(group.train(1, [1]))  # one task only
        ray.get(group.load(ray.put(saved)))  # back to the saved state on every rank
        loaded = [ray.get(r.weights.remote())["state"] for r in ranks]
        assert same_state(*loaded) and same_state(loaded[0], saved["model"]["state"])
        ray.get(group.set_stage(1))  # DPS: a new optimizer layout on every rank
        ray.get(group.train(1, [0, 1]))
        staged = [ray.get(r.weights.remote())["state"] for r in ranks]
        assert same_state(*staged) and not same_state(staged[0], loaded[0])
    finally:
        group.kill()
        ray.kill(shard)
    assert placement is not None and ray.util.placement_group_table(placement)["state"] == (
        "REMOVED"
    )


def test_the_learner_sends_each_update_priorities_to_the_shard(ray_local, collected, tmp_path):
    """Prioritized replay across actors: the shard samples by priority (rows from a uniform
    run count as new), and after an update it holds the learner's |V(o_0) - z_0| for the
    start rows of the sequences it trained on."""
    tasks, replays = collected
    prioritized = replace(REPLAY, priority_exponent=0.6)
    config = run_config(tmp_path, replay=prioritized, num_learners=1)
    shard = ray.remote(ReplayShard).remote(tasks, [0, 1], prioritized, config.run_dir)
    ray.get(shard.restore.remote({r.spec.id: replay_snapshot(r, 1_000) for r in replays.values()}))
    learner = LearnerActor(tasks, preset("tiny"), config, [shard], {0: 0, 1: 0})
    sent: list = []
    send = learner._send_priorities

    def record(samples, priorities) -> None:
        sent.append(start_row_priorities(samples, priorities))
        send(samples, priorities)

    learner._send_priorities = record  # type: ignore[method-assign]
    learner.train(2, [0, 1])
    assert len(sent) == 2 and {s.task_id for s, _, _ in sent[-1]} == {0, 1}
    snapshot = ray.get(shard.snapshot.remote(1_000))  # after the sends: one caller, in order
    for sample, rows, values in sent[-1]:
        stored = snapshot[tasks[sample.task_id].id]["priority"].numpy()
        last = {row: value for row, value in zip(rows, values, strict=True)}  # repeats: last
        assert all(stored[row] == np.float32(max(v, 1e-6)) for row, v in last.items())


def test_by_need_shares_of_the_shard_requests(ray_local, collected, tmp_path) -> None:
    """With ``batch_policy="by_need"`` the learner asks each shard for per-task counts that
    follow the learner's per-task loss EMA (the same rule as ``Learner.need_weights``)."""
    tasks, replays = collected
    learner_config = LearnerConfig(batch_size=12, lr=1e-3, batch_policy="by_need")
    config = run_config(tmp_path, learner=learner_config, num_learners=1)
    shard = ray.remote(ReplayShard).remote(tasks, [0, 1], REPLAY, config.run_dir)
    ray.get(shard.restore.remote({r.spec.id: replay_snapshot(r, 1_000) for r in replays.values()}))
    learner = LearnerActor(tasks, preset("tiny"), config, [shard], {0: 0, 1: 0})
    requests: list[dict] = []

    class Recording:  # the shard's handle, with its sample requests recorded
        def __getattr__(self, name: str):
            return getattr(shard, name)

        class sample:  # mimics the actor method: sample.remote(request, seed)
            @staticmethod
            def remote(request: dict, seed: int):
                requests.append(dict(request))
                return shard.sample.remote(request, seed)

    learner.shards = [Recording()]  # type: ignore[list-item]
    learner.train(1, [0, 1])  # requests this update's batch and prefetches the next one
    assert requests == [{0: 6, 1: 6}] * 2  # no loss seen yet: equal shares
    learner.learner.loss_ema[:] = torch.tensor([3.0, 1.0])  # CartPole's loss 3x Pendulum's
    learner.train(1, [0, 1])  # trains on the prefetched batch, requests the next
    assert requests[-1] == {0: 9, 1: 3}  # weights 1.5 and 0.5 of the mean loss
    ray.kill(shard)


def test_bad_learner_settings_name_the_key() -> None:
    with pytest.raises(ValueError, match="num_learners must be >= 1, got 0"):
        RunConfig(num_learners=0)
    with pytest.raises(ValueError, match=r"unknown learner_placement 'RANDOM'; valid: PACK"):
        apply_overrides(RunConfig(), ["learner_placement=RANDOM"])
    with pytest.raises(ValueError, match=r"num_learners=3 must divide learner.batch_size=64"):
        apply_overrides(RunConfig(), ["num_learners=3"])
    with pytest.raises(ValueError, match=r"leaves 1 sequences per rank for 2 tasks"):
        RunConfig(tasks=TASKS, learner=LearnerConfig(batch_size=4), num_learners=4)
    with pytest.raises(ValueError, match=r"placement_timeout_s=0"):
        RunConfig(placement_timeout_s=0)
    config = apply_overrides(RunConfig(), ["num_learners=4", "resources.learner_gpus=1"])
    assert config.num_learners == 4 and config.resources.learner_gpus == 1.0


@pytest.mark.parametrize(
    ("cpus", "strategy"), [(64.0, "SPREAD"), (0.5, "STRICT_SPREAD")], ids=["cpus", "one-node"]
)
def test_unplaceable_learners_fail_in_time(ray_local, tmp_path, cpus, strategy) -> None:
    config = run_config(
        tmp_path,
        resources=Resources(learner_cpus=cpus),
        learner_placement=strategy,
        placement_timeout_s=2.0,
    )
    started = time.perf_counter()
    with pytest.raises(PlacementError, match=rf"2 learner ranks of \{{'CPU': {cpus}\}} each"):
        Driver(config)
    assert time.perf_counter() - started < 30
    table = ray.util.placement_group_table().values()
    assert all(group["state"] == "REMOVED" for group in table)
