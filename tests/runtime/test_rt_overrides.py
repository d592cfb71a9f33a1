"""``--set`` overrides and the config JSON (issue 21, defects 2 and 2b): every field type
converts (optional, union, literal, nested tuples), all overrides are validated together,
and every mistake is one line naming the key. No Ray needed."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from launch_scripts import SCRIPTS, config_class

from mtrl.runtime import RunConfig, apply_overrides, from_json, to_json
from mtrl.runtime.launch import main


@dataclass(frozen=True)
class Inner:
    scale: float | None = None
    label: str | None = None
    mode: Literal["fast", "exact"] = "fast"
    enabled: bool = False


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    limit: int | None = None
    names: tuple[str, ...] | None = None
    pairs: tuple[tuple[str, float], ...] = ()
    loose: tuple = ()


def one_line_error(cls: type[RunConfig], argv: list[str], capsys) -> str:
    assert main(cls, [*argv, "--print-config"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and not captured.out, err
    return err


def test_none_default_fields_take_typed_values() -> None:
    """Defect 2: a field whose default is None kept the text ('4'), and later checks crashed."""
    config = apply_overrides(RunConfig(), ["learner.gradients.jacobian_chunk_size=4"])
    assert config.learner.gradients.jacobian_chunk_size == 4
    cleared = apply_overrides(config, ["learner.gradients.jacobian_chunk_size=none"])
    assert cleared.learner.gradients.jacobian_chunk_size is None
    outer = apply_overrides(
        Outer(),
        [
            "inner.scale=0.5",
            "inner.label=run-a",
            "limit=7",
            "names=a,b",
            "inner.mode=exact",
            "inner.enabled=true",
            'pairs=[["x", 1], ["y", 2.5]]',
            'loose=[["support_size", 20]]',
        ],
    )
    assert outer.inner == Inner(scale=0.5, label="run-a", mode="exact", enabled=True)
    assert outer.limit == 7 and outer.names == ("a", "b")
    assert outer.pairs == (("x", 1.0), ("y", 2.5)) and isinstance(outer.pairs[0][1], float)
    assert outer.loose == (("support_size", 20),)
    hash(outer)  # nested JSON lists came back as tuples
    assert apply_overrides(outer, ["inner.scale=null", "names=none"]) == dataclasses.replace(
        outer, inner=dataclasses.replace(outer.inner, scale=None), names=None
    )


def test_none_default_field_from_the_command_line(capsys) -> None:
    argv = ["--set", "learner.gradients.jacobian_chunk_size=4", "--print-config"]
    assert main(RunConfig, argv) == 0
    assert json.loads(capsys.readouterr().out)["learner"]["gradients"]["jacobian_chunk_size"] == 4


@pytest.mark.parametrize(
    "order",
    [
        ["num_workers=1", "num_search_servers=1"],
        ["num_search_servers=1", "num_workers=1"],
    ],
)
def test_overrides_are_validated_together(order: list[str]) -> None:
    """Defect 2b: mixed.py has 8 workers and 2 search servers; 1 and 1 is valid in any order."""
    config = apply_overrides(config_class("mixed")(), order)
    assert (config.num_workers, config.num_search_servers) == (1, 1)


def test_a_cross_field_error_names_only_what_is_wrong_in_the_result(capsys) -> None:
    cls = config_class("mixed")
    argv = ["--set", "num_search_servers=3", "--set", "num_workers=2"]
    err = one_line_error(cls, argv, capsys)
    assert err == "error: bad config value(s): num_search_servers=3"
    err = one_line_error(cls, ["--set", "num_workers=1", "--set", "num_replay_shards=1"], capsys)
    assert err == "error: bad config value(s): num_search_servers=2"  # the default, now too big


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("learner.lrr=1", "error: unknown config key 'learner.lrr'; valid here: batch_size, "),
        ("nope=1", "error: unknown config key 'nope'; valid here: tasks, "),
        ("env_steps.x=1", "error: unknown config key 'env_steps.x': env_steps has no sub-fields"),
        ("learner=1", "error: config key 'learner' is a group; set one of its fields"),
        ("env_steps=1.5", "error: bad value env_steps='1.5': input should be a valid integer"),
        (
            "learner.gradients.jacobian_chunk_size=abc",
            "error: bad value learner.gradients.jacobian_chunk_size='abc': input should be a "
            "valid integer",
        ),
        (
            "learner.gradients.upgrad.projector=scipy",
            "error: bad value learner.gradients.upgrad.projector='scipy': input should be "
            "'torch' or 'quadprog'",
        ),
        ("acting.mean_candidate=maybe", "error: bad value acting.mean_candidate='maybe': "),
        ("targets=[[1]]", "error: bad value targets='[[1]]': "),
        ("temperatures=[[0.5", "error: bad value temperatures='[[0.5': not valid JSON"),
        ("learner.gradients.jacobian_chunk_size=0", "error: learner.gradients: "),
        ("env_steps", "error: bad override 'env_steps': expected KEY=VALUE"),
    ],
)
def test_mistakes_are_one_line_naming_the_key(capsys, override: str, expected: str) -> None:
    assert one_line_error(RunConfig, ["--set", override], capsys).startswith(expected)


def test_json_format_is_the_checkpoints_and_old_json_loads() -> None:
    for name in SCRIPTS:
        cls = config_class(name)
        config = apply_overrides(cls(), ["learner.gradients.jacobian_chunk_size=2"])
        text = to_json(config)
        # The format checkpoints have always stored: dataclasses.asdict through json.dumps.
        assert text == json.dumps(dataclasses.asdict(config)), name
        assert from_json(cls, text) == config, name
    old: dict[str, Any] = json.loads(to_json(RunConfig(env_steps=7)))
    del old["learner"]["gradients"], old["seed"]  # written before these fields existed
    assert from_json(RunConfig, json.dumps(old)) == RunConfig(env_steps=7)
    old["replay"]["bogus"] = 1
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['replay.bogus'\]"):
        from_json(RunConfig, json.dumps(old))


def test_custom_resources_place_roles_and_round_trip() -> None:
    config = apply_overrides(
        RunConfig(),
        ['resources.worker_custom=[["rollout", 1]]', 'resources.learner_custom=[["learn", 2]]'],
    )
    assert config.resources.ray_options("worker") == {
        "num_cpus": 1.0,
        "num_gpus": 0.0,
        "resources": {"rollout": 1.0},
    }
    assert config.resources.ray_options("search")["resources"] == {}
    assert from_json(RunConfig, to_json(config)) == config
    with pytest.raises(ValueError, match="unknown role 'trainer'"):
        config.resources.ray_options("trainer")


def test_smoke_clears_custom_resources() -> None:
    from mtrl.runtime.smoke import smoke_overrides

    config = apply_overrides(RunConfig(), ['resources.search_custom=[["gpu_node", 1]]'])
    smoke = apply_overrides(config, smoke_overrides(config, resumed=False))
    assert smoke.resources.search_custom == () and smoke.resources.search_cpus == 0.5
