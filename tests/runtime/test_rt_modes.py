"""One loop, two modes: a checkpoint written by the single-process mode resumes on Ray with
its counters continuing, and the reverse; ``mtrl eval`` reads both the same way."""

import json
import os
import signal
from dataclasses import replace

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.eval.checkpoint import load_checkpoint
from mtrl.runtime import Driver, Resources, RunConfig, read_checkpoint, run, train_local
from mtrl.search import SearchConfig

SMALL = RunConfig(
    tasks=("classic/CartPole", "dmc/pendulum-swingup"),
    envs_per_task=1,
    env_steps=40,
    acting=ActingConfig(SearchConfig(num_simulations=2), sampled_actions=2),
    learner=LearnerConfig(batch_size=8, lr=1e-3),
    warmup_env_steps=16,
    replay_ratio=0.5,
    steps_per_call=4,
    updates_per_call=4,
    eval_every=0,
    eval_episodes=1,
    log_every_s=1e9,
    # The test session's Ray has 2 CPUs.
    resources=Resources(worker_cpus=0.5, search_cpus=0.5, learner_cpus=1.0),
)


def _continues(first, second) -> None:
    """The resumed run picked up the earlier run's counters and kept counting."""
    assert second.env_steps > first.env_steps
    assert second.updates > first.updates > 0
    before = read_checkpoint(first.checkpoints[-1])["counters"]
    after = read_checkpoint(second.checkpoints[-1])["counters"]
    assert after["env_steps"] == second.env_steps and after["updates"] == second.updates
    # Evaluation k's seeds continue across the modes: one evaluation per run here.
    assert after["evaluations"] == before["evaluations"] + 1
    assert after["episodes"] >= before["episodes"]
    # Its results go back to the run's start: earlier evaluations kept, the clock continued.
    assert second.evaluations[:-1] == json.loads(json.dumps(first.evaluations))
    assert len(second.evaluations) == len(first.evaluations) + 1
    assert first.seconds >= before["seconds"] > 0 and second.seconds > before["seconds"]
    assert second.evaluations[-1]["seconds"] > before["seconds"]
    # So do its training episodes (the figures' training curves start at the run's start).
    assert second.train_episodes[: len(first.train_episodes)] == first.train_episodes
    assert len(second.train_episodes) > len(first.train_episodes)


def test_checkpoints_resume_across_the_two_modes(mtrl_cache, ray_local, tmp_path) -> None:
    """single process -> Ray -> single process, in one run folder, with one layout."""
    config = replace(SMALL, run_dir=str(tmp_path))
    first = train_local(config)
    second = run(replace(config, env_steps=80), resume=str(tmp_path))
    _continues(first, second)
    third = train_local(replace(config, env_steps=120), resume=str(tmp_path))
    _continues(second, third)
    for result in (first, second, third):
        loaded = load_checkpoint(result.checkpoints[-1])  # mtrl eval's reader, no special case
        assert list(loaded.tasks.names) == list(SMALL.tasks)
        assert loaded.env_steps == result.env_steps


def test_sigterm_does_not_wait_for_an_evaluation_in_flight(ray_local, tmp_path) -> None:
    """A long evaluation (here 1,000 episodes) still running when SIGTERM comes is dropped: the
    run checkpoints at once, and its counters say no evaluation happened."""
    config = replace(
        SMALL, run_dir=str(tmp_path), env_steps=10_000, eval_every=8, eval_episodes=1_000
    )

    def terminate_while_evaluating(driver: Driver) -> None:
        if driver.evaluated > len(driver.evaluations) and not driver.stop_reason:
            os.kill(os.getpid(), signal.SIGTERM)

    driver = Driver(config, hooks=(terminate_while_evaluating,))
    try:
        result = driver.run()
    finally:
        driver.shutdown()
    assert result.stopped_by == "SIGTERM" and result.evaluations == []
    assert read_checkpoint(result.checkpoints[-1])["counters"]["evaluations"] == 0
    assert result.env_steps < config.env_steps
