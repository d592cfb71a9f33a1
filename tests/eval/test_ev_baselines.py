"""Baselines as data: bundled published columns, registry references, the user's own runs."""

import json

import pytest

from mtrl.envs.registry import get_task
from mtrl.eval.baselines import load_baselines, published, reference, resolve_baseline


def test_published_columns_carry_values_and_sources() -> None:
    tables = published()
    assert tables["BBF_RR8"]["atari/Pong"].score == 16.7
    assert tables["tdmpc2@100k"]["dmc/acrobot-swingup"].score == 179.1
    assert "nicklashansen/tdmpc2" in tables["tdmpc2@100k"]["dmc/acrobot-swingup"].source
    assert "Ye et al. 2021" in tables["EfficientZero"]["atari/Alien"].source
    # summary rows (MEAN18, HNS_mean(computed)) are aggregates, not tasks
    assert all("/" in task and "(" not in task for t in tables.values() for task in t)


def test_reference_baselines_per_suite() -> None:
    assert reference(get_task("atari/Pong")).score == 14.6
    assert reference(get_task("dmc/cartpole-balance")).score == 974.7  # TD-MPC2 @ 1M
    assert reference(get_task("classic/CartPole")).name == "solved threshold"
    assert reference(get_task("text/tw-simple-dense")).score == 8.0


def test_user_csv_is_averaged_per_task_and_falls_back_to_reference(tmp_path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("task,score,seed\nclassic/CartPole,100,0\nclassic/CartPole,300,1\n")
    chosen = load_baselines(str(path))
    assert chosen["classic/CartPole"].score == 200.0 and chosen["classic/CartPole"].name == "mine"
    assert resolve_baseline("atari/Pong", chosen).name == "human"


def test_previous_results_json_is_a_baseline(tmp_path) -> None:
    path = tmp_path / "results.json"
    rows = [{"task": "classic/CartPole", "episode_returns": [10.0, 30.0]}]
    path.write_text(json.dumps({"checkpoint": "runs/a/checkpoint.pt", "tasks": rows}))
    assert load_baselines(str(path))["classic/CartPole"].score == 20.0


def test_bad_baselines_are_named(tmp_path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("task,score,seed\natari/Nope,1,0\nclassic/CartPole,1,0\n")
    with pytest.raises(ValueError, match=r"unknown tasks \['atari/Nope'\]"):
        load_baselines(str(path))
    with pytest.raises(ValueError, match="unknown baseline 'BBF'"):
        load_baselines("BBF")
    with pytest.raises(FileNotFoundError):
        load_baselines(str(tmp_path / "missing.csv"))
    (tmp_path / "c.csv").write_text("game,points\nx,1\n")
    with pytest.raises(ValueError, match="task,score"):
        load_baselines(str(tmp_path / "c.csv"))
