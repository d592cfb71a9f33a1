"""Evaluation: one episode per environment, and an environment that finished stops."""

import torch

from mtrl.agents.acting import ActingConfig, BatchedActor
from mtrl.agents.evaluate import evaluate
from mtrl.envs.batch import TaskSet
from mtrl.envs.registry import get_task
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
