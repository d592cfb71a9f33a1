"""The C++ backend's native Gumbel root summary equals the torch summary (the spec), bit for
bit, on random trees and masks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from search_fakes import HashedTableModel, draw_root

from mtrl.search import RootInput, SearchConfig, SearchOutput, Tree, search
from mtrl.search.native_cpu import tree_fields
from mtrl.search.summary import summarize

OUTPUTS = ("action", "action_weights", "visit_counts", "root_value")


def native_summary(extension: object, tree: Tree, config: SearchConfig) -> SearchOutput:
    action, weights, visits, root_value = extension.gumbel_summary(  # type: ignore[attr-defined]
        tree_fields(tree), config.c_visit, config.c_scale
    )
    return SearchOutput(action, weights, visits, root_value, tree.leaf_depths, tree)


def assert_same_summary(expected: SearchOutput, actual: SearchOutput) -> None:
    for name in OUTPUTS:
        want, got = getattr(expected, name), getattr(actual, name)
        assert want.dtype == got.dtype and want.shape == got.shape, name
        assert torch.equal(want, got), f"{name} differs"


@st.composite
def gumbel_cases(draw: st.DrawFn) -> tuple[RootInput, SearchConfig, dict[str, object]]:
    root, model_args = draw_root(
        draw, terminal_rates=(0.0, 0.3), single_legal_rows=True, full_interior=True
    )
    config = SearchConfig(
        algorithm="gumbel_muzero",
        num_simulations=draw(st.sampled_from([0, 1, 2, 5, 17, 32])),
        max_num_considered_actions=draw(st.integers(1, 8)),
        gumbel_scale=draw(st.sampled_from([0.0, 1.0])),
        c_visit=draw(st.sampled_from([50.0, 1.0])),
        c_scale=draw(st.sampled_from([0.1, 1.0])),
    )
    return root, config, model_args


@settings(max_examples=80, deadline=None)
@given(gumbel_cases(), st.integers(0, 1000), st.sampled_from(["torch", "cpp"]))
def test_native_summary_equals_the_torch_summary(
    cpp_extension: object,
    case: tuple[RootInput, SearchConfig, dict[str, object]],
    seed: int,
    tree_backend: str,
) -> None:
    """On trees grown by either backend, the native summary is the torch summary exactly."""
    root, config, model_args = case
    model = HashedTableModel(**model_args)  # type: ignore[arg-type]
    out = search(root, model, config, backend=tree_backend, seed=seed)
    assert out.tree is not None
    expected = summarize(out.tree, config)
    assert_same_summary(expected, native_summary(cpp_extension, out.tree, config))
    legal = out.tree.root_legal
    assert bool(legal.gather(1, expected.action[:, None]).all())
    assert bool((expected.action_weights[~legal] == 0).all())


@pytest.mark.parametrize("sims", [0, 1, 50])
def test_cpp_search_returns_the_reference_outputs(cpp_extension: object, sims: int) -> None:
    """search(backend="cpp") goes through the native summary and returns what the torch
    backend returns, including a single legal action and zero simulations."""
    batch, num_actions = 12, 18
    legal = torch.rand(batch, num_actions, generator=torch.Generator().manual_seed(2)) < 0.5
    legal[0] = False
    legal[:, 3] = True  # row 0 has one legal action
    config = SearchConfig(algorithm="gumbel_muzero", num_simulations=sims)
    values = torch.randn(batch, generator=torch.Generator().manual_seed(3))
    outputs = []
    for backend in ("torch", "cpp"):
        model = HashedTableModel(batch, num_actions, seed=5, terminal_rate=0.1)
        root = RootInput(model.root_logits(), values, torch.arange(batch), legal)
        outputs.append(search(root, model, config, backend=backend, seed=4))
    assert_same_summary(*outputs)
    assert int(outputs[1].action[0]) == 3
    assert float(outputs[1].action_weights[0, 3]) == 1.0


def test_native_summary_rejects_a_malformed_tree(cpp_extension: object) -> None:
    model = HashedTableModel(2, 3)
    root = RootInput(model.root_logits(), torch.zeros(2), torch.arange(2))
    config = SearchConfig(algorithm="gumbel_muzero", num_simulations=2)
    out = search(root, model, config, backend="torch")
    assert out.tree is not None
    fields = tree_fields(out.tree)
    with pytest.raises(RuntimeError, match="20 tree fields"):
        cpp_extension.gumbel_summary(fields[:-1], 50.0, 0.1)  # type: ignore[attr-defined]
    fields[13] = fields[13].float()  # root_legal as float32
    with pytest.raises(RuntimeError, match="root_legal must be Bool"):
        cpp_extension.gumbel_summary(fields, 50.0, 0.1)  # type: ignore[attr-defined]
