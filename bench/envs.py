"""Env steps/s of mtrl's batched stepper against plain gymnasium vector envs on the same tasks.

For every suite, ``MultiTaskEnv`` steps all its tasks in one batch (``--envs`` per task); the
peer steps the same tasks with one gymnasium ``SyncVectorEnv`` per task (gymnasium's vector
envs need one observation space, so they cannot mix tasks), with equivalent preprocessing.
For Atari, ale-py's threaded C++ ``AtariVectorEnv`` is shown too (one game per env).
The same number of agent steps per task is timed for each; the ratio is ours / peer.

    python bench/envs.py                      # classic, dmc (4 tasks), atari (4 games)
    python bench/envs.py --suites atari26 dmc18 --steps 200
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from mtrl.envs.registry import resolve_tasks
from mtrl.envs.spec import TaskSpec
from mtrl.envs.vector import ActionBatch, MultiTaskEnv

os.environ.setdefault("MUJOCO_GL", "egl")
logging.getLogger("absl").setLevel(logging.ERROR)  # dm_control's model-compiler deprecations


class DmcGym(gym.Env):
    """dm_control as a plain gymnasium env (flattened states, action repeat), the peer's view."""

    def __init__(self, spec: TaskSpec) -> None:
        from dm_control import suite

        domain, task = spec.name.split("-", 1)
        self._env = suite.load(domain, task)
        self._repeat = spec.action_repeat
        dim = spec.obs_shape[0]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (spec.action.dim,), np.float32)

    def _flat(self, time_step) -> np.ndarray:
        return np.concatenate([np.ravel(v) for v in time_step.observation.values()]).astype(
            np.float32
        )

    def reset(self, *, seed=None, options=None):
        return self._flat(self._env.reset()), {}

    def step(self, action):
        reward = 0.0
        for _ in range(self._repeat):
            time_step = self._env.step(action)
            reward += time_step.reward or 0.0
            if time_step.last():
                break
        return self._flat(time_step), reward, False, time_step.last(), {}


def gym_factory(spec: TaskSpec) -> Callable[[], gym.Env]:
    if spec.suite == "atari":
        import ale_py

        gym.register_envs(ale_py)

        def make() -> gym.Env:
            env = gym.make(
                spec.source, frameskip=1, repeat_action_probability=0.25, full_action_space=True
            )
            return gym.wrappers.AtariPreprocessing(
                env, noop_max=0, frame_skip=4, screen_size=64, grayscale_obs=False
            )

        return make
    if spec.suite == "dmc":
        return lambda: DmcGym(spec)
    if spec.suite == "classic":
        return lambda: gym.make(spec.source)
    raise ValueError(f"no gymnasium peer for {spec.id}")


def time_ours(specs: tuple[TaskSpec, ...], envs: int, steps: int) -> float:
    env = MultiTaskEnv([s.id for s in specs], envs_per_task=envs)
    obs = env.reset()
    rng = np.random.default_rng(0)
    # Actions are drawn before timing (every task here has all its actions legal at all times).
    choices = np.maximum(obs.legal.sum(axis=1), 1)
    batches = [
        ActionBatch(
            (rng.random(env.num_envs) * choices).astype(np.int64),
            rng.uniform(-1, 1, (env.num_envs, env.tasks.max_action_dim)).astype(np.float32),
        )
        for _ in range(steps)
    ]
    start = time.perf_counter()
    for actions in batches:
        env.step(actions)
    elapsed = time.perf_counter() - start
    env.close()
    return steps * env.num_envs / elapsed


def time_steps(vec, batches: list) -> float:
    """Seconds to step a vector env through pre-drawn action batches, then close it."""
    start = time.perf_counter()
    for actions in batches:
        vec.step(actions)
    elapsed = time.perf_counter() - start
    vec.close()
    return elapsed


def time_gym(specs: tuple[TaskSpec, ...], envs: int, steps: int) -> float:
    total_time = 0.0
    for spec in specs:
        vec = gym.vector.SyncVectorEnv([gym_factory(spec)] * envs)
        vec.reset(seed=0)
        vec.action_space.seed(0)
        total_time += time_steps(vec, [vec.action_space.sample() for _ in range(steps)])
    return steps * envs * len(specs) / total_time


def time_ale_vector(specs: tuple[TaskSpec, ...], envs: int, steps: int) -> float:
    from ale_py.vector_env import AtariVectorEnv

    from mtrl.envs.atari import rom_name

    total_time = 0.0
    for spec in specs:
        vec = AtariVectorEnv(
            rom_name(spec.name),
            envs,
            repeat_action_probability=0.25,
            full_action_space=True,
            img_height=64,
            img_width=64,
            grayscale=False,
            stack_num=1,
            noop_max=0,
            reward_clipping=False,
            use_fire_reset=False,
        )
        vec.reset(seed=0)
        total_time += time_steps(vec, [np.random.randint(0, 18, envs) for _ in range(steps)])
    return steps * envs * len(specs) / total_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--suites",
        nargs="+",
        default=[
            "classic",
            "dmc/cartpole-swingup",
            "dmc/walker-walk",
            "dmc/cheetah-run",
            "dmc/reacher-easy",
            "atari/Pong",
            "atari/Boxing",
            "atari/Breakout",
            "atari/Seaquest",
        ],
    )
    parser.add_argument("--envs", type=int, default=4, help="environments per task")
    parser.add_argument("--steps", type=int, default=150, help="batched steps timed")
    args = parser.parse_args()
    specs = resolve_tasks(args.suites)
    groups: dict[str, tuple[TaskSpec, ...]] = {}
    for spec in specs:
        groups[spec.suite] = (*groups.get(spec.suite, ()), spec)
    print(f"{args.envs} envs per task, {args.steps} steps; agent steps/s (higher is better)")
    print(f"{'suite':8} {'tasks':>5} {'mtrl':>9} {'gym sync':>9} {'ratio':>6}  peers")
    for suite, group in groups.items():
        if suite == "text":
            print("text      (no gymnasium vector peer for text games; skipped)")
            continue
        ours = time_ours(group, args.envs, args.steps)
        peer = time_gym(group, args.envs, args.steps)
        extra = ""
        if suite == "atari":
            ale = time_ale_vector(group, args.envs, args.steps)
            extra = f"ale-py AtariVectorEnv (C++ threads): {ale:.0f}/s, ratio {ours / ale:.2f}"
        print(f"{suite:8} {len(group):>5} {ours:>9.0f} {peer:>9.0f} {ours / peer:>6.2f}  {extra}")


if __name__ == "__main__":
    main()
