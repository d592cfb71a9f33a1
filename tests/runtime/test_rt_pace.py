"""The driver's pacing rules (``mtrl.runtime.pace``), without actors."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from mtrl.runtime import RunConfig
from mtrl.runtime.pace import Pace


def test_temperature_follows_the_further_spent_budget() -> None:
    config = RunConfig()
    assert config.temperature(0.1) == 1.0
    assert config.temperature(0.6) == 0.5
    assert config.temperature(0.99) == 0.25
    pace = Pace(replace(config, env_steps=1000, max_seconds=10.0))
    assert pace.progress(100, 6.0) == pytest.approx(0.6)  # wall time is the budget spent most
    assert pace.progress(900, 6.0) == pytest.approx(0.9)
    assert Pace(replace(config, env_steps=1000, max_seconds=0)).progress(100, 1e9) == 0.1


def test_learner_and_workers_wait_for_each_other_beyond_the_slack() -> None:
    pace = Pace(RunConfig(warmup_env_steps=500, replay_ratio=0.25, replay_ratio_slack=20))
    assert not pace.may_train(499, 0)  # warm-up: no updates yet
    assert pace.may_collect(499, 0)
    assert pace.target_updates(1500) == 250
    assert pace.may_train(1500, 269) and not pace.may_train(1500, 270)
    assert pace.may_collect(1500, 230) and not pace.may_collect(1500, 229)
    assert not Pace(RunConfig(replay_ratio=0.0)).may_train(10**6, 0)


def test_evaluations_fall_on_multiples_of_eval_every() -> None:
    pace = Pace(RunConfig(eval_every=5_000, eval_at_start=True))
    assert pace.first_evaluation(0) == 0  # the untrained model
    assert pace.first_evaluation(7_000) == 10_000  # a resumed run does not repeat it
    assert pace.next_evaluation(5_000) == 10_000
    assert pace.next_evaluation(9_999) == 10_000
    assert Pace(RunConfig(eval_every=0)).next_evaluation(123) == math.inf  # only at the end
