"""The recurrent step is capturable: ``torch.compile(fullgraph=True)`` traces it as one graph
(no graph break: no host read, no data-dependent shape or branch) on a batch of every kind of
task, and the compiled step computes what the eager one does. This is the CPU check for the
GPU path, where a whole search, model included, is captured as one CUDA graph (issue 18)."""

from __future__ import annotations

import pytest
import torch
from wm_helpers import random_actions, random_obs

from mtrl.envs.batch import TaskSet
from mtrl.world_models import Prediction, WorldModel
from mtrl.world_models.types import observations_from_batch

ROWS = [0, 1, 2, 3, 4, 5, 0, 2]  # every task of the tiny suite, some twice


def roots(model: WorldModel, tasks: TaskSet) -> Prediction:
    return model.initial_inference(observations_from_batch(random_obs(tasks, ROWS), model.device))


def assert_same(got: Prediction, want: Prediction, atol: float) -> None:
    for name in ("policy_logits", "value", "reward", "mean", "log_std"):
        assert torch.allclose(getattr(got, name), getattr(want, name), atol=atol), name
    assert torch.allclose(got.state.latent, want.state.latent, atol=atol)
    assert torch.allclose(got.state.cache.keys, want.state.cache.keys, atol=atol)
    assert torch.equal(got.state.cache.count, want.state.cache.count)


@torch.inference_mode()
def test_recurrent_step_traces_as_one_graph(model: WorldModel, tasks: TaskSet) -> None:
    model.eval()
    step = torch.compile(model.recurrent_inference, fullgraph=True, backend="aot_eager")
    state = eager = roots(model, tasks).state
    for depth in range(3):  # a child's state goes back in, as in a search
        actions = random_actions(tasks, ROWS, (), seed=depth)
        got, want = step(state, actions), model.recurrent_inference(eager, actions)
        assert_same(got, want, atol=1e-5)
        state, eager = got.state, want.state


@pytest.mark.slow
@torch.inference_mode()
def test_recurrent_step_compiles_with_inductor(model: WorldModel, tasks: TaskSet) -> None:
    model.eval()
    step = torch.compile(model.recurrent_inference, fullgraph=True)  # inductor: C++ on CPU
    state = roots(model, tasks).state
    actions = random_actions(tasks, ROWS, (), seed=0)
    assert_same(step(state, actions), model.recurrent_inference(state, actions), atol=1e-4)
