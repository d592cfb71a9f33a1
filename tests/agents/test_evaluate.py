"""Evaluation: one episode per environment, an environment that finished stops, and Atari
evaluation runs its own protocol (random no-op starts)."""

import pytest
import torch

from mtrl.agents.acting import ActingConfig, BatchedActor
from mtrl.agents.evaluate import evaluate
from mtrl.envs.atari import AtariEnv
from mtrl.envs.batch import TaskSet
from mtrl.envs.registry import get_task
from mtrl.envs.settings import EnvSettings
from mtrl.envs.vector import MultiTaskEnv
from mtrl.search import SearchConfig
from mtrl.world_models import WorldModel, preset


def test_finished_environments_stop_while_the_others_run(monkeypatch) -> None:
    # CartPole episodes end within ~100 steps for an untrained model; MountainCar's always
    # run its 200-step limit, so CartPole rows finish first and must drop out.
    tasks = TaskSet((get_task("classic/CartPole"), get_task("classic/MountainCar")))
    torch.manual_seed(0)
    actor = BatchedActor(
        WorldModel(tasks, preset("tiny")), tasks, ActingConfig(SearchConfig(num_simulations=2))
    )
    stepped: list[list[int]] = []
    step = MultiTaskEnv.step

    def recording_step(self, actions, rows=None):
        stepped.append(list(rows))
        return step(self, actions, rows)

    monkeypatch.setattr(MultiTaskEnv, "step", recording_step)
    returns = evaluate(actor, episodes=2, discounts=torch.full((2,), 0.99))
    assert {task: len(values) for task, values in returns.items()} == {
        "classic/CartPole": 2,
        "classic/MountainCar": 2,
    }
    assert returns["classic/MountainCar"] == [-200.0, -200.0]
    lengths = {row: sum(row in rows for rows in stepped) for row in range(4)}
    assert lengths[2] == lengths[3] == 200 == len(stepped)  # MountainCar rows: every call
    assert all(lengths[row] == returns["classic/CartPole"][row] for row in (0, 1))  # +1 a step
    assert max(lengths[0], lengths[1]) < 200  # CartPole rows stopped when their episode ended


def _frames_at_reset(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Emulator frames already played when each Atari episode starts: its no-op count."""
    frames: list[int] = []
    reset = AtariEnv.reset

    def recording_reset(self, seed=None):
        step = reset(self, seed)
        frames.append(self._ale.getEpisodeFrameNumber())
        return step

    monkeypatch.setattr(AtariEnv, "reset", recording_reset)
    return frames


@pytest.mark.parametrize(
    ("overrides", "expected_max"),
    [({}, 30), ({"atari.noop_max": 5, "atari.eval_noop_max": 0}, 0)],
)
def test_atari_evaluation_plays_its_own_noop_starts(
    monkeypatch: pytest.MonkeyPatch, overrides: dict, expected_max: int
) -> None:
    # Training's setting (default 0 no-ops, or 5 here) must not leak into evaluation, which
    # plays 1..eval_noop_max random no-ops (default 30) before the agent's first action.
    tasks = TaskSet((get_task("atari/Pong"),))
    actor = BatchedActor(
        WorldModel(tasks, preset("tiny")), tasks, ActingConfig(SearchConfig(num_simulations=2))
    )
    frames = _frames_at_reset(monkeypatch)
    settings = EnvSettings().with_overrides(overrides)
    evaluate(actor, 4, torch.full((1,), 0.997), settings, max_batched_steps=1)
    assert len(frames) == 4  # one reset per evaluation environment
    if expected_max:
        assert all(1 <= f <= expected_max for f in frames) and len(set(frames)) > 1, frames
    else:
        assert frames == [0, 0, 0, 0]
