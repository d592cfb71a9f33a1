"""Random-policy returns of the MinAtar games (mtrl/envs/data/minatar_reference.csv).

    python bench/minatar_random.py                    # 1000 episodes per game (~1 min, 1 core)
    python bench/minatar_random.py --episodes 100 --games Breakout,Freeway
    python bench/minatar_random.py --episodes 20 --constant   # each action held all episode
    python bench/minatar_random.py --episodes 100 --hold 2    # εz-greedy's holds, ε = 1

Episode k of a game runs through mtrl's adapter under the default settings (sticky actions 0.1,
difficulty ramping on, the 10,000-step cap), its environment reset with seed k and its actions
drawn uniformly from the game's own action set by ``numpy.random.default_rng(k)``. Prints one
CSV row per game: the mean return, its standard error, the episodes and the seeds used.
``--constant`` plays each action of the game's set in every step instead, one row per action:
how far a single preference goes (Freeway's "up" scores far above its 5x-random bar).
``--hold MU`` holds each random action for a zeta(MU)-distributed number of steps (at most
100), as ``acting.explore_hold`` does while collecting: what that exploration reaches alone.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mtrl.agents.exploration import hold_length
from mtrl.envs import get_suite
from mtrl.envs.make import make_env
from mtrl.envs.settings import EnvSettings

MAX_HOLD = 100  # ActingConfig.explore_max_hold's default


def random_returns(
    task_id: str,
    episodes: int,
    settings: EnvSettings,
    constant: int | None = None,
    hold: float = 0.0,
) -> np.ndarray:
    """Uniform random actions (each held for zeta(``hold``) steps if ``hold``), or
    ``constant`` (an index into the game's action set) always."""
    env = make_env(task_id, settings)
    returns = np.zeros(episodes)
    for episode in range(episodes):
        rng = np.random.default_rng(episode)
        step, action, left = env.reset(seed=episode), 0, 0
        while not step.done:
            if constant is not None:
                action = constant
            elif left == 0:
                action = int(rng.integers(env.spec.action.n))
                left = hold_length(rng, hold, MAX_HOLD) if hold else 1
            left -= 1
            step = env.step(action)
            returns[episode] += step.reward
    env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--games", default="", help="comma-separated names; default all five")
    parser.add_argument("--constant", action="store_true", help="one row per constant action")
    parser.add_argument("--hold", type=float, default=0.0, help="zeta exponent of held actions")
    args = parser.parse_args()
    specs = [s for s in get_suite("minatar") if not args.games or s.name in args.games.split(",")]
    print("task,policy,return,stderr,episodes,seeds,seconds")
    for spec in specs:
        policies = range(spec.action.n) if args.constant else [None]
        for constant in policies:
            start = time.perf_counter()
            returns = random_returns(spec.id, args.episodes, EnvSettings(), constant, args.hold)
            stderr = returns.std(ddof=1) / np.sqrt(len(returns))
            policy = "random" if constant is None else f"always action {constant}"
            policy += f" held zeta({args.hold:g})" if args.hold and constant is None else ""
            print(
                f"{spec.name},{policy},{returns.mean():.3f},{stderr:.3f},{args.episodes},"
                f"0-{args.episodes - 1},{time.perf_counter() - start:.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
