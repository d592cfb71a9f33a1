"""The local training loop on a tiny budget: runs, logs finite losses, checkpoints safely."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.agents.train import LocalTrainer, TrainConfig, train_local
from mtrl.search import SearchConfig

TINY = TrainConfig(
    tasks=("classic/CartPole", "dmc/pendulum-swingup", "text/tw-coin_collector-l1"),
    envs_per_task=1,
    env_steps=90,
    acting=ActingConfig(SearchConfig(num_simulations=3), sampled_actions=3),
    learner=LearnerConfig(batch_size=6, lr=1e-3, reanalyse_fraction=0.25),
    warmup_env_steps=30,
    eval_every=1000,  # at the start and the end: episodes are long next to this budget
    log_every=5,
    eval_episodes=1,
)


def test_tiny_run_logs_finite_losses_and_evaluates_every_task(mtrl_cache, tmp_path) -> None:
    logged: list[dict] = []
    config = replace(TINY, run_dir=str(tmp_path / "run"))
    result = train_local(config, log=logged.append)
    assert result.env_steps >= 90 and result.updates > 0
    losses = [v for m in logged for k, v in m.items() if k.startswith("loss/")]
    assert losses and all(math.isfinite(v) for v in losses)
    assert [e["env_steps"] for e in result.evaluations] == [0, result.env_steps]
    assert set(result.evaluations[-1]["returns"]) == set(TINY.tasks)
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def test_checkpoint_resumes_counters_and_rejects_mismatches(mtrl_cache, tmp_path) -> None:
    config = replace(TINY, run_dir=str(tmp_path / "a"), env_steps=45)
    first = LocalTrainer(config)
    first.run()
    path = first.save()
    again = LocalTrainer(config)
    again.load(path)
    assert again.collector.env_steps == first.collector.env_steps
    assert again.learner.updates == first.learner.updates
    for a, b in zip(again.model.parameters(), first.model.parameters(), strict=True):
        assert torch.equal(a, b)
    other = LocalTrainer(replace(config, tasks=("classic/CartPole",)))
    with pytest.raises(ValueError, match="was trained on"):
        other.load(path)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt or not an mtrl checkpoint"):
        again.load(broken)
    for trainer in (first, again, other):
        trainer.env.close()


def test_temperature_schedule() -> None:
    config = TrainConfig()
    assert config.temperature(0.1) == 1.0
    assert config.temperature(0.6) == 0.5
    assert config.temperature(0.99) == 0.25


def test_targets_override_is_checked(mtrl_cache) -> None:
    with pytest.raises(ValueError, match=r"targets for tasks not in this run: \['atari/Pong'\]"):
        LocalTrainer(replace(TINY, targets=(("atari/Pong", 1.0),)))


def test_task_discounts_reach_acting_and_replay(mtrl_cache) -> None:
    replay = ReplayConfig(capacity=500, task_discounts=(("text", 0.9), ("classic/CartPole", 0.99)))
    trainer = LocalTrainer(replace(TINY, replay=replay))
    assert trainer.discounts.tolist() == pytest.approx([0.99, 0.997, 0.9])
    assert [trainer.replays[t].discount for t in range(3)] == pytest.approx([0.99, 0.997, 0.9])
    with pytest.raises(ValueError, match=r"not in this run: \['atari'\]"):
        LocalTrainer(replace(TINY, replay=ReplayConfig(task_discounts=(("atari", 0.9),))))


@pytest.mark.parametrize(
    ("every", "episodes", "at_start", "expected"),
    [(0, 1, True, [12]), (1000, 0, True, []), (8, 1, False, [8, 12]), (8, 1, True, [0, 8, 12])],
)
def test_evaluation_schedule(
    mtrl_cache, every: int, episodes: int, at_start: bool, expected: list[int]
) -> None:
    """eval_every 0: only at the end; no episodes: never; eval_at_start: also at step 0."""
    config = replace(
        TINY,
        tasks=("classic/CartPole",),
        envs_per_task=2,
        env_steps=12,
        warmup_env_steps=6,
        eval_every=every,
        eval_at_start=at_start,
    )
    result = train_local(replace(config, eval_episodes=episodes))
    assert [e["env_steps"] for e in result.evaluations] == expected


def test_training_episodes_are_recorded_in_order_with_their_time(mtrl_cache) -> None:
    config = replace(TINY, tasks=("classic/CartPole",), env_steps=200, eval_episodes=0)
    result = train_local(config)
    assert [r for _, _, r in result.train_episodes] == result.train_returns["classic/CartPole"]
    seconds = [s for s, _, _ in result.train_episodes]
    assert len(seconds) > 2 and seconds == sorted(seconds) and seconds[0] > 0


def test_prioritized_replay_writes_each_sequence_value_error(mtrl_cache) -> None:
    """With priority_exponent > 0 a train step stores |V(o_0) - z_0|, computed before the
    update, as the priority of every sampled sequence's start row."""
    config = replace(TINY, replay=ReplayConfig(capacity=500, priority_exponent=0.6))
    trainer = LocalTrainer(config)
    try:
        trainer.collector.collect(40, 1.0, trainer.active(), 0)
        replays = {t: r for t, r in trainer.replays.items() if len(r)}
        samples = trainer.learner.draw(replays, np.random.default_rng(3))
        batch = trainer.learner.assemble(samples)
        assert batch.weight is not None and float(batch.weight.max()) == 1.0
        with torch.no_grad():
            expected = trainer.model.losses(batch).priority
        metrics = trainer.learner.train_step(batch)
        assert torch.allclose(metrics["priorities"], expected)
        trainer.write_priorities(samples, metrics["priorities"])
        start = 0
        for sample in samples:
            rows = sample.batch.rows[:, 0]
            written = sample.replay.priority[rows % sample.replay.config.capacity]
            want = expected[start : start + len(rows)].numpy()
            # A start row drawn twice keeps one of its values; all were computed alike.
            assert np.allclose(np.sort(written), np.sort(np.maximum(want, 1e-6)), rtol=1e-5)
            start += len(rows)
        assert start == len(expected)
        untouched = trainer.replays[0].priority[: len(trainer.replays[0])]
        assert (untouched == 1.0).any()  # rows never sampled keep the initial priority
    finally:
        trainer.env.close()


