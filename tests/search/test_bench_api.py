"""The numpy entry point used by benchmarks and outside harnesses."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from search_fakes import HashedTableModel

from mtrl.search import RootInput, SearchConfig, bench_api, search


def numpy_model(model: HashedTableModel) -> Callable[..., tuple[np.ndarray, ...]]:
    def model_fn(parent_ids: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        out = model(torch.from_numpy(parent_ids.copy()), torch.from_numpy(actions.copy()))
        return (
            out.prior_logits.numpy(),
            out.value.numpy(),
            out.reward.numpy(),
            out.embedding_id.numpy(),
        )

    return model_fn


def test_attributes() -> None:
    assert bench_api.search.backend == "numpy"
    assert bench_api.search.algorithms == ("muzero", "gumbel_muzero")


@pytest.mark.parametrize("algorithm", ["muzero", "gumbel_muzero"])
def test_matches_the_torch_search(algorithm: str) -> None:
    batch, num_actions, sims = 4, 18, 20
    logits = HashedTableModel(batch, num_actions, seed=1).root_logits()
    values = np.linspace(-1, 1, batch, dtype=np.float32)
    ids = np.arange(batch, dtype=np.int64)
    result = bench_api.search(
        logits.numpy(),
        values,
        ids,
        numpy_model(HashedTableModel(batch, num_actions, seed=1)),
        sims,
        algorithm=algorithm,
        discount=0.9,
        seed=5,
    )
    assert set(result) == {"visit_counts", "root_value", "leaf_depths"}
    assert result["visit_counts"].shape == (batch, num_actions)
    assert result["visit_counts"].sum(axis=1).tolist() == [sims] * batch
    assert result["root_value"].shape == (batch,) and result["leaf_depths"].shape == (sims, batch)
    root = RootInput(logits, torch.from_numpy(values), torch.from_numpy(ids), discount=0.9)
    config = SearchConfig(algorithm=algorithm, num_simulations=sims, backend="torch")
    expected = search(root, HashedTableModel(batch, num_actions, seed=1), config, seed=5)
    np.testing.assert_array_equal(result["visit_counts"], expected.visit_counts.numpy())
    np.testing.assert_array_equal(result["leaf_depths"], expected.leaf_depths.numpy())
    np.testing.assert_allclose(result["root_value"], expected.root_value.numpy(), rtol=1e-6)


def test_unknown_algorithm_is_rejected() -> None:
    with pytest.raises(ValueError, match="'sampled'"):
        bench_api.search(
            np.zeros((1, 2), np.float32),
            np.zeros(1, np.float32),
            np.zeros(1, np.int64),
            lambda p, a: None,
            1,
            algorithm="sampled",
        )
