"""Evaluation preprocesses like the run did: env settings travel in the checkpoint's config."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mtrl.envs.settings import EnvSettings
from mtrl.eval.checkpoint import env_settings, run_tasks

CUSTOM = EnvSettings().with_overrides({"atari.size": 84, "text.max_commands": 7})


def test_settings_are_read_back_from_the_config() -> None:
    config = json.loads(json.dumps({"env": dataclasses.asdict(CUSTOM)}))
    assert env_settings(config) == CUSTOM


def test_older_configs_mean_the_defaults_and_bad_ones_fail() -> None:
    assert env_settings({}) == EnvSettings()
    with pytest.raises(ValueError, match=r"unknown config key.*atari\.frame_size"):
        env_settings({"env": {"atari": {"frame_size": 84}}})


def test_specs_follow_the_settings() -> None:
    assert run_tasks(["atari/Pong"], EnvSettings())[0].obs_shape == (3, 64, 64)
    assert run_tasks(["atari/Pong"], CUSTOM)[0].obs_shape == (3, 84, 84)


def test_checkpoints_carry_their_settings(mtrl_cache: object, tmp_path) -> None:
    from mtrl.runtime import RunConfig, read_checkpoint, train_local

    config = RunConfig(
        tasks=("classic/CartPole",), envs_per_task=1, env_steps=4, eval_episodes=0, env=CUSTOM
    )
    result = train_local(dataclasses.replace(config, run_dir=str(tmp_path), steps_per_call=2))
    saved = json.loads(read_checkpoint(result.checkpoints[-1])["config"])
    assert env_settings(saved) == CUSTOM
