"""Random-policy returns of the MinAtar games (mtrl/envs/data/minatar_reference.csv).

    python bench/minatar_random.py                    # 1000 episodes per game (~1 min, 1 core)
    python bench/minatar_random.py --episodes 100 --games Breakout,Freeway
    python bench/minatar_random.py --episodes 20 --constant   # each action held all episode

Episode k of a game runs through mtrl's adapter under the default settings (sticky actions 0.1,
difficulty ramping on, the 10,000-step cap), its environment reset with seed k and its actions
drawn uniformly from the game's own action set by ``numpy.random.default_rng(k)``. Prints one
CSV row per game: the mean return, its standard error, the episodes and the seeds used.
``--constant`` plays each action of the game's set in every step instead, one row per action:
how far a single preference goes (Freeway's "up" scores far above its 5x-random bar).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mtrl.envs import get_suite
from mtrl.envs.make import make_env
from mtrl.envs.settings import EnvSettings


def random_returns(
    task_id: str, episodes: int, settings: EnvSettings, constant: int | None = None
) -> np.ndarray:
    """Uniform random actions, or ``constant`` (an index into the game's action set) always."""
    env = make_env(task_id, settings)
    returns = np.zeros(episodes)
    for episode in range(episodes):
        rng = np.random.default_rng(episode)
        step = env.reset(seed=episode)
        while not step.done:
            action = constant if constant is not None else int(rng.integers(env.spec.action.n))
            step = env.step(action)
            returns[episode] += step.reward
    env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--games", default="", help="comma-separated names; default all five")
    parser.add_argument("--constant", action="store_true", help="one row per constant action")
    args = parser.parse_args()
    specs = [s for s in get_suite("minatar") if not args.games or s.name in args.games.split(",")]
    print("task,policy,return,stderr,episodes,seeds,seconds")
    for spec in specs:
        policies = range(spec.action.n) if args.constant else [None]
        for constant in policies:
            start = time.perf_counter()
            returns = random_returns(spec.id, args.episodes, EnvSettings(), constant)
            stderr = returns.std(ddof=1) / np.sqrt(len(returns))
            policy = "random" if constant is None else f"always action {constant}"
            print(
                f"{spec.name},{policy},{returns.mean():.3f},{stderr:.3f},{args.episodes},"
                f"0-{args.episodes - 1},{time.perf_counter() - start:.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
