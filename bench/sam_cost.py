"""The cost of task-based SAM per learner update against the plain update, in one process on
the same batches: launch/tiny.py's model and tasks (CartPole, cartpole-balance, a TextWorld
game), replay filled by a short collection.

    python bench/sam_cost.py --updates 20 --aggregator sum
"""

import argparse
import copy
import time

import numpy as np
import torch

from mtrl.agents.acting import ActingConfig, BatchedActor
from mtrl.agents.collect import Collector
from mtrl.agents.gradients import GradientConfig, SamConfig
from mtrl.agents.learner import Learner, LearnerConfig
from mtrl.agents.replay import ReplayConfig, TaskReplay
from mtrl.envs.vector import MultiTaskEnv
from mtrl.search import SearchConfig
from mtrl.world_models import WorldModel, preset

TASKS = ["classic/CartPole", "dmc/cartpole-balance", "text/tw-coin_collector-l1"]
K = 8


def filled_replays(model: WorldModel, env: MultiTaskEnv) -> dict[int, TaskReplay]:
    acting = ActingConfig(SearchConfig(algorithm="gumbel_muzero", num_simulations=2), K)
    config = ReplayConfig(capacity=5_000, sampled_actions=K)
    replays = {t: TaskReplay(env.tasks[t], config) for t in range(len(env.tasks))}
    collector = Collector(
        env, BatchedActor(model, env.tasks, acting), replays, torch.full((3,), 0.99)
    )
    collector.collect(200, temperature=1.0, seed=0)
    return replays


def seconds_per_update(learner: Learner, replays, updates: int) -> float:
    rng = np.random.default_rng(0)
    batches = [learner.sample(replays, rng) for _ in range(updates + 2)]
    for batch in batches[:2]:  # warm-up
        learner.train_step(batch)
    started = time.perf_counter()
    for batch in batches[2:]:
        learner.train_step(batch)
    return (time.perf_counter() - started) / updates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--aggregator", default="sum")
    p.add_argument("--rho", type=float, default=0.05)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    env = MultiTaskEnv(TASKS, envs_per_task=2, seed=0)
    model = WorldModel(env.tasks, preset("tiny", support_size=50))
    replays = filled_replays(model, env)
    env.close()
    gradients = GradientConfig(aggregator=args.aggregator, metrics_every=0)
    rows = {}
    for name, sam in (("plain", SamConfig()), ("sam", SamConfig(rho=args.rho))):
        config = LearnerConfig(batch_size=args.batch_size, gradients=gradients, sam=sam)
        learner = Learner(copy.deepcopy(model), env.tasks, config, K)
        rows[name] = seconds_per_update(learner, replays, args.updates)
        print(f"{name:6} {rows[name] * 1e3:8.1f} ms per update")
    print(
        f"SAM / plain: {rows['sam'] / rows['plain']:.2f}x per update "
        f"({len(TASKS)} tasks, aggregator {args.aggregator}, batch {args.batch_size})"
    )


if __name__ == "__main__":
    main()
