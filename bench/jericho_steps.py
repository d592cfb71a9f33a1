"""Steps per second of the Jericho games, under ``mtrl check-envs``' protocol.

Each game plays ``--steps`` uniformly random offered commands from ``reset(seed)``, resetting at
an episode's end, as ``mtrl check-envs jericho`` does; start-up is not timed. Printed per game:
steps/s by the wall clock and by this process's CPU time (the machine may be shared), and, where
the adapter has them, how many valid-command searches ran and how many states the cache served.

    python bench/jericho_steps.py --steps 20 --game-dir ../shared/jericho
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from mtrl.envs.check import random_action
from mtrl.envs.make import make_env
from mtrl.envs.registry import get_task
from mtrl.envs.settings import EnvSettings, TextSettings

GAMES = ("zork1", "detective", "omniquest", "acorncourt")


def measure(game: str, steps: int, seed: int, settings: EnvSettings) -> str:
    env = make_env(get_task(f"text/{game}"), settings, seed)
    rng = np.random.default_rng(seed)
    step = env.reset(seed=seed)
    episodes = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step = env.step(random_action(env, step, rng))
        if step.done:
            episodes += 1
            step = env.reset()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finder = getattr(env, "valid_actions", None)
    searches = f"{finder.searches:>8} {finder.hits:>5}" if finder else f"{'-':>8} {'-':>5}"
    env.close()
    return f"{game:11} {steps:>5} {steps / wall:>9.2f} {steps / cpu:>9.2f} {episodes:>8} {searches}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("games", nargs="*", default=list(GAMES), help="default: all four")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--game-dir", default="", help="default: $MTRL_JERICHO_DIR or the cache")
    args = parser.parse_args()
    settings = replace(EnvSettings(), text=TextSettings(game_dir=args.game_dir))
    header = f"{'game':11} {'steps':>5} {'wall st/s':>9} {'cpu st/s':>9} {'episodes':>8}"
    print(f"{header} searches  hits")
    for game in args.games:
        print(measure(game, args.steps, args.seed, settings), flush=True)


if __name__ == "__main__":
    main()
