"""DeepMind Control Suite on state vectors (or rendered frames), actions in [-1, 1].

An agent step repeats the action ``action_repeat`` times and sums the rewards, so returns stay
on the usual 0-1000 scale of a 1000-step episode. dm_control ends every episode of these tasks
by its time limit (discount 1 at the last step): that is a truncation, not a termination.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from mtrl.envs.base import NO_DISCRETE_ACTIONS, Action, Step, TaskEnv, check_vector_action
from mtrl.envs.settings import DmcSettings
from mtrl.envs.spec import Modality, TaskSpec


class DmcEnv(TaskEnv):
    def __init__(self, spec: TaskSpec, settings: DmcSettings, seed: int | None = None) -> None:
        self.settings = settings
        repeat = settings.action_repeat or spec.action_repeat
        steps = spec.max_episode_steps * spec.action_repeat // repeat
        self.spec = replace(spec, action_repeat=repeat, max_episode_steps=steps)
        if settings.pixels:
            size = settings.pixel_size
            self.spec = replace(self.spec, modality=Modality.IMAGE, obs_shape=(3, size, size))
        self._seed = seed
        self._env = self._load(seed)
        self._needs_reset = True

    def _load(self, seed: int | None):  # -> dm_control.rl.control.Environment
        # Headless machines have no display for GLFW; EGL renders offscreen (software or GPU).
        os.environ.setdefault("MUJOCO_GL", "egl")
        from dm_control import suite

        domain, task = self.spec.name.split("-", 1)
        return suite.load(domain, task, task_kwargs={"random": seed})

    def reset(self, seed: int | None = None) -> Step:
        if seed is not None and seed != self._seed:
            self._env.close()
            self._seed, self._env = seed, self._load(seed)
        time_step = self._env.reset()
        self._needs_reset = False
        return Step(self._observe(time_step), 0.0, False, False, NO_DISCRETE_ACTIONS)

    def step(self, action: Action) -> Step:
        if self._needs_reset:
            raise RuntimeError(f"{self.spec.id}: step() after the episode ended; call reset()")
        vector = check_vector_action(self.spec, action)
        reward = 0.0
        for _ in range(self.spec.action_repeat):
            time_step = self._env.step(vector)
            reward += time_step.reward or 0.0
            if time_step.last():
                break
        ended = time_step.last()
        terminated = ended and time_step.discount == 0.0
        self._needs_reset = ended
        obs = self._observe(time_step)
        return Step(obs, reward, terminated, ended and not terminated, NO_DISCRETE_ACTIONS)

    def close(self) -> None:
        self._env.close()

    def _observe(self, time_step) -> np.ndarray:  # time_step: dm_env.TimeStep
        if self.settings.pixels:
            size = self.settings.pixel_size
            frame = self._env.physics.render(height=size, width=size, camera_id=0)
            return np.ascontiguousarray(frame.transpose(2, 0, 1))
        parts = [
            np.asarray(v, dtype=np.float32).reshape(-1) for v in time_step.observation.values()
        ]
        return np.concatenate(parts)
