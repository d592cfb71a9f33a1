"""The single-process mode (``train_local``): the Ray runtime's driver with every actor in this
process. Runs, evaluates on schedule, checkpoints in the one layout, and keeps the run rules."""

import json
import math
from dataclasses import replace

import pytest

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.envs.batch import TaskSet
from mtrl.envs.registry import resolve_tasks
from mtrl.envs.settings import EnvSettings
from mtrl.runtime import RunConfig, read_checkpoint, train_local
from mtrl.runtime import driver as driver_module
from mtrl.runtime.actors import Evaluator, SearchServer
from mtrl.runtime.checkpoint import CheckpointError, list_checkpoints
from mtrl.runtime.config import to_json
from mtrl.runtime.results import RunResult, write_result
from mtrl.search import SearchConfig
from mtrl.world_models import preset

TINY = RunConfig(
    tasks=("classic/CartPole", "dmc/pendulum-swingup", "text/tw-coin_collector-l1"),
    envs_per_task=1,
    env_steps=90,
    acting=ActingConfig(SearchConfig(num_simulations=3), sampled_actions=3),
    learner=LearnerConfig(batch_size=6, lr=1e-3, reanalyse_fraction=0.25),
    warmup_env_steps=30,
    steps_per_call=4,
    updates_per_call=4,
    eval_every=1000,  # at the start and the end: episodes are long next to this budget
    eval_at_start=True,
    eval_episodes=1,
    log_every_s=1e9,
)


def test_tiny_run_trains_evaluates_every_task_and_checkpoints(mtrl_cache, tmp_path) -> None:
    """Reanalyse included: its search reads each task's discount from the sampled slices."""
    result = train_local(replace(TINY, run_dir=str(tmp_path / "run")))
    assert result.env_steps >= 90 and result.updates > 0
    assert [e["env_steps"] for e in result.evaluations] == [0, result.env_steps]
    assert set(result.evaluations[-1]["returns"]) == set(TINY.tasks)
    saved = list_checkpoints(tmp_path / "run")
    assert saved == result.checkpoints
    state = read_checkpoint(saved[-1])
    assert state["counters"]["env_steps"] == result.env_steps
    assert state["counters"]["evaluations"] == 2
    losses = [float(v) for k, v in _csv(tmp_path / "run").items() if k.startswith("loss/")]
    assert losses and all(math.isfinite(v) for v in losses)
    raw = json.loads((tmp_path / "run" / "result.json").read_text())
    assert raw["env_steps"] == result.env_steps and raw["config"]["tasks"] == list(TINY.tasks)
    assert raw["evaluations"] == json.loads(json.dumps(result.evaluations))
    assert len(raw["train_episodes"]) == len(result.train_episodes)


def test_result_json_of_an_earlier_session_is_kept(tmp_path) -> None:
    run_dir = tmp_path / "run"
    first = RunResult(10, 2, run_dir, [], [], [(1.0, "a", 3.0)], {}, 1.0, "", {"a": math.inf})
    write_result(first, to_json(TINY))
    assert json.loads((run_dir / "result.json").read_text())["targets"] == {"a": None}
    write_result(replace(first, env_steps=20), to_json(TINY))
    assert json.loads((run_dir / "result.json").read_text())["env_steps"] == 20
    assert json.loads((run_dir / "result-000000000010.json").read_text())["env_steps"] == 10


def _csv(run_dir) -> dict[str, str]:
    """The last value of every tag in the run's scalars.csv."""
    import csv

    with open(run_dir / "scalars.csv") as f:
        return {row["tag"]: row["value"] for row in csv.DictReader(f)}


def test_targets_of_other_tasks_are_ignored_and_unknown_ones_refused(mtrl_cache, tmp_path) -> None:
    """One launcher's targets serve any subset of its tasks; a typo is still an error."""
    specs = resolve_tasks(TINY.tasks)
    others = replace(TINY, targets=(("atari/Pong", 1.0), ("classic/CartPole", 100.0)))
    assert others.task_targets(specs)["classic/CartPole"] == 100.0
    assert "atari/Pong" not in others.task_targets(specs)
    with pytest.raises(ValueError, match=r"targets for unknown tasks: \['atari/Pongg'\]"):
        train_local(replace(TINY, run_dir=str(tmp_path), targets=(("atari/Pongg", 1.0),)))
    with pytest.raises(ValueError, match=r"unknown tasks: \['atari'\]"):  # a suite is no task
        replace(TINY, targets=(("atari", 1.0),)).task_targets(specs)


