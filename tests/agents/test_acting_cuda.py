"""The device-resident search on a GPU (issue 18): the same decisions as its CPU twin on a
mixed Atari + classic + DMC + text batch, and a simulation loop that never synchronises with
the host. Skipped without a GPU; the CPU twin is tested in test_acting.py."""

import copy

import numpy as np
import pytest
import torch
from test_acting import TASKS, mixed_obs

import mtrl.search.loop as loop
from mtrl.agents.acting import ActingConfig, BatchedActor
from mtrl.search import SearchConfig
from mtrl.world_models import WorldModel, preset

pytestmark = pytest.mark.gpu


@pytest.fixture
def model() -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(TASKS, preset("tiny")).eval()


@pytest.fixture
def exact_fp32():
    """fp32 on both devices: TF32 convolutions would differ from the CPU by more than the
    float tolerance below."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.parametrize("algorithm", ["muzero", "gumbel_muzero"])
def test_gpu_search_matches_the_cpu_twin(model: WorldModel, cuda_device, exact_fp32, algorithm):
    config = ActingConfig(SearchConfig(algorithm=algorithm, num_simulations=12), sampled_actions=5)
    gpu_model = copy.deepcopy(model).to(cuda_device)
    # Sampled candidates come from each device's own generator; mean_candidate=False and the
    # CPU's draws copied in would couple them, so compare at temperature 0 on the discrete rows
    # and the search statistics, which do not depend on the draws' bits beyond tolerance.
    cpu = BatchedActor(model, TASKS, config).act(mixed_obs(), seed=3, temperature=0.0)
    gpu = BatchedActor(gpu_model, TASKS, config).act(mixed_obs(), seed=3, temperature=0.0)
    discrete = [0, 1, 3, 4]  # Pong, CartPole, text, CartPole (row 2 is DMC: sampled actions)
    assert np.array_equal(gpu.action_index[discrete], cpu.action_index[discrete])
    visits_gpu, visits_cpu = gpu.search.visit_counts.cpu(), cpu.search.visit_counts
    assert torch.equal(visits_gpu[discrete], visits_cpu[discrete])
    assert np.allclose(gpu.root_value, cpu.root_value, atol=1e-4)
    assert np.allclose(gpu.policy[discrete], cpu.policy[discrete], atol=1e-4)
    assert gpu.search.visit_counts.device.type == "cuda"  # the tree lived on the GPU


def test_simulation_loop_never_synchronises(model: WorldModel, cuda_device, monkeypatch):
    """Root inference and the result's copy-back may synchronise; the S simulations may not."""
    real = loop.run_simulations

    def strict(*args, **kwargs):
        torch.cuda.set_sync_debug_mode("error")
        try:
            return real(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(loop, "run_simulations", strict)
    gpu_model = copy.deepcopy(model).to(cuda_device)
    for algorithm in ("muzero", "gumbel_muzero"):
        search = SearchConfig(algorithm=algorithm, num_simulations=8)
        result = BatchedActor(gpu_model, TASKS, ActingConfig(search, 5)).act(mixed_obs(), seed=1)
        assert int(result.search.visit_counts.sum()) == 8 * mixed_obs().size
