"""Every big launch script runs end to end on a local Ray with a tiny budget and the tiny model:
its task list (suite names included), topology and resources survive a real run."""

from dataclasses import replace

import pytest
from launch_scripts import LAUNCH, SCRIPTS, config_class

from mtrl.agents.learner import LearnerConfig
from mtrl.runtime import Resources, RunConfig, from_json, run, to_json
from mtrl.search import SearchConfig

BIG_SCRIPTS = sorted(name for name in SCRIPTS if name != "tiny")


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG_SCRIPTS)
def test_script_config_runs(ray_local, monkeypatch, tmp_path, name: str) -> None:
    monkeypatch.syspath_prepend(str(LAUNCH))  # as when run: the scripts import each other
    config = config_class(name)()
    small = replace(
        config,
        run_dir=str(tmp_path / name),
        model_preset="tiny",
        model_overrides=(),
        num_workers=min(config.num_workers, 2),
        num_search_servers=1,
        num_replay_shards=min(config.num_replay_shards, 2),
        envs_per_task=1,
        env_steps=1,  # one collect call per worker, then the final checkpoint
        acting=replace(config.acting, search=SearchConfig(num_simulations=2)),
        learner=LearnerConfig(batch_size=8, lr=1e-3),
        warmup_env_steps=10**9,  # collection only: learning is covered by the tiny e2e test
        steps_per_call=1,
        eval_episodes=0,
        resources=Resources(worker_cpus=0, search_cpus=0, learner_cpus=0),
    )
    # A plain RunConfig: the actors cannot import the test's copy of the launch module (a
    # script run as __main__ is pickled by value instead).
    result = run(from_json(RunConfig, to_json(small)))
    assert result.env_steps >= 1
    assert result.checkpoints and result.checkpoints[-1].exists()