def test_run_ends_when_an_evaluation_solves_the_last_task(mtrl_cache) -> None:
    """Once every task is solved nothing is left to collect or train: the loop ends at that
    evaluation (it used to go on and fail to sample a batch from no active task)."""
    config = replace(
        TINY,
        tasks=("classic/CartPole",),
        env_steps=400,
        eval_every=40,
        targets=(("classic/CartPole", 1e9),),
    )
    trainer = LocalTrainer(config)
    evaluate = trainer.evaluate

    def evaluate_with_reachable_target(log=None) -> None:
        if trainer.collector.env_steps >= 40:
            trainer.dps.targets["classic/CartPole"] = 0.0  # this evaluation solves it
        evaluate(log)

    trainer.evaluate = evaluate_with_reachable_target  # type: ignore[method-assign]
    try:
        result = trainer.run()
    finally:
        trainer.env.close()
    assert [e["env_steps"] for e in result.evaluations] == [0, 40]
    assert result.updates > 0 and trainer.dps.all_solved


def test_a_solved_task_is_trained_but_not_collected_until_the_stage_switch(mtrl_cache) -> None:
    config = replace(TINY, tasks=("classic/CartPole", "classic/Acrobot"), env_steps=60)
    trainer = LocalTrainer(config)
    try:
        trainer.collector.collect(20, 1.0, trainer.active(), 0)
        trainer.dps.report_evaluation("classic/CartPole", 1e9, update=0)
        stored = len(trainer.replays[0])
        trainer.collector.collect(5, 1.0, trainer.active(), 0)
        assert len(trainer.replays[0]) == stored and len(trainer.replays[1]) > stored
        drawn: list[set[int]] = []
        draw = trainer.learner.draw
        trainer.learner.draw = lambda replays, rng: drawn.append(set(replays)) or draw(replays, rng)
        trainer.train_step()
        trainer.dps.maybe_advance(10**9)  # past every minimum: the stage switches
        trainer.train_step()
        assert drawn == [{0, 1}, {1}]
    finally:
        trainer.env.close()
