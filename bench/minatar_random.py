"""Random-policy returns of the MinAtar games (mtrl/envs/data/minatar_reference.csv).

    python bench/minatar_random.py                    # 1000 episodes per game (~1 min, 1 core)
    python bench/minatar_random.py --episodes 100 --games Breakout,Freeway

Episode k of a game runs through mtrl's adapter under the default settings (sticky actions 0.1,
difficulty ramping on, the 10,000-step cap), its environment reset with seed k and its actions
drawn uniformly from the game's own action set by ``numpy.random.default_rng(k)``. Prints one
CSV row per game: the mean return, its standard error, the episodes and the seeds used.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mtrl.envs import get_suite
from mtrl.envs.make import make_env
from mtrl.envs.settings import EnvSettings


def random_returns(task_id: str, episodes: int, settings: EnvSettings) -> np.ndarray:
    env = make_env(task_id, settings)
    returns = np.zeros(episodes)
    for episode in range(episodes):
        rng = np.random.default_rng(episode)
        step = env.reset(seed=episode)
        while not step.done:
            step = env.step(int(rng.integers(env.spec.action.n)))
            returns[episode] += step.reward
    env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--games", default="", help="comma-separated names; default all five")
    args = parser.parse_args()
    specs = [s for s in get_suite("minatar") if not args.games or s.name in args.games.split(",")]
    print("task,random,stderr,episodes,seeds,seconds")
    for spec in specs:
        start = time.perf_counter()
        returns = random_returns(spec.id, args.episodes, EnvSettings())
        stderr = returns.std(ddof=1) / np.sqrt(len(returns))
        seconds = time.perf_counter() - start
        print(
            f"{spec.name},{returns.mean():.3f},{stderr:.3f},{args.episodes},"
            f"0-{args.episodes - 1},{seconds:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
