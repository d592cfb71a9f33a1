"""The C++ backend builds the same trees as the torch reference (the executable spec)."""

from __future__ import annotations

import pytest
import torch
from search_fakes import ActionValueModel, HashedTableModel, search

from mtrl.search import ModelOutput, RootInput, SearchConfig, SearchOutput, Tree
from mtrl.search.backends import make_backend, resolve_backend
from mtrl.search.loop import run_simulations
from mtrl.search.tree import init_tree

TREE_FIELDS = (
    "visits",
    "value_sum",
    "raw_value",
    "reward",
    "parent",
    "action",
    "depth",
    "terminal",
    "embedding_id",
    "child_index",
    "child_prior",
    "min_q",
    "max_q",
    "leaf_depths",
)


def run(
    backend: str,
    config: SearchConfig,
    batch: int,
    num_actions: int,
    seed: int,
    legal: torch.Tensor | None = None,
    terminal_rate: float = 0.1,
) -> SearchOutput:
    model = HashedTableModel(batch, num_actions, seed=seed, terminal_rate=terminal_rate)
    generator = torch.Generator().manual_seed(seed)
    root = RootInput(
        prior_logits=model.root_logits(),
        value=torch.randn(batch, generator=generator),
        embedding_id=torch.arange(batch),
        legal_mask=legal,
        discount=torch.rand(batch, generator=generator) * 0.5 + 0.5,
    )
    return search(root, model, config, backend=backend, seed=seed)


def assert_same_tree(expected: SearchOutput, actual: SearchOutput) -> None:
    for name in TREE_FIELDS:
        want, got = getattr(expected.tree, name), getattr(actual.tree, name)
        assert torch.equal(want, got), f"tree field {name} differs"
    assert torch.equal(expected.visit_counts, actual.visit_counts)
    assert torch.equal(expected.action, actual.action)
    assert torch.equal(expected.action_weights, actual.action_weights)


@pytest.mark.parametrize("algorithm", ["muzero", "gumbel_muzero"])
@pytest.mark.parametrize(("batch", "num_actions", "sims"), [(1, 2, 7), (16, 18, 50), (5, 9, 33)])
def test_cpp_equals_reference(
    cpp_extension: object, algorithm: str, batch: int, num_actions: int, sims: int
) -> None:
    config = SearchConfig(algorithm=algorithm, num_simulations=sims, max_num_considered_actions=8)
    legal = torch.rand(batch, num_actions, generator=torch.Generator().manual_seed(1)) < 0.7
    legal[:, 0] = True
    reference = run("torch", config, batch, num_actions, seed=3, legal=legal)
    native = run("cpp", config, batch, num_actions, seed=3, legal=legal)
    assert_same_tree(reference, native)


def test_cpp_equals_reference_with_a_least_q_range(cpp_extension: object) -> None:
    for algorithm in ("muzero", "gumbel_muzero"):
        config = SearchConfig(algorithm=algorithm, num_simulations=30, min_q_range=0.5)
        assert_same_tree(run("torch", config, 6, 5, seed=4), run("cpp", config, 6, 5, seed=4))


def test_cpp_equals_reference_with_root_noise(cpp_extension: object) -> None:
    config = SearchConfig(num_simulations=40, dirichlet_fraction=0.25)
    assert_same_tree(run("torch", config, 8, 6, seed=9), run("cpp", config, 8, 6, seed=9))


@pytest.mark.parametrize("nonzero_share", [0.0, 0.03])
def test_cpp_gumbel_equals_reference_on_flat_trees(
    cpp_extension: object, nonzero_share: float
) -> None:
    """Zero values and rewards keep a tree flat (one distinct Q), where the C++ interior rule
    takes its one-pass path; a few nonzero outputs make some trees leave it mid-search."""

    def flat_run(backend: str) -> SearchOutput:
        batch, num_actions = 24, 11
        model = HashedTableModel(batch, num_actions, seed=5)
        keep = torch.rand(model.table_size, generator=torch.Generator().manual_seed(6))
        model.values[keep >= nonzero_share] = 0.0
        model.rewards[keep >= nonzero_share] = 0.0
        interior = torch.rand(batch, num_actions, generator=torch.Generator().manual_seed(7))
        interior = interior < 0.6
        interior[:, 3] = True
        root = RootInput(
            prior_logits=model.root_logits(),
            value=torch.zeros(batch),
            embedding_id=torch.arange(batch),
            interior_mask=interior,
        )
        config = SearchConfig(algorithm="gumbel_muzero", num_simulations=60)
        return search(root, model, config, backend=backend, seed=8)

    reference, native = flat_run("torch"), flat_run("cpp")
    assert int(reference.tree.depth.max()) >= 3  # interior nodes were chosen from, repeatedly
    assert_same_tree(reference, native)


