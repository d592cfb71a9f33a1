"""Atari through ale-py with the standard protocol (Machado et al. 2018; DQN frame handling).

Sticky actions (p = 0.25), the full 18-action set, ``frame_skip`` emulator frames per agent
step with a max over the last two frames (removes sprite flicker), a 108,000-frame episode cap,
frames resized with area interpolation, optional grayscale and frame stacking, optional random
no-op starts (evaluation), and a life-loss signal in ``info`` that never ends an episode.
"""

from __future__ import annotations

import re
from dataclasses import replace

import cv2
import numpy as np

from mtrl.envs.base import Action, Step, TaskEnv, all_legal, check_index_action
from mtrl.envs.settings import AtariSettings
from mtrl.envs.spec import TaskSpec


def rom_name(game: str) -> str:
    """ALE's ROM name for a CamelCase game name (``MsPacman`` -> ``ms_pacman``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower()


class AtariEnv(TaskEnv):
    def __init__(self, spec: TaskSpec, settings: AtariSettings, seed: int | None = None) -> None:
        from ale_py.env import AtariEnv as AleEnv

        self.spec = replace(
            spec,
            obs_shape=settings.obs_shape,
            action_repeat=settings.frame_skip,
            max_episode_steps=settings.max_frames // settings.frame_skip,
        )
        self.settings = settings
        self._env = AleEnv(
            game=rom_name(spec.name),
            obs_type="grayscale" if settings.grayscale else "rgb",
            frameskip=1,
            repeat_action_probability=settings.sticky_action_prob,
            full_action_space=True,
            max_num_frames_per_episode=settings.max_frames,
        )
        self._ale = self._env.ale
        self._actions = self._env._action_set
        height, width = self._env.observation_space.shape[:2]
        channels = 1 if settings.grayscale else 3
        self._screens = np.zeros((2, height, width, channels), dtype=np.uint8)
        self._stack = np.zeros(settings.obs_shape, dtype=np.uint8)
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._lives = 0
        self._needs_reset = True

    def reset(self, seed: int | None = None) -> Step:
        if seed is not None:
            self._seed, self._rng = seed, np.random.default_rng(seed)
        self._env.reset(seed=self._seed)
        self._seed = None  # later resets continue the emulator's random stream
        for _ in range(self._noop_count()):
            self._ale.act(self._actions[0])
            if self._ale.game_over():
                self._env.reset()
        self._lives = self._ale.lives()
        self._stack[:] = 0
        self._grab(0)
        self._screens[1] = self._screens[0]
        self._push_frame()
        self._needs_reset = False
        return Step(self._stack.copy(), 0.0, False, False, all_legal(self.spec.action.n))

    def step(self, action: Action) -> Step:
        if self._needs_reset:
            raise RuntimeError(f"{self.spec.id}: step() after the episode ended; call reset()")
        ale_action = self._actions[check_index_action(self.spec, action, all_legal(18))]
        reward = 0.0
        skip = self.settings.frame_skip
        for frame in range(skip):
            reward += self._ale.act(ale_action)
            if frame >= skip - 2:
                self._grab(frame - (skip - 2))
            if self._ale.game_over():
                self._grab(1)  # the final frame must be in the pooled pair
                break
        self._push_frame()
        terminated = self._ale.game_over(with_truncation=False)
        truncated = not terminated and self._ale.game_truncated()
        lives = self._ale.lives()
        info = {"life_loss": self.settings.life_loss_signal and lives < self._lives}
        self._lives = lives
        self._needs_reset = terminated or truncated
        legal = all_legal(self.spec.action.n)
        return Step(self._stack.copy(), reward, terminated, truncated, legal, info=info)

    def close(self) -> None:
        self._env.close()

    def _noop_count(self) -> int:
        if self.settings.noop_max == 0:
            return 0
        return int(self._rng.integers(1, self.settings.noop_max + 1))

    def _grab(self, slot: int) -> None:
        if self.settings.grayscale:
            self._ale.getScreenGrayscale(self._screens[slot, :, :, 0])
        else:
            self._ale.getScreenRGB(self._screens[slot])

    def _push_frame(self) -> None:
        pooled = self._screens[1]
        if self.settings.frame_skip > 1:
            pooled = np.maximum(self._screens[0], self._screens[1])
        size = self.settings.size
        frame = cv2.resize(pooled, (size, size), interpolation=cv2.INTER_AREA)
        frame = frame.reshape(size, size, -1).transpose(2, 0, 1)  # [c, H, W]
        channels = frame.shape[0]
        self._stack[:-channels] = self._stack[channels:]
        self._stack[-channels:] = frame
