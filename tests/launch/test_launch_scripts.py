"""Every launch script: a frozen, documented config that round-trips through JSON, takes
``--set`` overrides, and keeps the paper-scale defaults written out in the big ones."""

import dataclasses
import importlib

import pytest
from launch_scripts import LAUNCH, SCRIPTS, config_class

from mtrl.runtime import RunConfig, from_json, to_json
from mtrl.runtime.launch import build_config, parse_args


@pytest.fixture
def configs(monkeypatch) -> dict[str, type[RunConfig]]:
    monkeypatch.syspath_prepend(str(LAUNCH))  # as when run: the scripts import each other
    return {name: config_class(name) for name in SCRIPTS}


def test_each_script_has_a_documented_frozen_config(configs) -> None:
    for name, cls in configs.items():
        module = importlib.import_module(name)
        assert module.__doc__ and "launch/" in module.__doc__, name
        config = cls()
        assert dataclasses.is_dataclass(config) and isinstance(config, RunConfig)
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.env_steps = 1  # type: ignore[misc]
        assert from_json(cls, to_json(config)) == config, name


def test_paper_scale_defaults(configs) -> None:
    for name in ("atari26", "atari8", "dmc18", "text", "mixed"):
        config = configs[name]()
        assert config.acting.search.num_simulations == 50, name
        assert config.learner.lr == 1e-4, name
        assert config.model_preset == "base", name
    assert configs["atari26"]().env_steps == 400_000 * 26
    assert configs["atari8"]().env_steps == 400_000 * 8


def test_cli_overrides_apply_to_the_script_config(configs) -> None:
    args = parse_args(["--set", "env_steps=1234", "--set", "acting.search.num_simulations=4"])
    config = build_config(configs["tiny"], args)
    assert config.env_steps == 1234 and config.acting.search.num_simulations == 4
    assert config.tasks == configs["tiny"]().tasks
