"""Evaluation preprocesses like the run did: env settings travel in the checkpoint's config."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mtrl.envs.settings import EnvSettings
from mtrl.eval.checkpoint import env_settings, run_tasks

CUSTOM = EnvSettings().with_overrides({"atari.size": 84, "text.max_commands": 7})


@pytest.mark.parametrize("key", ["env", "env_settings"])  # Ray runtime, LocalTrainer
def test_settings_are_read_back_from_either_config(key: str) -> None:
    config = json.loads(json.dumps({key: dataclasses.asdict(CUSTOM)}))
    assert env_settings(config) == CUSTOM


def test_older_configs_mean_the_defaults_and_bad_ones_fail() -> None:
    assert env_settings({}) == EnvSettings()
    with pytest.raises(TypeError, match="frame_size"):
        env_settings({"env": {"atari": {"frame_size": 84}}})


def test_specs_follow_the_settings() -> None:
    assert run_tasks(["atari/Pong"], EnvSettings())[0].obs_shape == (3, 64, 64)
    assert run_tasks(["atari/Pong"], CUSTOM)[0].obs_shape == (3, 84, 84)


def test_local_checkpoints_carry_their_settings(mtrl_cache: object) -> None:
    from mtrl.agents.train import LocalTrainer, TrainConfig

    trainer = LocalTrainer(TrainConfig(tasks=("classic/CartPole",), envs_per_task=1), CUSTOM)
    try:
        config = json.loads(trainer.checkpoint()["config"])
    finally:
        trainer.env.close()
    assert env_settings(config) == CUSTOM
