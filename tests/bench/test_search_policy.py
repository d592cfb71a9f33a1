"""bench/search_policy.py reads a multi-task checkpoint's search on one task's rows only."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from bench_scripts import load_bench

from mtrl.agents.acting import ActingConfig
from mtrl.envs.settings import EnvSettings
from mtrl.eval.checkpoint import run_tasks
from mtrl.search import SearchConfig
from mtrl.world_models import WorldModel, preset

TASKS = ["classic/CartPole", "minatar/Breakout"]


@pytest.fixture(scope="module")
def search_policy():
    return load_bench("search_policy")


def checkpoint(path: Path, min_q_range: float) -> Path:
    """An untrained 2-task checkpoint in the layout training writes."""
    torch.manual_seed(0)
    search = SearchConfig("gumbel_muzero", num_simulations=4, min_q_range=min_q_range)
    state = {
        "version": 1,
        "tasks": TASKS,
        "config": json.dumps({"acting": dataclasses.asdict(ActingConfig(search))}),
        "model": WorldModel(run_tasks(TASKS, EnvSettings()), preset("tiny")).checkpoint(),
    }
    torch.save(state, path)
    return path


def test_probe_measures_the_asked_tasks_rows(search_policy, tmp_path: Path) -> None:
    plain = search_policy.probe(str(checkpoint(tmp_path / "a.pt", 0.0)), "minatar/Breakout", 6)
    assert plain["uniform"] == round(math.log(3), 3)  # Breakout's 3 actions, not CartPole's 2
    assert sum(plain["actions"]) == 12 and len(plain["actions"]) == 3  # 2 rows x 6 steps
    assert plain["q_gap/range"] == pytest.approx(1.0, abs=1e-3)  # min-max spans the gap
    floored = search_policy.probe(str(checkpoint(tmp_path / "b.pt", 1.0)), "minatar/Breakout", 6)
    assert floored["tree_range"] >= 1.0
    assert floored["q_gap/range"] < 0.5  # an untrained model's gaps are far below 1
