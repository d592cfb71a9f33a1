"""Observation and protocol settings per suite: every preprocessing choice is a named field."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mtrl.overrides import replace_values


def cache_dir() -> Path:
    """Where generated games and build products are kept (``$MTRL_CACHE`` overrides)."""
    return Path(os.environ.get("MTRL_CACHE", Path.home() / ".cache" / "mtrl"))


@dataclass(frozen=True)
class AtariSettings:
    """The standard Atari protocol (Machado et al. 2018 sticky actions; DQN-style frames)."""

    size: int = 64  # frames resized to size x size
    grayscale: bool = False
    frame_stack: int = 1
    frame_skip: int = 4  # agent step = frame_skip emulator frames, max-pooled over the last two
    sticky_action_prob: float = 0.25
    max_frames: int = 108_000  # per episode, emulator frames
    noop_max: int = 0  # random no-op starts (1..noop_max no-ops at each reset) in training
    eval_noop_max: int = 30  # the same in evaluation episodes: see EnvSettings.for_evaluation
    life_loss_signal: bool = True  # report info["life_loss"]; never ends the episode

    def __post_init__(self) -> None:
        _check(self.size >= 8, "atari.size", self.size, "an integer >= 8")
        _check(self.frame_stack >= 1, "atari.frame_stack", self.frame_stack, "an integer >= 1")
        _check(self.frame_skip >= 1, "atari.frame_skip", self.frame_skip, "an integer >= 1")
        _check(
            0 <= self.sticky_action_prob < 1,
            "atari.sticky_action_prob",
            self.sticky_action_prob,
            "a probability in [0, 1)",
        )
        _check(self.noop_max >= 0, "atari.noop_max", self.noop_max, "an integer >= 0")
        _check(
            self.eval_noop_max >= 0, "atari.eval_noop_max", self.eval_noop_max, "an integer >= 0"
        )

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        channels = (1 if self.grayscale else 3) * self.frame_stack
        return (channels, self.size, self.size)


@dataclass(frozen=True)
class DmcSettings:
    """DeepMind Control on state vectors; actions in [-1, 1]; returns on the 0-1000 scale."""

    action_repeat: int = 0  # 0: the task's default (4; pendulum-swingup 8)
    pixels: bool = False  # render frames instead of states (needs MUJOCO_GL=egl)
    pixel_size: int = 64

    def __post_init__(self) -> None:
        _check(self.action_repeat >= 0, "dmc.action_repeat", self.action_repeat, "an integer >= 0")
        _check(self.pixel_size >= 8, "dmc.pixel_size", self.pixel_size, "an integer >= 8")


@dataclass(frozen=True)
class TextSettings:
    """Text games: observation text and a capped list of valid commands per step."""

    max_commands: int = 20
    game_dir: str = ""  # Jericho game files; "" means $MTRL_JERICHO_DIR or <cache>/jericho

    def __post_init__(self) -> None:
        _check(self.max_commands >= 1, "text.max_commands", self.max_commands, "an integer >= 1")


@dataclass(frozen=True)
class MinAtarSettings:
    """MinAtar (Young & Tian 2019) with the package's defaults: sticky actions 0.1 and
    difficulty ramping on. MinAtar has no episode cap of its own (Freeway ends after 2,500
    frames); ``max_episode_steps`` is ours, a truncation that bounds evaluation time."""

    sticky_action_prob: float = 0.1
    difficulty_ramping: bool = True
    max_episode_steps: int = 10_000  # agent steps (one MinAtar frame each)

    def __post_init__(self) -> None:
        _check(
            0 <= self.sticky_action_prob < 1,
            "minatar.sticky_action_prob",
            self.sticky_action_prob,
            "a probability in [0, 1)",
        )
        _check(
            self.max_episode_steps >= 1,
            "minatar.max_episode_steps",
            self.max_episode_steps,
            "an integer >= 1",
        )


@dataclass(frozen=True)
class EnvSettings:
    atari: AtariSettings = field(default_factory=AtariSettings)
    dmc: DmcSettings = field(default_factory=DmcSettings)
    text: TextSettings = field(default_factory=TextSettings)
    # Last, so that older configs (without it) and the groups' order in errors stay as they were.
    minatar: MinAtarSettings = field(default_factory=MinAtarSettings)

    def for_evaluation(self) -> EnvSettings:
        """The settings evaluation episodes run with: these, under the evaluation protocol.

        Atari evaluation starts each episode with 1..``atari.eval_noop_max`` random no-ops
        (default 30, the evaluation protocol of DQN, Mnih et al. 2015, that Atari-100k results
        are reported under), whatever training used. Every evaluation path derives its settings
        here (training-time evaluation, the Ray evaluator and ``mtrl eval``), so they agree;
        applying it twice changes nothing.
        """
        return replace(self, atari=replace(self.atari, noop_max=self.atari.eval_noop_max))

    def with_overrides(self, overrides: Mapping[str, Any]) -> EnvSettings:
        """Apply ``{"atari.size": 84, ...}`` (values or ``--set`` text); one-line errors name
        the key, unknown ones with the valid keys (``mtrl.overrides``, as for run configs)."""
        return replace_values(self, overrides)


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"bad setting {name}={value!r}: expected {expected}")
