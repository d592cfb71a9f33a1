"""Property test: on random trees and masks the C++ backend and the reference agree."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from search_fakes import HashedTableModel, draw_root

from mtrl.search import RootInput, SearchConfig, search

FIELDS = ("visits", "value_sum", "child_index", "child_prior", "min_q", "max_q", "terminal")


@st.composite
def search_cases(draw: st.DrawFn) -> tuple[RootInput, SearchConfig, dict[str, object]]:
    root, model_args = draw_root(draw, terminal_rates=(0.0, 0.2))
    config = SearchConfig(
        algorithm=draw(st.sampled_from(["muzero", "gumbel_muzero"])),
        num_simulations=draw(st.integers(0, 24)),
        max_num_considered_actions=draw(st.integers(1, 8)),
        dirichlet_fraction=draw(st.sampled_from([0.0, 0.25])),
    )
    return root, config, model_args


@settings(max_examples=60, deadline=None)
@given(search_cases(), st.integers(0, 1000))
def test_cpp_and_reference_build_the_same_tree(
    cpp_extension: object, case: tuple[RootInput, SearchConfig, dict[str, object]], seed: int
) -> None:
    root, config, model_args = case
    outputs = [
        search(root, HashedTableModel(**model_args), config, backend=name, seed=seed)  # type: ignore[arg-type]
        for name in ("torch", "cpp")
    ]
    reference, native = outputs
    for name in FIELDS:
        assert torch.equal(getattr(reference.tree, name), getattr(native.tree, name)), name
    assert torch.equal(reference.visit_counts, native.visit_counts)
    assert torch.equal(reference.action, native.action)
    assert (
        reference.visit_counts.sum(dim=1).tolist() == [config.num_simulations] * root.value.shape[0]
    )
