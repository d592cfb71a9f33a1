"""Gymnasium classic-control tasks: fast, small, for quick learning tests on a CPU."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mtrl.envs.base import (
    NO_DISCRETE_ACTIONS,
    Action,
    Step,
    TaskEnv,
    all_legal,
    check_index_action,
    check_vector_action,
)
from mtrl.envs.spec import TaskSpec


class ClassicEnv(TaskEnv):
    def __init__(self, spec: TaskSpec, seed: int | None = None) -> None:
        import gymnasium

        self.spec = replace(spec)
        self._env = gymnasium.make(spec.source, max_episode_steps=spec.max_episode_steps)
        self._seed = seed
        self._legal = NO_DISCRETE_ACTIONS if spec.action.is_continuous else all_legal(spec.action.n)
        self._needs_reset = True
        if spec.action.is_continuous:
            space = self._env.action_space
            self._low, self._high = space.low.astype(np.float32), space.high.astype(np.float32)

    def reset(self, seed: int | None = None) -> Step:
        obs, _ = self._env.reset(seed=seed if seed is not None else self._seed)
        self._seed = None  # later resets continue the environment's random stream
        self._needs_reset = False
        return Step(np.asarray(obs, dtype=np.float32), 0.0, False, False, self._legal)

    def step(self, action: Action) -> Step:
        if self._needs_reset:
            raise RuntimeError(f"{self.spec.id}: step() after the episode ended; call reset()")
        obs, reward, terminated, truncated, _ = self._env.step(self._to_env(action))
        self._needs_reset = terminated or truncated
        obs = np.asarray(obs, dtype=np.float32)
        return Step(obs, float(reward), bool(terminated), bool(truncated), self._legal)

    def close(self) -> None:
        self._env.close()

    def _to_env(self, action: Action) -> int | np.ndarray:
        if not self.spec.action.is_continuous:
            return check_index_action(self.spec, action, self._legal)
        unit = check_vector_action(self.spec, action)  # [-1, 1] -> the task's own bounds
        return self._low + (unit + 1.0) * 0.5 * (self._high - self._low)
