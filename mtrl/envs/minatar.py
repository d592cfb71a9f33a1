"""MinAtar (Young & Tian 2019, PyPI ``minatar``): five Atari analogues on a 10x10 grid.

Observations are the game's binary state ``[10, 10, C]`` transposed to ``[C, 10, 10]`` uint8
with values {0, 255}, so that the image encoder's ``/ 255`` maps them to {0, 1} like any frame.
Actions index the game's own minimal action set (3 to 6 actions), every one always legal.
Sticky actions (p = 0.1) and difficulty ramping follow MinAtar's defaults (``minatar.*``
settings). One agent step is one MinAtar frame. Seeding: ``reset(seed)`` reseeds the game's
one random stream (spawns and sticky actions); later resets continue it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mtrl.envs.base import Action, Step, TaskEnv, all_legal, check_index_action
from mtrl.envs.settings import MinAtarSettings
from mtrl.envs.spec import TaskSpec

INSTALL_HINT = "pip install minatar==1.0.15 (a main dependency of mtrl-scalezero)"


def load_environment_class() -> type:
    """MinAtar's ``Environment``, or a one-line error saying how to install it."""
    try:
        from minatar import Environment
    except ImportError as error:
        raise ImportError(f"MinAtar tasks need the minatar package: {INSTALL_HINT}") from error
    return Environment


class MinAtarEnv(TaskEnv):
    def __init__(self, spec: TaskSpec, settings: MinAtarSettings, seed: int | None = None) -> None:
        environment = load_environment_class()
        self.spec = replace(spec, max_episode_steps=settings.max_episode_steps)
        self.settings = settings
        self._env = environment(
            spec.source,
            sticky_action_prob=settings.sticky_action_prob,
            difficulty_ramping=settings.difficulty_ramping,
        )
        self._actions = list(self._env.minimal_action_set())
        if len(self._actions) != spec.action.n:
            raise ValueError(
                f"{spec.id}: minatar offers {len(self._actions)} actions, the registry "
                f"{spec.action.n}; is minatar==1.0.15 installed?"
            )
        self._legal = all_legal(spec.action.n)
        self._seed = seed
        self._steps = 0
        self._needs_reset = True

    def reset(self, seed: int | None = None) -> Step:
        seed = seed if seed is not None else self._seed
        if seed is not None:
            self._env.seed(seed)
        self._seed = None  # later resets continue the game's random stream
        self._env.reset()
        self._env.last_action = 0  # a sticky action never carries over from the last episode
        self._steps = 0
        self._needs_reset = False
        return Step(self._observe(), 0.0, False, False, self._legal)

    def step(self, action: Action) -> Step:
        if self._needs_reset:
            raise RuntimeError(f"{self.spec.id}: step() after the episode ended; call reset()")
        index = check_index_action(self.spec, action, self._legal)
        reward, terminal = self._env.act(self._actions[index])
        self._steps += 1
        terminated = bool(terminal)
        truncated = not terminated and self._steps >= self.spec.max_episode_steps
        self._needs_reset = terminated or truncated
        return Step(self._observe(), float(reward), terminated, truncated, self._legal)

    def _observe(self) -> np.ndarray:
        state = np.asarray(self._env.state(), dtype=bool)  # [10, 10, C]
        return np.ascontiguousarray(state.transpose(2, 0, 1), dtype=np.uint8) * np.uint8(255)