def grow_gumbel_tree(backend: str, gumbel: list[float]) -> Tree:
    """Six equal logits, chosen Gumbel noise, values per action (spread from the first)."""
    config = SearchConfig(algorithm="gumbel_muzero", num_simulations=8)
    root = RootInput(torch.zeros(1, 6), torch.zeros(1), torch.zeros(1, dtype=torch.int64))
    tree = init_tree(root, config, torch.Generator())
    tree.gumbel.copy_(torch.tensor([gumbel]))
    model = ActionValueModel([0.1, 0.2, 1.0, -1.0, 0.5, 0.0])
    run_simulations(make_backend(backend, tree, config), tree, model, config)
    return tree


def test_cpp_gumbel_root_breaks_rounded_ties_like_the_reference(cpp_extension: object) -> None:
    """Actions 0 and 1 differ by 2^-60 in g + logits; once 2-5 are visited, adding sigma(v_mix)
    rounds them into a tie, which the first index wins. The C++ root rule skips v_mix only
    where no rounding can tie the leaders, so it must take the tie path here."""
    gumbel = [0.0, 2.0**-60, 1.0, 1.0, 1.0, 1.0]
    reference, native = grow_gumbel_tree("torch", gumbel), grow_gumbel_tree("cpp", gumbel)
    assert reference.child_index[0, 0, :2].tolist() == [5, 6]  # action 0 won the tie
    for name in TREE_FIELDS:
        assert torch.equal(getattr(reference, name), getattr(native, name)), name


def test_auto_backend_is_cpp_on_cpu(cpp_extension: object) -> None:
    config = SearchConfig(num_simulations=1)
    root = RootInput(torch.zeros(1, 2), torch.zeros(1), torch.zeros(1, dtype=torch.int64))
    tree = init_tree(root, config, torch.Generator())
    assert make_backend("auto", tree, config).name == "cpp"
    with pytest.raises(ValueError, match="'tpu'"):
        make_backend("tpu", tree, config)


def test_model_called_once_per_simulation_with_whole_batch(backend: str) -> None:
    calls: list[int] = []
    model = HashedTableModel(batch=6, num_actions=4, seed=2)

    def counting(parent: torch.Tensor, action: torch.Tensor) -> object:
        calls.append(parent.shape[0])
        assert parent.dtype == torch.int64 and action.dtype == torch.int64
        return model(parent, action)

    root = RootInput(model.root_logits(), torch.zeros(6), torch.arange(6))
    search(root, counting, SearchConfig(num_simulations=9), backend=backend)
    assert calls == [6] * 9


def test_backend_follows_the_roots_device() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_backend("auto", cuda) == "cuda"
    assert resolve_backend("auto", cpu) == "auto"  # make_backend then prefers cpp
    assert resolve_backend("torch", cuda) == "torch"  # the reference runs on any device
    with pytest.raises(ValueError, match="'cpp' runs on the CPU"):
        resolve_backend("cpp", cuda)
    with pytest.raises(ValueError, match="'cuda' needs the roots on a CUDA device"):
        resolve_backend("cuda", cpu)


def test_cpp_checks_every_model_output(cpp_extension: object) -> None:
    from mtrl.search.native_cpu import CppBackend

    config = SearchConfig(num_simulations=2)
    root = RootInput(torch.zeros(2, 3), torch.zeros(2), torch.arange(2))
    kernels = CppBackend(init_tree(root, config, torch.Generator()), config)
    kernels.select(0)
    bad = ModelOutput(
        torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2), torch.zeros(2), torch.arange(2)
    )
    with pytest.raises(RuntimeError, match="prior_logits must be Float"):
        kernels.expand_and_backup(0, bad)
    with pytest.raises(RuntimeError, match="out of range"):
        kernels.select(2)


def test_auto_falls_back_to_the_reference_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from mtrl.search import backends, native_cpu

    attempts: list[int] = []

    def broken_build(*args: object) -> None:
        attempts.append(1)
        raise RuntimeError("Error building extension")

    monkeypatch.setattr(native_cpu, "CppBackend", broken_build)
    monkeypatch.setattr(backends, "_cpp_failure", [])
    config = SearchConfig(num_simulations=1)
    root = RootInput(torch.zeros(1, 2), torch.zeros(1), torch.zeros(1, dtype=torch.int64))
    tree = init_tree(root, config, torch.Generator())
    with pytest.warns(RuntimeWarning, match="Error building extension"):
        assert make_backend("auto", tree, config).name == "torch"
    assert make_backend("auto", tree, config).name == "torch"
    assert attempts == [1]
    with pytest.raises(RuntimeError, match="Error building extension"):
        make_backend("cpp", tree, config)  # asked for explicitly: the error surfaces