def test_task_discounts_of_unknown_tasks_or_suites_are_refused(mtrl_cache, tmp_path) -> None:
    replay = ReplayConfig(task_discounts=(("atarii", 0.9),))
    with pytest.raises(ValueError, match=r"unknown tasks or suites: \['atarii'\]"):
        train_local(replace(TINY, run_dir=str(tmp_path), replay=replay))


@pytest.mark.parametrize(
    ("every", "episodes", "at_start", "expected"),
    [(0, 1, True, [0, 12]), (1000, 0, True, []), (8, 1, False, [8, 12]), (8, 1, True, [0, 8, 12])],
)
def test_evaluation_schedule(
    mtrl_cache, tmp_path, every: int, episodes: int, at_start: bool, expected: list[int]
) -> None:
    """eval_every 0: only at the end; no episodes: never; eval_at_start: also at step 0."""
    config = replace(
        TINY,
        tasks=("classic/CartPole",),
        envs_per_task=2,
        env_steps=12,
        steps_per_call=2,
        warmup_env_steps=6,
        eval_every=every,
        eval_at_start=at_start,
        eval_episodes=episodes,
        run_dir=str(tmp_path),
    )
    result = train_local(config)
    assert [e["env_steps"] for e in result.evaluations] == expected


def test_training_episodes_are_recorded_in_order_with_their_time(
    mtrl_cache, tmp_path, monkeypatch
) -> None:
    config = replace(
        TINY, tasks=("classic/CartPole",), env_steps=200, eval_episodes=0, run_dir=str(tmp_path)
    )
    result = train_local(config)
    seconds = [s for s, _, _ in result.train_episodes]
    assert len(seconds) > 4 and seconds == sorted(seconds) and seconds[0] > 0
    assert {task for _, task, _ in result.train_episodes} == {"classic/CartPole"}
    # Bounded (runs last days): the newest are kept.
    monkeypatch.setattr(driver_module, "TRAIN_EPISODES_KEPT", 3)
    again = train_local(replace(config, run_dir=str(tmp_path / "again")))
    ended = read_checkpoint(again.checkpoints[-1])["counters"]["episodes"]
    kept = [s for s, _, _ in again.train_episodes]
    assert ended > 4 and len(kept) == 3 and kept == sorted(kept)


def test_run_ends_when_an_evaluation_solves_the_last_task(mtrl_cache, tmp_path) -> None:
    """Once every task is solved nothing is left to collect or train: the run ends after that
    evaluation (with the final evaluation of the weights it stopped with)."""
    config = replace(
        TINY,
        tasks=("classic/CartPole",),
        env_steps=400,
        eval_every=40,
        targets=(("classic/CartPole", -1.0),),  # any return solves it
        run_dir=str(tmp_path),
    )
    result = train_local(config)
    assert result.evaluations[0]["env_steps"] == 0
    assert result.evaluations[0]["solved"] == ["classic/CartPole"]
    assert result.env_steps < 40  # the next scheduled evaluation never came
    assert [e["env_steps"] for e in result.evaluations[1:]] == [result.env_steps]


def test_a_second_run_into_the_same_folder_is_refused(mtrl_cache, tmp_path) -> None:
    config = replace(TINY, tasks=("classic/CartPole",), env_steps=8, run_dir=str(tmp_path))
    train_local(replace(config, eval_episodes=0))
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        train_local(config)


def test_search_servers_explore_and_evaluators_do_not() -> None:
    """Collection's searches run on search servers, so they keep ε and its holds; the
    evaluator acts without them."""
    tasks, model = TaskSet(resolve_tasks(["classic/CartPole"])), preset("tiny")
    acting = ActingConfig(explore_epsilon=0.1, explore_hold=2.0)
    server = SearchServer(tasks, model, acting, (0.997,), 1, 0.0, 1.0, 0.0)
    assert server.actor.config == acting
    evaluator = Evaluator(tasks, model, acting, (0.997,), EnvSettings(), 0.0)
    assert evaluator.actor.config == acting.for_evaluation()
