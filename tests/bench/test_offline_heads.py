"""bench/offline_heads.py: its AUC, its random actor, and a tiny offline training end to end."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from bench_scripts import load_bench

from mtrl.agents.acting import ActingConfig


@pytest.fixture(scope="module")
def offline_heads():
    return load_bench("offline_heads")


def test_auc_orders_positives_above_negatives(offline_heads) -> None:
    labels = np.array([True, True, False, False, False])
    assert offline_heads.auc(labels, np.array([0.9, 0.8, 0.1, 0.2, 0.3])) == 1.0
    assert offline_heads.auc(labels, np.array([0.0, 0.1, 0.5, 0.6, 0.7])) == 0.0
    assert offline_heads.auc(labels, np.zeros(5)) == 0.5  # a blind model: every pair a tie
    # One positive above two of three negatives: 2 of 3 pairs.
    assert offline_heads.auc(labels[1:], np.array([0.5, 0.4, 0.6, 0.1])) == pytest.approx(2 / 3)
    assert offline_heads.auc(np.zeros(3, bool), np.arange(3.0)) is None


def test_random_actor_plays_only_legal_actions_under_a_uniform_policy(offline_heads) -> None:
    legal = np.array([[True, False, True, False], [False, True, True, True]])
    actor = offline_heads.RandomActor(ActingConfig(), actions=4, seed=0)
    for _ in range(20):
        result = actor.act(SimpleNamespace(legal=legal), None, 1.0)
        assert legal[np.arange(2), result.action_index].all()
    np.testing.assert_allclose(result.policy, [[0.5, 0, 0.5, 0], [0, 1 / 3, 1 / 3, 1 / 3]])


def test_tiny_offline_training_reports_every_interval(offline_heads) -> None:
    config = offline_heads.launcher_config("minatar5", "minatar/Breakout", ["learner.batch_size=8"])
    assert config.tasks == ("minatar/Breakout",) and config.learner.batch_size == 8
    tasks = offline_heads.resolve_run_tasks(config)
    test = offline_heads.held_out(tasks, config, steps=320, seed=1)
    replay = offline_heads.random_replay(tasks, config, rows=300, seed=0)
    reports = offline_heads.train(config, test, replay, updates=3, every=2, seed=0)
    assert [r["updates"] for r in reports] == [0, 2, 3]
    assert "end_head_auc" not in reports[0]
    ended = offline_heads.launcher_config(
        "minatar5",
        "minatar/Breakout",
        ["learner.batch_size=8", 'model_overrides=[["end_head",true]]'],
    )
    scored = offline_heads.train(ended, test, replay, updates=1, every=1, seed=0)
    assert scored[0]["end_head_auc"] == 0.5  # the untrained head: P(end) = 0.5 everywhere
    for report in reports:
        assert report["value_std"] >= 0.0 and report["latent_std"] > 0.0
        for key in ("reward_auc", "end_auc", "reward_choice_auc", "end_choice_auc"):
            # None only where no held-out step paid / ended (or no state had a choice)
            assert report[key] is None or 0.0 <= report[key] <= 1.0


def test_choice_auc_ranks_good_actions_within_each_mixed_state(offline_heads) -> None:
    good = np.array([[True, False, False], [True, True, True], [False, True, False]])
    scores = np.array([[0.9, 0.1, 0.9], [0.0, 0.0, 0.0], [0.0, 0.5, 0.7]])
    # row 0: 0.9 > 0.1 and a tie with 0.9; row 1 has no pair; row 2: 0.5 > 0.0, 0.5 < 0.7
    assert offline_heads.choice_auc(good, scores) == (pytest.approx(2.5 / 4), 2)
    assert offline_heads.choice_auc(good, np.zeros((3, 3))) == (0.5, 2)  # blind to the action
    assert offline_heads.choice_auc(good[1:2], scores[1:2]) == (None, 0)


def test_every_action_replays_the_played_step_on_a_copy(offline_heads) -> None:
    config = offline_heads.launcher_config("minatar5", "minatar/Breakout", [])
    tasks = offline_heads.resolve_run_tasks(config)
    data = offline_heads.held_out(tasks, config, steps=480, seed=3)
    rows, played = np.arange(len(data.paid)), np.concatenate(data.actions)
    # the copies meet the game's own random draws, so the played action's copy is the step
    np.testing.assert_array_equal(data.pays[rows, played], data.paid)
    np.testing.assert_array_equal(data.ends[rows, played], data.ended)
    assert data.ended.any() and (data.ends.any(1) & ~data.ends.all(1)).any()


def test_unknown_launcher_setting_is_refused(offline_heads) -> None:
    with pytest.raises(SystemExit, match=r"unknown config key 'no_such_key'"):
        offline_heads.launcher_config("minatar5", "minatar/Breakout", ["no_such_key=1"])


def test_policy_targets_are_rewritten_on_steps_and_never_on_final_rows(offline_heads) -> None:
    config = offline_heads.launcher_config("minatar5", "minatar/Breakout", [])
    tasks = offline_heads.resolve_run_tasks(config)
    replay = offline_heads.random_replay(tasks, config, rows=400, seed=0)
    steps = ~replay.is_last[: len(replay)]
    assert (~steps).any()  # some episodes ended, so final rows exist
    before = offline_heads.data_summary(replay)
    assert before["target_entropy"] == pytest.approx(np.log(tasks.specs[0].action.n))
    offline_heads.retarget(replay, "one-hot")
    np.testing.assert_array_equal(
        replay.policy[: len(replay)][steps], np.eye(3)[replay.action_index[: len(replay)][steps]]
    )
    assert not replay.policy[: len(replay)][~steps].any()
    assert offline_heads.data_summary(replay)["target_entropy"] == 0.0
    offline_heads.retarget(replay, "uniform")
    assert offline_heads.data_summary(replay) == pytest.approx(before)
    with pytest.raises(ValueError, match="unknown policy targets 'sharp'"):
        offline_heads.retarget(replay, "sharp")


def test_checkpoint_replay_holds_the_snapshot_rows(offline_heads, tmp_path) -> None:
    import torch

    from mtrl.runtime.checkpoint import CHECKPOINT_VERSION, REQUIRED
    from mtrl.runtime.replay_shard import replay_snapshot

    config = offline_heads.launcher_config("minatar5", "minatar/Breakout", [])
    tasks = offline_heads.resolve_run_tasks(config)
    saved = offline_heads.random_replay(tasks, config, rows=200, seed=0)
    state = {key: {} for key in REQUIRED} | {"version": CHECKPOINT_VERSION}
    path, other = tmp_path / "ckpt.pt", tmp_path / "other.pt"
    torch.save(state | {"replay": {"minatar/Breakout": replay_snapshot(saved, 150)}}, path)
    replay = offline_heads.checkpoint_replay(tasks, config, path)
    assert len(replay) == 150
    newest = slice(len(saved) - 150, len(saved))  # final rows make it over 200 rows
    np.testing.assert_array_equal(replay.obs[:150], saved.obs[newest])
    np.testing.assert_array_equal(replay.policy[:150], saved.policy[newest])
    torch.save(state | {"replay": {"minatar/Asterix": replay_snapshot(saved, 150)}}, other)
    with pytest.raises(SystemExit, match="holds no replay rows of minatar/Breakout"):
        offline_heads.checkpoint_replay(tasks, config, other)
    with pytest.raises(SystemExit, match="does not exist"):
        offline_heads.checkpoint_replay(tasks, config, tmp_path / "none.pt")


def test_reference_classifier_scores_the_held_out_steps(offline_heads) -> None:
    config = offline_heads.launcher_config("minatar5", "minatar/Breakout", [])
    tasks = offline_heads.resolve_run_tasks(config)
    data = offline_heads.held_out(tasks, config, steps=320, seed=0)
    test = offline_heads.held_out(tasks, config, steps=320, seed=1)
    assert len(data.paid) == len(data.ended) == 320 and data.ended.any()
    out = offline_heads.reference_scores(tasks, updates=5, seed=0, train=data, test=test)
    aucs = {"reward_auc", "end_auc", "reward_choice_auc", "end_choice_auc"}
    assert set(out) == aucs | {"reward_choices", "end_choices"}
    assert all(out[k] is None or 0.0 <= out[k] <= 1.0 for k in aucs)


def test_continuous_task_is_refused(offline_heads) -> None:
    config = offline_heads.launcher_config("dmc100k", "dmc/cartpole-balance", [])
    with pytest.raises(SystemExit, match="continuous"):
        offline_heads.held_out(offline_heads.resolve_run_tasks(config), config, steps=16, seed=0)
