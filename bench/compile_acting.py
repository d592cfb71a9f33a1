"""CPU acting with the recurrent step compiled (``acting.compile_step``) against eager, in
the same process: ms per ``BatchedActor.act`` call (launch/tiny.py's tasks by default), and
the compile time paid once per batch layout.

    python bench/compile_acting.py --envs-per-task 4 --calls 40
    python bench/compile_acting.py --tasks minatar/Breakout --envs-per-task 2
"""

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from mtrl.agents.acting import ActingConfig, BatchedActor
from mtrl.envs.vector import ActionBatch, MultiTaskEnv
from mtrl.search import SearchConfig
from mtrl.world_models import WorldModel, preset

TASKS = ("classic/CartPole", "dmc/cartpole-balance", "text/tw-coin_collector-l1")


def timed_calls(actor: BatchedActor, env: MultiTaskEnv, calls: int) -> list[float]:
    obs, times = env.reset(), []
    for seed in range(calls):
        started = time.perf_counter()
        result = actor.act(obs, temperature=1.0, seed=seed)
        times.append(time.perf_counter() - started)
        obs = env.step(ActionBatch(result.action_index, result.action_vector)).obs
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--envs-per-task", type=int, default=4)
    p.add_argument("--calls", type=int, default=40)
    p.add_argument("--simulations", type=int, default=8)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    env = MultiTaskEnv(args.tasks, args.envs_per_task, seed=0)
    torch.manual_seed(0)
    model = WorldModel(env.tasks, preset(args.preset, support_size=50)).eval()
    search = SearchConfig(algorithm="gumbel_muzero", num_simulations=args.simulations)
    base = ActingConfig(search, sampled_actions=8)
    rows = {}
    for name, config in (("eager", base), ("compiled", replace(base, compile_step=True))):
        actor = BatchedActor(model, env.tasks, config)
        first = timed_calls(actor, env, 1)[0]  # compiles here when compiled
        times = np.array(timed_calls(actor, env, args.calls))
        rows[name] = (first, np.median(times) * 1e3, np.percentile(times, 90) * 1e3)
        median, p90 = rows[name][1:]
        print(f"{name:9} first call {first:6.1f}s  median {median:6.1f} ms  p90 {p90:6.1f} ms")
    print(f"compiled / eager, median ms per act: {rows['compiled'][1] / rows['eager'][1]:.2f}")
    env.close()


if __name__ == "__main__":
    main()
