"""Every launch script runs end to end with ``--smoke`` on a local 2-CPU Ray: all of its tasks
(suite names expanded) are collected, learned from, evaluated and checkpointed."""

import pytest
from launch_scripts import SCRIPTS, config_class

from mtrl.envs.registry import resolve_tasks
from mtrl.runtime import RunConfig, from_json, read_checkpoint, run, to_json
from mtrl.runtime.launch import build_config, parse_args


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_runs_with_smoke(ray_local, tmp_path, name: str) -> None:
    cls = config_class(name)
    args = parse_args(["--smoke", "--set", f"run_dir={tmp_path / name}"])
    config = build_config(cls, args)
    # A plain RunConfig: the actors cannot import the test's copy of the launch module (a
    # script run as __main__ is pickled by value instead).
    result = run(from_json(RunConfig, to_json(config)))
    tasks = [spec.id for spec in resolve_tasks(cls().tasks)]
    assert result.env_steps >= config.env_steps and result.updates >= 1
    assert result.checkpoints and result.checkpoints[-1].exists()
    assert read_checkpoint(result.checkpoints[-1])["tasks"] == tasks  # every task, none dropped
