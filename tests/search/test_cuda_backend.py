"""The CUDA backend builds the same trees as the C++ backend and the torch reference.

GPU tests skip without a CUDA device (CI has none; they run on the GPU machines). The golden
trees and edge cases run on cuda through the shared ``backend`` fixture; this file adds random
trees (hypothesis and large batches), the CUDA-graph search, and the build checks that also
run without a GPU.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from search_fakes import HashedTableModel, search
from test_property import FIELDS, search_cases

from mtrl.search import GraphedSearch, ModelOutput, RootInput, SearchConfig, SearchOutput
from mtrl.search import search as mtrl_search
from mtrl.search.backends import make_backend
from mtrl.search.tree import init_tree

KERNELS = Path(__file__).resolve().parents[2] / "mtrl" / "cuda" / "search_kernels.cu"
ALL_FIELDS = (*FIELDS, "raw_value", "reward", "parent", "action", "depth", "embedding_id")


def assert_same(expected: SearchOutput, actual: SearchOutput) -> None:
    for name in ALL_FIELDS:
        assert torch.equal(getattr(expected.tree, name), getattr(actual.tree, name)), name
    assert torch.equal(expected.visit_counts, actual.visit_counts)
    assert torch.equal(expected.action, actual.action)
    assert torch.equal(expected.action_weights, actual.action_weights)
    assert torch.equal(expected.leaf_depths, actual.leaf_depths)


def test_kernels_compile_with_nvcc(tmp_path: Path) -> None:
    """The kernel file is plain CUDA C++: it must compile wherever nvcc exists, GPU or not."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found: the CUDA kernels cannot be compile-checked here")
    command = [nvcc, "-std=c++17", "-O3", "--fmad=false", "-arch=sm_90", "-c", str(KERNELS)]
    done = subprocess.run(
        [*command, "-o", str(tmp_path / "kernels.o")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_cuda_backend_reports_what_is_missing() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    from mtrl.cuda.build import load_cuda_extension

    with pytest.raises(RuntimeError, match="CUDA search backend is unavailable: no CUDA device"):
        load_cuda_extension()
    root = RootInput(torch.zeros(2, 3), torch.zeros(2), torch.arange(2))
    with pytest.raises(ValueError, match="needs the roots on a CUDA device"):
        GraphedSearch(lambda p, a: None, SearchConfig(num_simulations=2))(root)  # type: ignore[arg-type,return-value]


@pytest.mark.gpu
@settings(max_examples=80, deadline=None)
@given(search_cases(), st.integers(0, 999))
def test_cuda_and_reference_build_the_same_tree(
    cuda_extension: object, case: tuple[RootInput, SearchConfig, dict[str, object]], seed: int
) -> None:
    root, config, model_args = case
    reference, gpu = (
        search(root, HashedTableModel(**model_args), config, backend=name, seed=seed)  # type: ignore[arg-type]
        for name in ("torch", "cuda")
    )
    assert_same(reference, gpu)


@pytest.mark.gpu
@pytest.mark.parametrize("algorithm", ["muzero", "gumbel_muzero"])
@pytest.mark.parametrize(("batch", "num_actions"), [(256, 18), (37, 40), (9, 200)])
def test_cuda_equals_cpp_on_large_batches(
    cuda_extension: object, cpp_extension: object, algorithm: str, batch: int, num_actions: int
) -> None:
    """Many trees, wide action axes (2 and 8 actions per lane), masks, terminals, discounts."""
    generator = torch.Generator().manual_seed(batch)
    legal = torch.rand(batch, num_actions, generator=generator) < 0.8
    legal[:, 0] = True
    root = RootInput(
        prior_logits=torch.randn(batch, num_actions, generator=generator) * 2,
        value=torch.randn(batch, generator=generator),
        embedding_id=torch.arange(batch),
        legal_mask=legal,
        discount=torch.rand(batch, generator=generator) * 0.5 + 0.5,
    )
    config = SearchConfig(algorithm=algorithm, num_simulations=50)
    model_args = {"batch": batch, "num_actions": num_actions, "seed": 5, "terminal_rate": 0.05}
    cpp = search(root, HashedTableModel(**model_args), config, backend="cpp", seed=2)  # type: ignore[arg-type]
    gpu = search(root, HashedTableModel(**model_args), config, backend="cuda", seed=2)  # type: ignore[arg-type]
    assert_same(cpp, gpu)


class DeviceHashModel:
    """A fake model computed on the GPU from its inputs alone (no Python state): it can be
    captured in a CUDA graph. Child ids hash (parent id, action)."""

    def __init__(self, batch: int, num_actions: int, device: torch.device) -> None:
        generator = torch.Generator().manual_seed(0)
        self.logits = torch.randn(1009, num_actions, generator=generator).to(device)
        self.values = torch.randn(1009, generator=generator).to(device)
        self.num_actions = num_actions

    def __call__(self, parent: torch.Tensor, action: torch.Tensor) -> ModelOutput:
        child = (parent * 1_000_003 + action * 7_919 + 1) % 2_147_483_647
        key = child % self.values.shape[0]
        return ModelOutput(self.logits[key], self.values[key], 0.1 * self.values[key], child)


@pytest.mark.gpu
@pytest.mark.parametrize("algorithm", ["muzero", "gumbel_muzero"])
def test_graph_replay_equals_the_eager_cuda_search(cuda_extension: object, algorithm: str) -> None:
    device = torch.device("cuda")
    batch, num_actions = 64, 18
    model = DeviceHashModel(batch, num_actions, device)
    config = SearchConfig(algorithm=algorithm, num_simulations=30, backend="cuda")
    graphed = GraphedSearch(model, config)
    for call in range(3):  # first call captures, later calls refill the buffers and replay
        generator = torch.Generator().manual_seed(call)
        root = RootInput(
            (torch.randn(batch, num_actions, generator=generator) * 2).to(device),
            torch.randn(batch, generator=generator).to(device),
            torch.arange(batch, device=device) * (call + 1),
        )
        eager = mtrl_search(root, model, config, seed=call)
        replayed = graphed(root, seed=call)
        assert_same(eager, replayed)
        assert (replayed.visit_counts.sum(dim=1) == 30).all()


@pytest.mark.gpu
def test_cuda_search_checks_model_outputs(cuda_extension: object) -> None:
    """Bad outputs are caught in Python before any kernel sees them."""
    device = torch.device("cuda")
    root = RootInput(
        torch.zeros(2, 3, device=device),
        torch.zeros(2, device=device),
        torch.arange(2, device=device),
    )
    config = SearchConfig(num_simulations=2)

    def float64_logits(parent: torch.Tensor, action: torch.Tensor) -> ModelOutput:
        return ModelOutput(
            torch.zeros(2, 3, dtype=torch.float64, device=device),
            torch.zeros(2, device=device),
            torch.zeros(2, device=device),
            parent,
        )

    def on_host(parent: torch.Tensor, action: torch.Tensor) -> ModelOutput:
        return ModelOutput(torch.zeros(2, 3), torch.zeros(2), torch.zeros(2), parent.cpu())

    with pytest.raises(ValueError, match=r"prior_logits must be torch\.float32"):
        mtrl_search(root, float64_logits, config)
    with pytest.raises(ValueError, match="must be on the roots' device"):
        mtrl_search(root, on_host, config)
    kernels = make_backend("cuda", init_tree(root, config, torch.Generator()), config)
    with pytest.raises(IndexError, match="out of range"):
        kernels.select(2)
    wide = RootInput(
        torch.zeros(1, 300, device=device),
        torch.zeros(1, device=device),
        torch.arange(1, device=device),
    )
    with pytest.raises(ValueError, match="at most 256 actions"):
        make_backend("cuda", init_tree(wide, config, torch.Generator()), config)
